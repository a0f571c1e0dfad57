"""Mails, PDFs, `.ics`, flash messages, form errors and API problems in the buyer's language.

Completeness is checked with pseudo-catalogs: each German and Spanish
`msgstr` is wrapped in ⟦…⟧ and every kind of mail the app sends is rendered
with them; what is left outside the markers must be data (names, titles,
dates, links). A string nobody marked, or one the catalog lacks, shows up as
a leftover word. The rest speaks real German and Spanish: an order bought
with `Accept-Language: de` is mailed in German by the worker, which runs
outside any request, with a German ticket PDF, invoice and `.ics`.
"""
from __future__ import annotations

import html
import io
import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask.testing import FlaskClient
from flask_babel import get_domain, refresh
from icalendar import Calendar
from pypdf import PdfReader
from sqlalchemy import select

from tests import pseudo_locale
from tests.smtp_support import SmtpServer
from tests.support import buy, csrf_token, expire_now, sign_in
from webapp.i18n import TRANSLATIONS
from webapp.models import Hold, HoldStatus, OutboxMessage, WaitingRoomEntry
from webapp.services.admin import events as admin_events
from webapp.services.admin import orders as admin_orders
from webapp.services.messaging import delivery, language, mail
from webapp.services.money import checkout
from webapp.services.people import account_tokens, api_tokens, organisers
from webapp.services.selling import inventory, transfers
from webapp.services.waiting import waitlist
from webapp.templating import when

OPEN, CLOSE = "⟦", "⟧"
LANGUAGES = ("de", "es")
GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "name": "Ada Lovelace"}


def catalog(lang: str):
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return read_po(source, locale=lang)


def pseudo(lang: str) -> Translations:
    """The language's catalog with each translation wrapped in markers; an untranslated entry stays out."""
    marked = catalog(lang)
    for message in list(marked):
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(forms):
            marked.delete(message.id, message.context)
            continue
        wrapped = tuple(f"{OPEN}{form}{CLOSE}" for form in forms)
        message.string = wrapped if isinstance(message.string, tuple) else wrapped[0]
    buffer = io.BytesIO()
    write_mo(buffer, marked)
    buffer.seek(0)
    return Translations(fp=buffer)


@pytest.fixture
def marked(app_ctx, monkeypatch):
    """Use the pseudo-catalog of a language for the rest of the test (Flask-Babel's cache, put back after)."""
    def use(lang: str) -> None:
        monkeypatch.setitem(get_domain().cache, (lang, "messages"), pseudo(lang))
        pseudo_locale.forget_kept_words()  # the templates' kept catalog of `lang` is the real one
    yield use
    monkeypatch.undo()
    pseudo_locale.forget_kept_words()  # nor may the pseudo-catalog stay kept for the tests after


def leftovers(text: str, data: set[str]) -> list[str]:
    """Words outside the markers that are not data."""
    while True:  # innermost first: a translated value (a role, "2 hours") sits inside a translated sentence
        inner = re.sub(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}", " ", text)
        if inner == text:
            break
        text = inner
    text = re.sub(r"https?://\S+|\S+@\S+", " ", text)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    return re.findall(r"[^\W\d_]{2,}", text)


def visible(html_body: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "\n", html_body))


