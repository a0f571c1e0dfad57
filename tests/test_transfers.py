"""Passing a ticket on: offered by e-mail, accepted with one link (new code for the recipient, the old one dead,
audited, in one transaction), withdrawn before that; the organiser's switch and deadline; what cannot be passed
on; the door's "transferred"; and a holder checking in while the recipient accepts: exactly one wins."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, text

from tests.support import buy, login, race
from webapp.extensions import db
from webapp.models import AuditLog, OutboxMessage, Ticket, TicketTransfer
from webapp.services.admin import checkin
from webapp.services.errors import BookingError
from webapp.services.selling import transfers

HX = {"HX-Request": "true"}


def html(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def sold(session, factory):
    event = factory.ga_event(capacity=50)
    buyer = factory.user(name="Sue Sender")
    order = buy(session, event, buyer)
    return event, buyer, order, order.tickets[0]


def _offer(session, ticket, buyer, email="rae@example.com") -> transfers.Offered:
    offered = transfers.offer(session, ticket_id=ticket.id, user_id=buyer.id, to_email=email)
    session.commit()
    return offered


def test_a_holder_offers_a_ticket_and_the_recipient_accepts_with_the_mails_link(client, session, factory, sold):
    event, buyer, order, ticket = sold
    old_code = ticket.code
    token = login(client, buyer.email)
    order_page = html(client.get(f"/orders/{order.id}"))
    assert "Transfer this ticket" in order_page
    sent = client.post(f"/tickets/{ticket.id}/transfer", data={"email": " Rae@Example.com "},
                       headers={**HX, "X-CSRFToken": token})
    assert sent.status_code == 204
    mail = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "ticket_transfer")).one()
    assert mail.recipient == "rae@example.com" and "Sue Sender" in mail.subject
    link = re.search(r"https?://\S+/transfers/accept/(\S+)", mail.body)
    assert link is not None
    assert "Offered to <strong>rae@example.com</strong>" in html(client.get(f"/orders/{order.id}"))
    client.post("/logout", headers={"X-CSRFToken": token})

    # The recipient follows the link: asked to log in or register first, then one button.
    path = f"/transfers/accept/{link.group(1)}"
    assert "create an account" in html(client.get(path))
    rae = factory.user("rae@example.com", name="Rae Recipient")
    token = login(client, rae.email)
    accepted = client.post(path, headers={**HX, "X-CSRFToken": token})
    assert accepted.status_code == 204 and accepted.headers["HX-Redirect"] == "/orders"
    session.expire_all()
    ticket = session.get(Ticket, ticket.id)
    assert ticket.holder_id == rae.id and ticket.code != old_code and ticket.transferred_at is not None
    mine = html(client.get("/orders"))
    assert "Passed on to you" in mine and ticket.code in mine
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "ticket.transferred")).one()
    assert entry.actor_id == rae.id and entry.before == {"holder_id": buyer.id}
    # The old code at the door: "transferred", not "unknown"; the new one admits.
    staff = factory.user(is_admin=True)
    assert checkin.check_in(session, event_id=event.id, code=old_code, staff_id=staff.id).outcome == "transferred"
    assert checkin.check_in(session, event_id=event.id, code=ticket.code, staff_id=staff.id).admitted
    session.commit()
    # The previous holder sees to whom it went, and no code any more.
    client.post("/logout", headers={"X-CSRFToken": token})
    login(client, buyer.email)
    page = html(client.get(f"/orders/{order.id}"))
    assert "Transferred to rae@example.com" in page and old_code not in page and ticket.code not in page
    assert "you cannot cancel it here" in page and "Download tickets" not in page


def test_a_withdrawn_offer_cannot_be_accepted(session, factory, sold):
    _, buyer, _, ticket = sold
    offered = _offer(session, ticket, buyer)
    transfers.withdraw(session, transfer_id=offered.transfer.id, user_id=buyer.id)
    session.commit()
    rae = factory.user()
    with pytest.raises(transfers.TransferRefused, match="withdrew"):
        transfers.accept(session, token=offered.token, user_id=rae.id)
    session.rollback()
    assert session.get(Ticket, ticket.id).holder_id is None
    with pytest.raises(transfers.TransferRefused, match="already withdrawn"):
        transfers.withdraw(session, transfer_id=offered.transfer.id, user_id=buyer.id)


@pytest.mark.parametrize("change, message", [
    ("UPDATE tickets SET checked_in_at = now() WHERE id = :t", "checked in"),
    ("UPDATE tickets SET status = 'void' WHERE id = :t", "cancelled or refunded"),
    ("UPDATE events SET transfers_enabled = false WHERE id = :e", "does not allow"),
    ("UPDATE events SET transfers_until = now() - interval '1 minute' WHERE id = :e", "have closed"),
])
def test_what_cannot_be_transferred_is_refused_when_offered_and_when_accepted(session, factory, sold, change,
                                                                              message):
    event, buyer, _, ticket = sold
    offered = _offer(session, ticket, buyer)
    session.execute(text(change), {"t": ticket.id, "e": event.id})
    session.commit()
    other = factory.order(event, factory.user()).tickets[0]
    session.execute(text(change.replace(":t", ":o")), {"o": other.id, "e": event.id})
    session.commit()
    with pytest.raises(transfers.TransferRefused, match=message):
        transfers.accept(session, token=offered.token, user_id=factory.user().id)
    session.rollback()
    with pytest.raises(transfers.TransferRefused, match=message):
        transfers.offer(session, ticket_id=other.id, user_id=other.order.user_id, to_email="x@example.com")
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Ticket).where(Ticket.holder_id.is_not(None))) == 0


def test_a_ticket_is_transferred_once_and_offered_to_one_person_at_a_time(session, factory, sold):
    _, buyer, _, ticket = sold
    offered = _offer(session, ticket, buyer)
    with pytest.raises(transfers.TransferRefused, match="already offered"):
        transfers.offer(session, ticket_id=ticket.id, user_id=buyer.id, to_email="b@example.com")
    session.rollback()
    rae = factory.user()
    transfers.accept(session, token=offered.token, user_id=rae.id)
    session.commit()
    # A second click by the recipient is no error; anyone else is refused.
    assert transfers.accept(session, token=offered.token, user_id=rae.id).to_user_id == rae.id
    with pytest.raises(transfers.TransferRefused, match="already accepted"):
        transfers.accept(session, token=offered.token, user_id=factory.user().id)
    session.rollback()
    with pytest.raises(transfers.TransferRefused, match="already transferred once"):
        transfers.offer(session, ticket_id=ticket.id, user_id=rae.id, to_email="c@example.com")
    session.rollback()
    # The sender no longer holds it.
    with pytest.raises(BookingError, match="No such ticket"):
        transfers.offer(session, ticket_id=ticket.id, user_id=buyer.id, to_email="c@example.com")


@pytest.mark.parametrize("email, message", [
    ("", "Enter the e-mail"), ("not-an-address", "Enter the e-mail"), ("a@b.c" + "x" * 260, "Enter the e-mail"),
    ("SELF", "your own address"),
])
def test_bad_addresses_are_refused_and_nothing_is_offered(client, session, sold, email, message):
    _, buyer, order, ticket = sold
    token = login(client, buyer.email)
    refused = client.post(f"/tickets/{ticket.id}/transfer", data={"email": buyer.email if email == "SELF" else email},
                          headers={"X-CSRFToken": token})
    assert refused.status_code == 400
    assert message in html(client.get(f"/orders/{order.id}"))
    assert session.scalar(select(func.count()).select_from(TicketTransfer)) == 0


def test_someone_elses_ticket_or_transfer_is_404_and_a_bad_link_too(client, session, factory, sold):
    _, buyer, _, ticket = sold
    offered = _offer(session, ticket, buyer)
    token = login(client, factory.user().email)
    assert client.post(f"/tickets/{ticket.id}/transfer", data={"email": "z@example.com"},
                       headers={"X-CSRFToken": token}).status_code == 404
    assert client.post(f"/transfers/{offered.transfer.id}/withdraw", headers={"X-CSRFToken": token}).status_code == 404
    assert client.get("/transfers/accept/not-a-token").status_code == 404
    assert client.post("/transfers/accept/" + "x" * 200, headers={"X-CSRFToken": token}).status_code == 404


def test_the_buyer_cannot_cancel_an_order_whose_ticket_someone_else_holds(client, session, factory, sold):
    _, buyer, order, ticket = sold
    offered = _offer(session, ticket, buyer)
    transfers.accept(session, token=offered.token, user_id=factory.user().id)
    session.commit()
    token = login(client, buyer.email)
    refused = client.post(f"/orders/{order.id}/cancel", headers={**HX, "X-CSRFToken": token})
    assert refused.status_code == 409
    session.expire_all()
    assert session.get(Ticket, ticket.id).status.value == "valid"


@pytest.mark.slow
def test_a_holder_checking_in_while_the_recipient_accepts_one_wins_the_other_is_told(app, session, factory):
    """Real threads on real connections, pair by pair: the check-in's conditional UPDATE and the acceptance's
    row lock on the ticket. Without the lock (inventory.lock_ticket) both win: checked in and transferred."""
    event = factory.ga_event(capacity=40)
    staff = factory.user(is_admin=True)
    pairs = []
    for _ in range(20):
        buyer = factory.user()
        ticket = buy(session, event, buyer).tickets[0]
        offered = _offer(session, ticket, buyer)
        pairs.append((ticket.id, ticket.code, offered.token, factory.user().id))
    event_id, staff_id = event.id, staff.id

    outcomes = []
    for ticket_id, code, token, recipient in pairs:
        def work(i, code=code, token=token, recipient=recipient):
            if i == 0:
                result = checkin.check_in(db.session, event_id=event_id, code=code, staff_id=staff_id)
                db.session.commit()
                return ("door", result.outcome)
            try:
                transfers.accept(db.session, token=token, user_id=recipient)
                db.session.commit()
                return ("accept", "accepted")
            except BookingError as refused:
                db.session.rollback()
                return ("accept", refused.message)
        door, accept = race(app, 2, work)
        outcomes.append((door[1], accept[1]))
        session.expire_all()
        ticket = session.get(Ticket, ticket_id)
        checked_in, transferred = ticket.checked_in_at is not None, ticket.holder_id is not None
        assert checked_in != transferred, (door, accept)  # exactly one won
        if checked_in:
            assert door[1] == "valid" and "checked in at the door" in accept[1]
        else:
            assert door[1] == "transferred" and accept[1] == "accepted"
    # Both orders of arrival happened, so both losers' answers were seen.
    assert {d for d, _ in outcomes} == {"valid", "transferred"}, outcomes
