"""Mail delivery against a real SMTP server (aiosmtpd on 127.0.0.1, started here).

A purchase sends one confirmation with the tickets as a PDF (one page per
ticket) and the event as an .ics; a server that refuses twice gets the
message on the third try; two workers deliver each message exactly once;
a permanent refusal is kept and shown to admins.
"""
from __future__ import annotations

import io
import threading
import time

import pytest
from icalendar import Calendar
from pypdf import PdfReader
from sqlalchemy import select, text

from tests.smtp_support import SmtpServer
from tests.support import admin_client, buy
from webapp.extensions import db
from webapp.models import OutboxMessage
from webapp.services.messaging import delivery, outbox
from webapp.services.people import account_tokens


@pytest.fixture
def smtp(app, monkeypatch):
    server = SmtpServer().start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()


def deliver_all(session, passes: int = 5) -> None:
    for _ in range(passes):
        delivery.deliver_once(session)


def attachments(message) -> dict[str, bytes]:
    return {part.get_filename(): part.get_payload(decode=True) for part in message.iter_attachments()}


def test_a_purchase_delivers_one_confirmation_with_the_tickets_pdf_and_the_event_ics(session, factory, smtp):
    event = factory.seated_event(rows=1, seats_per_row=5, title="Mahler 5", timezone="Europe/Vienna")
    buyer = factory.user(name="Dana Buyer")
    order = buy(session, event, buyer, seats=factory.seat_ids(event)[:3])

    deliver_all(session)

    assert len(smtp.received) == 1
    mail = smtp.received[0]
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).one()
    assert mail["To"] == buyer.email and mail["Subject"] == f"Your tickets for Mahler 5 (order #{order.id})"
    assert mail["Message-ID"] == row.message_id and row.sent_at is not None and row.attempts == 1
    assert mail.get_body(preferencelist=("plain",)) is not None and mail.get_body(preferencelist=("html",))
    files = attachments(mail)
    pdf = PdfReader(io.BytesIO(files[f"tickets-order-{order.id}.pdf"]))
    assert len(pdf.pages) == 3
    page_text = pdf.pages[0].extract_text()
    assert "Mahler 5" in page_text and order.tickets[0].code in page_text and "row A, seat 1" in page_text
    calendar = Calendar.from_ical(files[f"event-{event.id}.ics"])
    vevent = calendar.walk("VEVENT")[0]
    assert str(vevent["SUMMARY"]) == "Mahler 5"
    assert vevent.decoded("DTSTART") == event.starts_at.replace(microsecond=0)
    assert str(vevent["DTSTART"].params["TZID"]) == "Europe/Vienna"
    assert calendar.walk("VTIMEZONE"), "calendar programs need the zone's rules"
    # The buyer has not confirmed their address: the confirmation asks them to.
    assert "/verify/" in mail.get_body(preferencelist=("plain",)).get_content()


def test_a_server_refusing_twice_gets_the_message_on_the_third_try(app, session, factory, smtp, monkeypatch):
    user = factory.user()
    outbox.queue(session, template="password_reset", recipient=user.email,
                 params={"user_id": user.id, "token": account_tokens.reset_token(user)})
    session.commit()
    smtp.handler.refusals = ["451 4.3.0 Try again later", "421 4.7.0 Too busy, come back"]

    first = delivery.deliver_once(session)
    assert (first.sent, first.retried) == (0, 1)
    row = session.scalars(select(OutboxMessage)).one()
    assert row.sent_at is None and row.failed_at is None and row.last_error.startswith("451")
    # The pause doubles with each failure: with a 30 s base, the next pass finds nothing due.
    monkeypatch.setitem(app.config, "MAIL_RETRY_BASE_SECONDS", 30)
    session.execute(text("UPDATE outbox_messages SET next_attempt_at = now() + interval '30 seconds'"))
    session.commit()
    assert delivery.deliver_once(session).sent == 0
    monkeypatch.setitem(app.config, "MAIL_RETRY_BASE_SECONDS", 0)
    session.execute(text("UPDATE outbox_messages SET next_attempt_at = now()"))
    session.commit()

    second = delivery.deliver_once(session)
    third = delivery.deliver_once(session)
    assert (second.retried, third.sent) == (1, 1)
    session.expire_all()
    row = session.scalars(select(OutboxMessage)).one()
    assert row.attempts == 3 and row.sent_at is not None and row.last_error is None
    assert [m["Message-ID"] for m in smtp.received] == [row.message_id]
    assert delivery.deliver_once(session).sent == 0