@pytest.fixture
def every_mail(session, factory, gateway):
    """One outbox row of each kind the app sends, each made by the service that sends it."""
    dana, rae, admin = factory.user(name="Dana Buyer"), factory.user(name="Rae Friend"), factory.user(is_admin=True)
    seated = factory.seated_event(rows=1, seats_per_row=3, title="Zauberflöte")
    order = factory.order(seated, dana, seats=factory.seat_ids(seated)[:2], billing_name="Dana Buyer",
                          billing_address="1 Main St")
    transfers.offer(session, ticket_id=order.tickets[0].id, user_id=dana.id, to_email="rae@example.com")
    session.commit()
    admin_orders.refund(session, gateway, actor_id=admin.id, order_id=order.id, reason="Late start",
                        amount_minor=500)

    # The waiting list: Rae has the last place and gives it back; Dana is offered it and lets it run out.
    scarce = factory.ga_event(capacity=1, title="Sold Out Gig")
    rae_order = buy(session, scarce, rae, gateway=gateway)
    waitlist.join(session, user_id=dana.id, event_id=scarce.id, tier_id=None, quantity=1)
    session.commit()
    checkout.cancel_by_buyer(session, gateway, order_id=rae_order.id, user_id=rae.id)
    session.commit()
    offer = session.scalars(select(Hold).where(Hold.waitlist_entry_id.is_not(None),
                                               Hold.status == HoldStatus.ACTIVE)).one()
    expire_now(session, offer.id)
    inventory.expire_holds(session)
    session.commit()

    doomed = factory.ga_event(capacity=5, title="Rained Off")
    buy(session, doomed, dana, gateway=gateway)
    admin_events.cancel_event(session, gateway, actor_id=admin.id, event_id=doomed.id, reason="Storm warning")
    session.commit()

    account_tokens.request_reset(session, dana.email)
    account_tokens.send_verification(session, dana)
    organisers.invite(session, organiser_id=seated.organiser_id, email="new.member@example.com", role="box_office",
                      actor_id=None)
    entry = WaitingRoomEntry(event_id=seated.id, user_id=None, anon_token="a" * 32, line_key=1, number=1,
                             status="admitted", admitted_at=datetime.now(timezone.utc),
                             pass_until=datetime.now(timezone.utc) + timedelta(minutes=10))
    session.add(entry)
    session.flush()
    session.add(OutboxMessage(recipient="anon@example.com", template="waiting_room_turn", subject="",
                              params={"entry_id": entry.id}, message_id="<turn@test>"))
    session.commit()

    rows = {}
    for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)):
        rows.setdefault(row.template, row)
    data = {"Dana Buyer", "Rae Friend", "Late start", "Storm warning", "Test Hall", "Ticketbooth", "General",
            "Zauberflöte", "Sold Out Gig", "Rained Off", order.tickets[0].tier.name, order.tickets[0].unit.section,
            "EUR", "Apple Wallet", "Google Wallet"}
    data |= {t.code for t in order.tickets}
    moments = [(e.starts_at, None) for e in (seated, scarce, doomed)]
    moments += [(offer.expires_at, scarce.timezone), (entry.pass_until, seated.timezone)]
    return rows, data, moments


def dates(moments, lang: str) -> set[str]:
    """The dates as the mails write them in this language: data, formatted, not translated text."""
    with language.speaking(lang):
        return {when(value, tz=tz) for value, tz in moments} | {when(value, "%d %b %Y") for value, _ in moments}


def test_every_kind_of_mail_is_made_by_the_fixture(every_mail):
    rows, _data, _moments = every_mail
    assert set(rows) == set(mail.CONTEXTS)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_mail_has_every_line_translated(session, every_mail, marked, lang):
    rows, data, moments = every_mail
    marked(lang)
    data = data | dates(moments, lang)
    found = {}
    for template, row in sorted(rows.items()):
        subject, text_body, html_body = mail.render(session, template, row.params, lang)
        assert OPEN in subject and OPEN in text_body and OPEN in html_body, template
        for part, text in (("subject", subject), ("text", text_body), ("html", visible(html_body))):
            if words := leftovers(text, data):
                found[f"{template} {part}"] = words
    assert found == {}


