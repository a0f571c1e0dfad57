"""The pages under the Content-Security-Policy: no violation is reported while a buyer
and an admin use the htmx parts (the autouse check in conftest reads the console;
this also listens for the DOM's own violation events)."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from e2e.helpers import log_in
from tests.support import buy

LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  e => window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
"""


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


def test_buyer_and_admin_pages_run_with_no_policy_violation(page: Page, factory, session):
    seated = factory.seated_event(rows=2, seats_per_row=4, title="Policy Hall")
    ga = factory.ga_event(capacity=10, title="Policy Fest")
    buyer = factory.user(name="Pat Policy")
    order = buy(session, seated, buyer, seats=factory.seat_ids(seated)[:1])
    page.add_init_script(LISTEN)

    log_in(page, buyer.email)
    page.goto("/?q=policy")
    expect(page.get_by_role("link", name="Policy Hall")).to_be_visible()
    assert violations(page) == []

    page.goto(f"/events/{seated.id}")
    page.locator("#seat-map label.seat.available").first.click()  # htmx: the summary follows
    expect(page.locator("#selection-summary")).to_contain_text("1 ×")
    page.wait_for_timeout(2500)  # one live-map poll
    assert violations(page) == []

    page.goto(f"/events/{ga.id}")
    page.locator("button.step[value$=':+1']").first.click()
    expect(page.locator("input.qty").first).to_have_value("1")
    assert violations(page) == []

    page.goto(f"/orders/{order.id}/tickets/{order.tickets[0].id}")
    expect(page.get_by_role("button", name="Print")).to_have_attribute("data-print", "")
    assert violations(page) == []