def test_backoff_doubles_per_failure_and_stops_at_the_attempt_limit(app, session, factory, smtp, monkeypatch):
    user = factory.user()
    account_tokens.send_verification(session, user)
    session.commit()
    monkeypatch.setitem(app.config, "MAIL_RETRY_BASE_SECONDS", 10)
    monkeypatch.setitem(app.config, "MAIL_MAX_ATTEMPTS", 3)
    smtp.handler.refusals = ["451 busy"] * 5
    waits = []
    for _ in range(3):
        delivery.deliver_once(session)
        waits.append(session.execute(text(
            "SELECT round(extract(epoch FROM next_attempt_at - now())) FROM outbox_messages")).scalar_one())
        session.execute(text("UPDATE outbox_messages SET next_attempt_at = now()"))
        session.commit()
    assert waits[:2] == [10, 20]
    row = session.scalars(select(OutboxMessage)).one()
    assert row.failed_at is not None and row.attempts == 3 and smtp.received == []


def test_a_permanent_refusal_is_kept_and_shown_to_admins(client, session, factory, smtp):
    user = factory.user(email="nobody@bounce.test")
    account_tokens.send_verification(session, user)
    session.commit()

    result = delivery.deliver_once(session)
    assert result.failed == 1
    row = session.scalars(select(OutboxMessage)).one()
    assert row.failed_at is not None and row.attempts == 1 and "550" in row.last_error
    assert delivery.deliver_once(session).failed == 0  # failed for good: not tried again

    client, _, token = admin_client(client, factory)
    page = client.get("/admin/mail").get_data(as_text=True)
    assert "nobody@bounce.test" in page and "550 5.1.1 No such user here" in page
    retry = client.post(f"/admin/mail/{row.id}/retry", data={"csrf_token": token})
    assert retry.status_code == 303
    session.expire_all()
    assert session.get(OutboxMessage, row.id).failed_at is None


def test_two_workers_deliver_each_message_exactly_once(app, session, factory, smtp):
    users = factory.users(40)
    for user in users:
        account_tokens.send_verification(session, user)
    session.commit()
    smtp.handler.delay = 0.01
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker():
        try:
            with app.app_context():
                barrier.wait()
                while delivery.deliver_once(db.session, limit=5).sent:
                    pass
                db.session.remove()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    ids = [m["Message-ID"] for m in smtp.received]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert session.scalar(text("SELECT count(*) FROM outbox_messages WHERE sent_at IS NOT NULL")) == 40
    assert session.scalar(text("SELECT max(attempts) FROM outbox_messages")) == 1