def test_the_pseudo_check_finds_an_unmarked_line(session, every_mail, marked):
    """The check itself: English the catalog does not know is caught."""
    rows, data, moments = every_mail
    marked("de")
    _, text_body, _ = mail.render(session, "password_reset", rows["password_reset"].params, "de")
    assert leftovers(text_body + "\nPlease ignore this.", data | dates(moments, "de")) == ["Please", "ignore", "this"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_catalogs_have_no_empty_or_fuzzy_entry_and_keep_every_placeholder(lang):
    problems = []
    for message in catalog(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(re.findall(r"%\((\w+)\)s", " ".join(ids)))
        if message.fuzzy or not all(forms):
            problems.append(("untranslated", ids[0]))
        for form in forms:
            # A plural's count may be left unsaid ("a ticket"): any other placeholder must stay.
            if set(re.findall(r"%\((\w+)\)s", form)) - {"count", "num"} != wanted - {"count", "num"}:
                problems.append(("placeholders", ids[0]))
    assert problems == []


@pytest.fixture
def smtp(app, monkeypatch):
    server = SmtpServer().start()
    monkeypatch.setitem(app.config, "SMTP_URL", server.url)
    yield server
    server.stop()


class FreshContextClient(FlaskClient):
    """Each request in an app context of its own, as in production."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def test_an_order_bought_in_german_is_mailed_in_german_by_the_worker_with_german_files(app, session, factory, smtp):
    event = factory.seated_event(rows=1, seats_per_row=3, title="Zauberflöte")
    buyer = factory.user(name="Dana Buyer")
    secret = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="t", scope="buyer").secret
    session.commit()
    client = FreshContextClient(app, app.response_class)
    headers = {"Authorization": f"Bearer {secret}", "Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
    hold = client.post(f"/api/v1/events/{event.id}/holds", json={"seats": factory.seat_ids(event)[:1]},
                       headers=headers).get_json()
    paid = client.post(f"/api/v1/holds/{hold['id']}/payment",
                       json={"card": GOOD_CARD, "billing": {"name": "Dana Buyer", "address": "1 Main St"}},
                       headers={**headers, "Idempotency-Key": "german-order-0001"})
    assert paid.status_code == 201, paid.get_data(as_text=True)
    order_id = paid.get_json()["id"]
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).one()
    assert row.locale == "de" and row.body is None  # rendered later, by the worker

    # The worker: its own app context, no request at all.
    with app.app_context():
        from webapp.extensions import db

        delivery.deliver_once(db.session)
    [sent] = smtp.received
    assert sent["Subject"] == f"Ihre Tickets für Zauberflöte (Bestellung Nr. {order_id})"
    body = sent.get_body(preferencelist=("plain",)).get_content()
    assert "Hallo Dana Buyer," in body and "vielen Dank für Ihre Bestellung" in body and "Reihe A, Platz 1" in body
    assert 'lang="de"' in sent.get_body(preferencelist=("html",)).get_content()

    files = {part.get_filename(): part.get_payload(decode=True) for part in sent.iter_attachments()}
    tickets = PdfReader(io.BytesIO(files[f"tickets-order-{order_id}.pdf"])).pages[0].extract_text()
    assert "Ticket 1 von 1" in tickets and f"Bestellung Nr. {order_id}" in tickets
    assert "Zeigen Sie diese Seite oder den QR-Code am Einlass vor." in " ".join(tickets.split())
    [invoice_name] = [name for name in files if name.startswith("invoice-")]
    invoice = " ".join(PdfReader(io.BytesIO(files[invoice_name])).pages[0].extract_text().split())
    assert "Rechnung" in invoice and "Rechnungsempfänger" in invoice and "Bezahlt gesamt" in invoice
    assert "Invoice" not in invoice and "Total paid" not in invoice
    vevent = Calendar.from_ical(files[f"event-{event.id}.ics"]).walk("VEVENT")[0]
    assert str(vevent["SUMMARY"]) == "Zauberflöte"
    assert str(vevent["DESCRIPTION"]).startswith(f"Ihre Bestellung Nr. {order_id} im/in Test Hall. Ihre Tickets:")


@contextmanager
def request_in(app, accept_language: str):
    """A request asking for a language; Flask-Babel's per-context cache is cleared, as a new request's would be."""
    with app.test_request_context("/", headers={"Accept-Language": accept_language}):
        refresh()
        yield
    refresh()


def test_an_admins_refund_speaks_the_buyers_language_not_the_admins(app, session, factory, gateway):
    event = factory.ga_event(capacity=5, title="Konzert")
    buyer, admin = factory.user(name="Dana Buyer"), factory.user(is_admin=True)
    with request_in(app, "es"):
        order = factory.order(event, buyer, billing_name="Dana Buyer", billing_address="Calle 1")
    assert order.locale == "es"
    with request_in(app, "de"):  # the admin reads German
        admin_orders.refund(session, gateway, actor_id=admin.id, order_id=order.id, reason="Retraso",
                            amount_minor=1000)
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "refund_issued")).one()
    assert row.locale == "es" and row.subject.startswith("Un reembolso de")
    [note] = mail.attachments(session, row)
    text = " ".join(PdfReader(io.BytesIO(note.data)).pages[0].extract_text().split())
    assert "Factura rectificativa" in text and "Total reembolsado" in text and "Motivo: Retraso" in text


def test_the_waiting_list_offer_speaks_the_language_of_the_request_that_joined(app, session, factory, gateway):
    event = factory.ga_event(capacity=1, title="Ausverkauft")
    first, waiting = factory.user(), factory.user(name="Dana Buyer")
    order = buy(session, event, first, gateway=gateway)
    with request_in(app, "de"):
        waitlist.join(session, user_id=waiting.id, event_id=event.id, tier_id=None, quantity=1)
    session.commit()
    checkout.cancel_by_buyer(session, gateway, order_id=order.id, user_id=first.id)  # no request: a worker's
    session.commit()
    offer = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "waitlist_offer")).one()
    assert offer.locale == "de" and offer.subject == "Tickets warten auf Sie: Ausverkauft"
    assert "gute Nachrichten: Ein Ticket für Ausverkauft" in offer.body


def test_a_link_lifetime_is_said_in_the_mails_language(app_ctx):
    with language.speaking("de"):
        assert (mail.valid_for(3600), mail.valid_for(5400), mail.valid_for(7 * 86400)) == \
            ("1 Stunde", "1,5 Stunden", "7 Tage")
    with language.speaking("es"):
        assert mail.valid_for(86400, days_from_hours=0) == "1 día"
    assert mail.valid_for(7200) == "2 hours"


def test_flash_messages_and_form_errors_are_german_for_a_german_browser(client, session, factory):
    german = {"Accept-Language": "de"}
    page = client.get("/orders", headers=german, follow_redirects=True).get_data(as_text=True)
    assert "Bitte melden Sie sich an, um fortzufahren." in page
    buyer = factory.user()
    sign_in(client, buyer.id)
    event = factory.ga_event(capacity=5)
    hold = factory.hold(event, buyer)
    token = csrf_token(client, f"/holds/{hold.id}")
    refused = client.post(f"/holds/{hold.id}/pay", headers={**german, "X-CSRFToken": token},
                          data={"name": "A", "number": "4242 4242 4242 4241", "expiry": "13/30", "cvc": "1",
                                "idempotency_key": "k" * 24})
    page = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 400
    assert "Diese Kartennummer ist ungültig; prüfen Sie sie auf Tippfehler." in page
    assert "Verwenden Sie das Format MM/JJ, z. B. 04/29." in page
    assert "Die Prüfnummer (CVC) sind die 3 oder 4 Ziffern auf der Rückseite der Karte." in page
    # WTForms' own messages come from its German catalog (Flask-WTF's i18n uses Flask-Babel's locale).
    empty = client.post(f"/holds/{hold.id}/pay", headers={**german, "X-CSRFToken": token},
                        data={"idempotency_key": "k" * 24})
    assert "Dieses Feld wird benötigt." in html.unescape(empty.get_data(as_text=True))


def test_an_api_problem_has_its_title_in_the_clients_language(client):
    refused = client.get("/api/v1/orders", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert refused.status_code == 401
    assert refused.get_json()["title"] == "No autorizado"
    assert client.get("/api/v1/orders").get_json()["title"] == "Unauthorized"


def test_a_services_refusal_reaches_the_api_client_in_its_language(app, session, factory):
    event = factory.ga_event(capacity=1, title="Lleno")
    buy(session, event, factory.user())
    buyer = factory.user()
    secret = api_tokens.create(session, user_id=buyer.id, is_admin=False, name="t", scope="buyer").secret
    session.commit()
    client = FreshContextClient(app, app.response_class)
    refused = client.post(f"/api/v1/events/{event.id}/holds",
                          json={"quantities": [{"tier_id": event.tiers[0].id, "quantity": 1}]},
                          headers={"Authorization": f"Bearer {secret}", "Accept-Language": "es"})
    body = refused.get_json()
    assert refused.status_code == 409 and body["title"] == "Conflicto"
    assert body["detail"] == f"{event.tiers[0].name} está agotado. Puede apuntarse a la lista de espera."


def test_the_turn_mail_speaks_the_language_of_the_request_that_asked_for_it(app, client, session, factory):
    from tests.test_waiting_room import HX, admit, buyer, call, join_over_http, room, start_sale, token_of

    event = factory.ga_event(capacity=20, title="Hot Gig")
    room(session, event, cap=1)
    buyer(client, factory)
    join_over_http(client, event.id)
    token = token_of(client)
    refresh()  # the test's requests share one app context: forget the language the last one chose
    asked = call(client, "post", f"/events/{event.id}/waiting-room/mail", data={},
                 headers={**HX, "X-CSRFToken": token, "Accept-Language": "es"})
    assert asked.status_code == 200  # the partial is a buyer page's template, translated elsewhere
    refresh()
    start_sale(session, event.id)
    admit(session, event.id)  # the admission pass: no request of the buyer's
    row = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "waiting_room_turn")).one()
    assert row.locale == "es" and row.body is None
    subject, text_body, _html = mail.render(session, row.template, row.params, row.locale)
    assert subject == "Es su turno: Hot Gig" and "Es su turno en la sala de espera de Hot Gig" in text_body


def test_a_wallet_pass_is_labelled_in_the_buyers_language(app, session, factory):
    from webapp.services.messaging import wallet

    event = factory.ga_event(capacity=5, title="Konzert")
    with request_in(app, "de"):
        order = factory.order(event, factory.user())
    ticket = wallet.pass_ticket(session, order.tickets[0].id)
    assert ticket is not None and ticket.locale == "de"
    config = {"APPLE_PASS_TYPE_ID": "pass.test", "APPLE_TEAM_ID": "TEAM", "PUBLIC_URL": "http://t",
              "SECRET_KEY": "s"}
    fields = wallet.pass_json(ticket, config)["eventTicket"]
    labels = [f["label"] for group in fields.values() for f in group]
    assert labels == ["VERANSTALTUNG", "PLATZ", "TICKET", "EINLASS", "Veranstaltungsort"]


def test_no_function_hides_gettext_behind_a_throwaway_variable():
    """`version, _ = ...` makes `_` local to the whole function: a `_("…")` in it then calls the tuple's item."""
    import ast
    from pathlib import Path

    hidden = []
    for path in sorted((Path(__file__).resolve().parent.parent / "webapp").rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            inner = {id(n) for c in ast.walk(function) if isinstance(c, ast.comprehension) for n in ast.walk(c.target)}
            nodes = list(ast.walk(function))
            assigns = any(isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store)
                          and id(n) not in inner for n in nodes)
            calls = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_" for n in nodes)
            if assigns and calls:
                hidden.append(f"{path.name}:{function.lineno} {function.name}")
    assert hidden == []
