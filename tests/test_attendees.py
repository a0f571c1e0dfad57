"""Attendee names and the organiser's questions: asked in the pay form, checked before any charge,
kept on the order and its tickets, shown, changed after buying (audited) until the organiser's deadline."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from tests.support import login, reserve_general
from webapp.models import AuditLog, Hold, Order, PaymentAttempt, Ticket
from webapp.services.admin import questions as admin_questions
from webapp.services.selling import attendees

HX = {"HX-Request": "true"}
CARD = {"name": "Ada", "number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123"}


def html(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def buyer(client, factory):
    user = factory.user(name="Ada Buyer")
    return user, login(client, user.email)


@pytest.fixture
def festival(factory, session):
    """Two tiers; names required; a per-ticket T-shirt size, a per-order consent, a VIP-only date."""
    event = factory.ga_event(capacity=10, tiers=2)
    admin = factory.user(is_admin=True)
    admin_questions.set_attendee_settings(session, actor_id=admin.id, event=event, names="required", edit_until=None)
    q = {
        "size": admin_questions.add_question(session, actor_id=admin.id, event_id=event.id, label="T-shirt size",
                                             kind="choice", options=["S", "M", "L"], required=True,
                                             per_ticket=True, tier_id=None),
        "age": admin_questions.add_question(session, actor_id=admin.id, event_id=event.id, label="Age",
                                            kind="number", options=[], required=False, per_ticket=True,
                                            tier_id=None),
        "consent": admin_questions.add_question(session, actor_id=admin.id, event_id=event.id,
                                                label="I accept the photo policy", kind="checkbox", options=[],
                                                required=True, per_ticket=False, tier_id=None),
        "arrival": admin_questions.add_question(session, actor_id=admin.id, event_id=event.id,
                                                label="Arrival day", kind="date", options=[], required=True,
                                                per_ticket=True, tier_id=event.tiers[1].id),
    }
    session.commit()
    return event, {k: v.id for k, v in q.items()}


def _hold(session, user, event, quantities):
    hold = reserve_general(session, user_id=user.id, event_id=event.id, quantities=quantities)
    session.commit()
    return hold


def _pay(client, token, hold_id, extra, key="attendee-key-0123456789"):
    return client.post(f"/holds/{hold_id}/pay", data={**CARD, "idempotency_key": key, **extra},
                       headers={**HX, "X-CSRFToken": token})


@pytest.mark.parametrize("kind, options, raw, value, error", [
    ("text", [], ["  hello  "], "hello", None),
    ("text", [], ["x" * 501], None, "At most 500 characters."),
    ("number", [], ["3,5"], 3.5, None),
    ("number", [], ["42"], 42, None),
    ("number", [], ["NaN"], None, "Enter a number, such as 42 or 3.5."),
    ("number", [], ["1e400"], None, "Enter a number, such as 42 or 3.5."),
    ("choice", ["S", "M"], ["M"], "M", None),
    ("choice", ["S", "M"], ["XL"], None, "Choose one of the options."),
    ("choice", ["S", "M"], ["S", "M"], None, "Choose one of the options."),
    ("choices", ["A", "B", "C"], ["C", "A"], ["A", "C"], None),
    ("choices", ["A", "B"], ["A", "Z"], None, "Choose among the options."),
    ("checkbox", [], ["on"], True, None),
    ("checkbox", [], ["maybe"], None, "Tick the box, or leave it empty."),
    ("date", [], ["2027-02-29"], None, "Enter a date as YYYY-MM-DD."),
    ("date", [], ["2028-02-29"], "2028-02-29", None),
    ("text", [], [""], None, None),
])
def test_each_kind_keeps_its_own_values_and_refuses_others(kind, options, raw, value, error):
    question = attendees.QuestionView(1, "Q", kind, tuple(options))
    assert attendees.read_value(question, raw) == (value, error)


@pytest.mark.parametrize("kind, message", [
    ("text", "This answer is required."), ("checkbox", "Tick this box to go on."),
    ("choices", "Choose at least one."),
])
def test_a_required_question_left_empty_says_what_to_do(kind, message):
    question = attendees.QuestionView(1, "Q", kind, ("A",) if kind == "choices" else (), required=True)
    assert attendees.read_value(question, []) == (None, message)


def test_the_hold_page_asks_names_per_ticket_order_questions_once_and_tier_questions_of_their_tier(
        client, session, factory, festival, buyer):
    event, q = festival
    user, _ = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 1, event.tiers[1].id: 1})
    page = html(client.get(f"/holds/{hold.id}"))
    general, vip = sorted(hold.unit_ids)
    assert page.count('name="order-q%d"' % q["consent"]) == 1
    for unit in (general, vip):
        assert f'name="ticket-{unit}-name"' in page and f'name="ticket-{unit}-q{q["size"]}"' in page
    assert f'name="ticket-{vip}-q{q["arrival"]}"' in page and f'name="ticket-{general}-q{q["arrival"]}"' not in page
    # Inside the pay form: one submit, one round trip.
    form = page[page.index('id="pay-form"'):page.index("</form>", page.index('id="pay-form"'))]
    assert 'id="attendees"' in form


def test_an_event_without_questions_asks_nothing_more(client, session, factory, buyer):
    event = factory.ga_event(capacity=5)
    user, _ = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 1})
    assert 'id="attendees"' not in html(client.get(f"/holds/{hold.id}"))


def test_wrong_answers_are_refused_beside_their_fields_before_any_charge(client, session, factory, festival, buyer):
    event, q = festival
    user, token = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 1})
    unit = hold.unit_ids[0]
    response = _pay(client, token, hold.id, {f"ticket-{unit}-name": "", f"ticket-{unit}-q{q['size']}": "XXL",
                                             f"ticket-{unit}-q{q['age']}": "old"})
    assert response.status_code == 400
    page = html(response)
    for field, message in [(f"ticket-{unit}-name", "Enter the attendee&#39;s name."),
                           (f"ticket-{unit}-q{q['size']}", "Choose one of the options."),
                           (f"ticket-{unit}-q{q['age']}", "Enter a number"),
                           (f"order-q{q['consent']}", "Tick this box to go on.")]:
        errors = re.search(rf'<div id="{field}-errors"[^>]*>(.*?)</div>', page, re.S).group(1)
        assert message in errors, field
    assert 'value="old"' in page  # what was typed stays, to be corrected
    assert session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
    assert session.scalar(select(func.count()).select_from(Order)) == 0
    session.expire_all()
    assert session.get(Hold, hold.id).answers is None


def test_answers_reach_the_order_its_tickets_and_the_order_page(client, session, factory, festival, buyer):
    event, q = festival
    user, token = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 1, event.tiers[1].id: 1})
    general, vip = sorted(hold.unit_ids)
    response = _pay(client, token, hold.id, {
        f"ticket-{general}-name": "  Grace   Hopper ", f"ticket-{general}-q{q['size']}": "M",
        f"ticket-{vip}-name": "Alan Turing", f"ticket-{vip}-q{q['size']}": "L", f"ticket-{vip}-q{q['age']}": "41",
        f"ticket-{vip}-q{q['arrival']}": "2027-06-01", f"order-q{q['consent']}": "on"})
    assert response.status_code == 204, html(response)[:400]
    order = session.scalars(select(Order).where(Order.hold_id == hold.id)).one()
    assert order.answers == {str(q["consent"]): True}
    tickets = {t.unit_id: t for t in order.tickets}
    assert tickets[general].attendee_name == "Grace Hopper"
    assert tickets[general].answers == {str(q["size"]): "M"}
    assert tickets[vip].answers == {str(q["size"]): "L", str(q["age"]): 41, str(q["arrival"]): "2027-06-01"}
    page = html(client.get(f"/orders/{order.id}"))
    assert "Grace Hopper" in page and "Alan Turing" in page and "2027-06-01" in page
    assert "I accept the photo policy" in page and "Change attendee details" in page


def test_answers_kept_on_the_hold_reach_an_order_the_sweep_confirms(session, factory, festival, gateway):
    from tests.support import GOOD
    from webapp.services.money import checkout

    event, q = festival
    user = factory.user()
    hold = _hold(session, user, event, {event.tiers[0].id: 1})
    unit = hold.unit_ids[0]
    answers = {f"ticket-{unit}-name": ["Ada"], f"ticket-{unit}-q{q['size']}": ["S"], f"order-q{q['consent']}": ["on"]}
    started = checkout.begin_payment(session, hold_id=hold.id, user_id=user.id,
                                     idempotency_key="sweep-key-0123456789", card=GOOD, answers=answers)
    session.commit()
    # The checkout process dies here; the gateway authorised; the sweep settles it without the form.
    gateway.authorise(idempotency_key="sweep-key-0123456789", amount_minor=started.amount_minor,
                      currency=started.currency, card=GOOD)
    checkout.reconcile_stale_payments(session, gateway, older_than_seconds=0, void_after_seconds=60)
    ticket = session.scalars(select(Ticket).join(Order).where(Order.hold_id == hold.id)).one()
    assert ticket.attendee_name == "Ada" and ticket.answers == {str(q["size"]): "S"}


def test_inline_validation_answers_one_field_with_the_submit_rules(client, session, factory, festival, buyer):
    event, q = festival
    user, token = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 1})
    unit = hold.unit_ids[0]
    url = f"/holds/{hold.id}/validate-attendee/ticket-{unit}-q{q['age']}"
    bad = client.post(url, data={f"ticket-{unit}-q{q['age']}": "twelve"}, headers={**HX, "X-CSRFToken": token})
    assert bad.status_code == 200 and "Enter a number" in html(bad) and "<html" not in html(bad)
    good = client.post(url, data={f"ticket-{unit}-q{q['age']}": "12"}, headers={**HX, "X-CSRFToken": token})
    assert html(good).strip() == ""
    # A field the hold does not ask (another ticket's, the arrival date of a tier not held) is 404.
    missing = client.post(f"/holds/{hold.id}/validate-attendee/ticket-{unit}-q{q['arrival']}",
                          headers={**HX, "X-CSRFToken": token})
    assert missing.status_code == 404


def _bought(client, session, festival, buyer):
    event, q = festival
    user, token = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 1})
    unit = hold.unit_ids[0]
    assert _pay(client, token, hold.id, {f"ticket-{unit}-name": "Ada", f"ticket-{unit}-q{q['size']}": "S",
                                         f"order-q{q['consent']}": "on"}).status_code == 204
    return session.scalars(select(Order).where(Order.hold_id == hold.id)).one(), unit


def test_changing_a_name_after_buying_is_audited_and_wrong_input_changes_nothing(
        client, session, factory, festival, buyer):
    event, q = festival
    user, token = buyer
    order, unit = _bought(client, session, festival, buyer)
    form = client.get(f"/orders/{order.id}/attendees")
    assert form.status_code == 200 and 'value="Ada"' in html(form)
    refused = client.post(f"/orders/{order.id}/attendees", headers={**HX, "X-CSRFToken": token}, data={
        f"ticket-{unit}-name": "Ada Lovelace", f"ticket-{unit}-q{q['size']}": "XL", f"order-q{q['consent']}": "on"})
    assert refused.status_code == 400 and "Choose one of the options." in html(refused)
    session.expire_all()
    assert session.scalars(select(Ticket).where(Ticket.order_id == order.id)).one().attendee_name == "Ada"
    saved = client.post(f"/orders/{order.id}/attendees", headers={**HX, "X-CSRFToken": token}, data={
        f"ticket-{unit}-name": "Ada Lovelace", f"ticket-{unit}-q{q['size']}": "M", f"order-q{q['consent']}": "on"})
    assert saved.status_code == 204 and saved.headers["HX-Redirect"] == f"/orders/{order.id}"
    session.expire_all()
    ticket = session.scalars(select(Ticket).where(Ticket.order_id == order.id)).one()
    assert (ticket.attendee_name, ticket.answers) == ("Ada Lovelace", {str(q["size"]): "M"})
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "ticket.attendee_changed")).one()
    assert entry.actor_id == user.id and entry.entity_id == ticket.id
    assert entry.before == {"attendee_name": "Ada", "answers": {str(q["size"]): "S"}}
    assert entry.after == {"attendee_name": "Ada Lovelace", "answers": {str(q["size"]): "M"}}


def test_after_the_organisers_deadline_names_no_longer_change(client, session, factory, festival, buyer):
    event, q = festival
    user, token = buyer
    order, unit = _bought(client, session, festival, buyer)
    session.execute(text("UPDATE events SET attendee_edit_until = now() - interval '1 minute' WHERE id = :e"),
                    {"e": event.id})
    session.commit()
    assert "can no longer be changed" in html(client.get(f"/orders/{order.id}"))
    refused = client.post(f"/orders/{order.id}/attendees", headers={**HX, "X-CSRFToken": token}, data={
        f"ticket-{unit}-name": "Someone Else", f"ticket-{unit}-q{q['size']}": "M", f"order-q{q['consent']}": "on"})
    assert refused.status_code == 409
    session.expire_all()
    assert session.scalars(select(Ticket).where(Ticket.order_id == order.id)).one().attendee_name == "Ada"
    assert session.scalar(select(func.count()).select_from(AuditLog)
                          .where(AuditLog.action == "ticket.attendee_changed")) == 0


def test_someone_elses_order_attendees_are_404(client, session, factory, buyer):
    event = factory.ga_event(capacity=3)
    other = factory.order(event, factory.user())
    _, token = buyer
    assert client.get(f"/orders/{other.id}/attendees").status_code == 404
    assert client.post(f"/orders/{other.id}/attendees", headers={"X-CSRFToken": token}).status_code == 404


@pytest.mark.parametrize("form, message", [
    ({"label": "", "kind": "text"}, "A question needs a text"),
    ({"label": "Size", "kind": "choice", "options": ""}, "A choice needs its options"),
    ({"label": "Size", "kind": "choice", "options": "S\nS"}, "different options"),
    ({"label": "Size", "kind": "colour"}, "Choose what kind"),
    ({"label": "Size", "kind": "text", "tier_id": "999999"}, "not one of this event"),
    ({"label": "Size", "kind": "text", "tier_id": "abc"}, "not one of this event"),
])
def test_the_organiser_is_told_what_is_wrong_with_a_question_and_nothing_is_added(
        client, session, factory, form, message):
    from tests.support import admin_client

    event = factory.ga_event(capacity=3)
    admin, _, token = admin_client(client, factory)
    response = admin.post(f"/admin/events/{event.id}/questions", data={**form, "csrf_token": token})
    assert response.status_code == 400 and message in html(response)
    assert admin_questions.questions_of(session, event.id) == []


def test_the_organiser_adds_and_removes_questions_and_sets_the_deadline(client, session, factory):
    from tests.support import admin_client

    event = factory.ga_event(capacity=3)
    admin, _, token = admin_client(client, factory)
    added = admin.post(f"/admin/events/{event.id}/questions", data={
        "label": "Dietary needs", "kind": "choices", "options": "Vegan\nGluten-free\n", "per": "order",
        "required": "on", "csrf_token": token})
    assert added.status_code == 303
    [question] = admin_questions.questions_of(session, event.id)
    assert (question.options, question.per_ticket, question.required) == (["Vegan", "Gluten-free"], False, True)
    late = (event.starts_at + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    refused = admin.post(f"/admin/events/{event.id}/attendee-settings",
                         data={"names": "asked", "edit_until": late, "csrf_token": token})
    assert refused.status_code == 400 and "start of the event or before" in html(refused)
    assert admin.post(f"/admin/events/{event.id}/attendee-settings",
                      data={"names": "sometimes", "csrf_token": token}).status_code == 400
    assert admin.post(f"/admin/events/{event.id}/attendee-settings",
                      data={"names": "asked", "edit_until": "", "csrf_token": token}).status_code == 303
    session.expire_all()
    assert session.scalar(text("SELECT attendee_names FROM events WHERE id = :e"), {"e": event.id}) == "asked"
    assert admin.post(f"/admin/events/{event.id}/questions/{question.id}/delete",
                      data={"csrf_token": token}).status_code == 303
    assert admin_questions.questions_of(session, event.id) == []
    actions = set(session.scalars(select(AuditLog.action).where(AuditLog.event_id == event.id)))
    assert {"question.created", "question.deleted", "event.attendee_settings"} <= actions
    assert datetime.now(timezone.utc) < event.starts_at


# ---- Where the answers are shown and sent ------------------------------------------------------

def _festival_order(client, session, festival, buyer):
    event, q = festival
    user, token = buyer
    hold = _hold(session, user, event, {event.tiers[0].id: 2})
    first, second = sorted(hold.unit_ids)
    response = _pay(client, token, hold.id, {
        f"ticket-{first}-name": "Grace Hopper", f"ticket-{first}-q{q['size']}": "M",
        f"ticket-{second}-name": "=HYPERLINK(1)", f"ticket-{second}-q{q['size']}": "S",
        f"order-q{q['consent']}": "on"})
    assert response.status_code == 204
    return session.scalars(select(Order).where(Order.hold_id == hold.id)).one()


def test_the_csv_export_pdf_and_admin_order_page_show_attendees_and_answers(client, session, factory, festival,
                                                                             buyer):
    import csv
    import io

    from pypdf import PdfReader

    from tests.support import admin_client

    event, q = festival
    order = _festival_order(client, session, festival, buyer)
    pdf = client.get(f"/orders/{order.id}/tickets.pdf")
    assert "Attendee: Grace Hopper" in PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    admin, _, _ = admin_client(client, factory)
    page = html(admin.get(f"/admin/orders/{order.id}"))
    assert "Grace Hopper" in page and "T-shirt size" in page and "I accept the photo policy" in page
    rows = list(csv.reader(io.StringIO(admin.get(f"/admin/events/{event.id}/attendees.csv").get_data(as_text=True))))
    header = rows[0]
    assert header[-5:] == ["attendee_name", "T-shirt size", "Age", "I accept the photo policy", "Arrival day"]
    by_name = {row[header.index("attendee_name")]: row for row in rows[1:]}
    # A name that a spreadsheet would run as a formula is written as text.
    assert set(by_name) == {"Grace Hopper", "'=HYPERLINK(1)"}
    grace = by_name["Grace Hopper"]
    assert grace[header.index("T-shirt size")] == "M" and grace[header.index("I accept the photo policy")] == "Yes"
    assert grace[header.index("Age")] == ""


def test_the_order_webhook_carries_the_answers_and_a_change_sends_its_own(client, session, factory, festival, buyer):
    import json

    from webapp.models import WebhookDelivery, WebhookEndpoint

    event, q = festival
    session.add(WebhookEndpoint(url="https://hooks.example.com/x", secret="whsec_t", organiser_id=1,
                                event_types=["order.confirmed", "ticket.attendee_changed"]))
    session.commit()
    order = _festival_order(client, session, festival, buyer)
    [confirmed] = session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_type == "order.confirmed"))
    data = json.loads(confirmed.body)["data"]
    assert data["order_id"] == order.id and data["answers"] == {str(q["consent"]): True}
    assert [(t["attendee_name"], t["answers"]) for t in data["tickets"]] == [
        ("Grace Hopper", {str(q["size"]): "M"}), ("=HYPERLINK(1)", {str(q["size"]): "S"})]
    _, token = buyer
    first, second = sorted(t.unit_id for t in order.tickets)
    assert client.post(f"/orders/{order.id}/attendees", headers={**HX, "X-CSRFToken": token}, data={
        f"ticket-{first}-name": "Grace Brewster Hopper", f"ticket-{first}-q{q['size']}": "M",
        f"ticket-{second}-name": "Someone", f"ticket-{second}-q{q['size']}": "S",
        f"order-q{q['consent']}": "on"}).status_code == 204
    changes = [json.loads(d.body)["data"] for d in session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_type == "ticket.attendee_changed")
        .order_by(WebhookDelivery.id))]
    assert [c["attendee_name"] for c in changes] == ["Grace Brewster Hopper", "Someone"]


def test_the_api_shows_the_questions_takes_answers_and_refuses_wrong_ones_by_field(client, session, factory,
                                                                                   festival):
    from webapp.services.people import api_tokens

    event, q = festival
    user = factory.user()
    secret = api_tokens.create(session, user_id=user.id, is_admin=False, name="t", scope="buyer").secret
    session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    hold = _hold(session, user, event, {event.tiers[0].id: 1})
    unit = hold.unit_ids[0]
    shown = client.get(f"/api/v1/holds/{hold.id}", headers=headers).get_json()
    assert shown["attendee_names"] == "required"
    assert [x["label"] for x in shown["questions"]] == ["T-shirt size", "Age", "I accept the photo policy",
                                                       "Arrival day"]
    card = {"number": "4242 4242 4242 4242", "expiry": "12/30", "cvc": "123", "name": "Ada"}
    for attendees_in, field in [
        ({"tickets": {str(unit): {"name": "Ada", "answers": {str(q["size"]): "XXL"}}},
          "order": {str(q["consent"]): True}}, f"ticket-{unit}-q{q['size']}"),
        ({"tickets": {str(unit): {"name": "Ada", "answers": {str(q["size"]): "S"}}}}, f"order-q{q['consent']}"),
    ]:
        refused = client.post(f"/api/v1/holds/{hold.id}/payment", json={"card": card, "attendees": attendees_in},
                              headers={**headers, "Idempotency-Key": "api-attendee-key-0001"})
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json"
        assert field in refused.get_json()["fields"]
    malformed = client.post(f"/api/v1/holds/{hold.id}/payment", json={"card": card, "attendees": {
        "order": {str(q["consent"]): {"nested": 1}}}}, headers={**headers, "Idempotency-Key": "api-attendee-key-0002"})
    assert malformed.status_code == 400 and malformed.mimetype == "application/problem+json"
    assert session.scalar(select(func.count()).select_from(PaymentAttempt)) == 0
    paid = client.post(f"/api/v1/holds/{hold.id}/payment", json={"card": card, "attendees": {
        "tickets": {str(unit): {"name": "Ada", "answers": {str(q["size"]): "S", str(q["age"]): 36}}},
        "order": {str(q["consent"]): True}}}, headers={**headers, "Idempotency-Key": "api-attendee-key-0003"})
    assert paid.status_code == 201, paid.get_data(as_text=True)
    body = paid.get_json()
    assert body["answers"] == {str(q["consent"]): True}
    assert body["tickets"][0]["attendee_name"] == "Ada"
    assert body["tickets"][0]["answers"] == {str(q["size"]): "S", str(q["age"]): 36}


def test_the_organiser_corrects_attendee_details_after_the_deadline_audited(client, session, factory, festival,
                                                                             buyer):
    from tests.support import admin_client

    event, q = festival
    order, unit = _bought(client, session, festival, buyer)
    session.execute(text("UPDATE events SET attendee_edit_until = now() - interval '1 minute' WHERE id = :e"),
                    {"e": event.id})
    session.commit()
    admin, organiser, token = admin_client(client, factory)
    page = admin.get(f"/admin/orders/{order.id}").get_data(as_text=True)
    assert "Save attendee details" in page and 'value="Ada"' in page
    refused = admin.post(f"/admin/orders/{order.id}/attendees", data={
        "csrf_token": token, f"ticket-{unit}-name": "", f"ticket-{unit}-q{q['size']}": "S",
        f"order-q{q['consent']}": "on"})
    assert refused.status_code == 400 and "Enter the attendee&#39;s name." in refused.get_data(as_text=True)
    saved = admin.post(f"/admin/orders/{order.id}/attendees", data={
        "csrf_token": token, f"ticket-{unit}-name": "Ada King", f"ticket-{unit}-q{q['size']}": "S",
        f"order-q{q['consent']}": "on"})
    assert saved.status_code == 303
    session.expire_all()
    assert session.scalars(select(Ticket).where(Ticket.order_id == order.id)).one().attendee_name == "Ada King"
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "ticket.attendee_changed")).one()
    assert entry.actor_id == organiser.id