def test_a_worker_that_dies_mid_send_leaves_the_message_to_another_after_its_lease(app, session, factory, smtp,
                                                                                 monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_LEASE_SECONDS", 1)
    user = factory.user()
    account_tokens.send_verification(session, user)
    session.commit()
    assert len(delivery.claim(session, 10)) == 1  # ...and the worker is gone
    assert delivery.deliver_once(session).sent == 0  # leased: nobody else takes it yet
    time.sleep(1.2)
    assert delivery.deliver_once(session).sent == 1
    assert len(smtp.received) == 1


def test_cancellation_refund_and_event_cancelled_mails_use_their_templates(client, session, factory, smtp):
    from tests.support import make_gateway as gateway
    from webapp.services.admin import events as admin_events

    event = factory.ga_event(capacity=10, title="Open Air", timezone="America/New_York")
    buyer = factory.user()
    other = factory.user()
    mine = buy(session, event, buyer, quantities={factory.tier(event).id: 1})
    theirs = buy(session, event, other, quantities={factory.tier(event).id: 2})
    from tests.support import login

    token = login(client, buyer.email)
    assert client.post(f"/orders/{mine.id}/cancel", data={"csrf_token": token}).status_code in (303, 204)
    admin = factory.user(is_admin=True)
    admin_events.cancel_event(session, gateway(), actor_id=admin.id, event_id=event.id, reason="Storm warning")
    session.commit()
    deliver_all(session)

    subjects = {(m["To"], m["Subject"]) for m in smtp.received}
    assert (buyer.email, f"Your order #{mine.id} for Open Air was cancelled") in subjects
    assert any(to == other.email and subject.startswith("Cancelled: Open Air") for to, subject in subjects)
    cancelled = next(m for m in smtp.received if m["Subject"].startswith("Cancelled"))
    text_body = cancelled.get_body(preferencelist=("plain",)).get_content()
    assert "Storm warning" in text_body and "refunded in full" in text_body
    assert ("EDT" in text_body) or ("EST" in text_body)
    assert theirs.id and f"http://tickets.test/orders/{theirs.id}" in text_body


def test_message_links_use_public_url_whatever_the_request_host(app, client, session, factory, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://tickets.example.org")
    user = factory.user()
    evil = "http://evil.example.net"
    token = csrf_token_for(client, "/password/forgot", base_url=evil)
    assert client.post("/password/forgot", data={"email": user.email, "csrf_token": token},
                       base_url=evil).status_code == 200
    body = session.scalars(select(OutboxMessage)).one().body
    assert "https://tickets.example.org/password/reset/" in body and "evil" not in body


def csrf_token_for(client, path: str, **kw) -> str:
    import re

    page = client.get(path, **kw).get_data(as_text=True)
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def test_smtp_url_forms():
    assert delivery.parse_smtp_url("smtp://127.0.0.1:2525") == delivery.SmtpSettings("127.0.0.1", 2525, "none")
    tls = delivery.parse_smtp_url("smtps://me%40x.org:p%3Ass@mail.x.org")
    assert (tls.port, tls.security, tls.username, tls.password) == (465, "tls", "me@x.org", "p:ss")
    assert delivery.parse_smtp_url("smtp+starttls://mail.x.org").port == 587
    assert delivery.parse_smtp_url("smtp://mail.x.org?starttls=1").security == "auto"
    with pytest.raises(ValueError):
        delivery.parse_smtp_url("http://mail.x.org")


def test_deliver_mail_command_sends_and_says_so(app, session, factory, smtp):
    user = factory.user()
    account_tokens.send_verification(session, user)
    session.commit()
    email = user.email
    result = app.test_cli_runner().invoke(args=["deliver-mail", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output and smtp.received[0]["To"] == email


def test_a_message_that_cannot_be_rendered_fails_for_good_without_stopping_the_others(session, factory, smtp):
    user = factory.user()
    outbox.queue(session, template="order_confirmation", recipient=user.email, params={"order_id": 999999},
                 defer=True)
    account_tokens.send_verification(session, user)
    session.commit()
    result = delivery.deliver_once(session)
    assert (result.sent, result.failed) == (1, 1)
    broken = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).one()
    assert broken.failed_at is not None and "cannot render" in broken.last_error
    assert [m["Subject"] for m in smtp.received] == ["Confirm your e-mail address for Ticketbooth"]


def test_a_worker_told_to_stop_ends_its_pass_between_messages_and_leaves_the_rest_due(session, factory, smtp):
    """A pass of fifty confirmations outlasts a stop timeout: stopping between two messages sends none twice and
    delays none (the rest are due again at once, their claim not counted as an attempt)."""
    event = factory.ga_event(capacity=10)
    for _ in range(3):
        buy(session, event, factory.user())
    told = iter([False, True, True])
    first = delivery.deliver_once(session, stop=lambda: next(told))
    assert (first.sent, first.released) == (1, 2) and len(smtp.received) == 1
    session.expire_all()
    rest = session.execute(text("SELECT attempts, next_attempt_at <= now() FROM outbox_messages"
                                " WHERE sent_at IS NULL")).all()
    assert rest == [(0, True), (0, True)]
    second = delivery.deliver_once(session)
    assert second.sent == 2 and len(smtp.received) == 3
    assert len({mail["Message-ID"] for mail in smtp.received}) == 3
