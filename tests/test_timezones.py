"""Venue time zones: UTC in the database, the venue's clock on every page, ticket, file and mail."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from icalendar import Calendar
from pypdf import PdfReader
from sqlalchemy import select, text

from tests.support import admin_client, buy, login
from webapp.models import Event, OutboxMessage
from webapp.services.messaging import calendar, mail

VIENNA, NEW_YORK = ZoneInfo("Europe/Vienna"), ZoneInfo("America/New_York")


def stored_utc(session, event_id: int) -> str:
    return session.execute(text("SELECT to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                                " FROM events WHERE id = :e"), {"e": event_id}).scalar_one()


def test_vienna_and_new_york_events_show_their_own_local_times(client, session, factory):
    vienna = factory.ga_event(title="Mahler 5", timezone="Europe/Vienna",
                              starts_at=datetime(2031, 1, 15, 19, 0, tzinfo=VIENNA))
    new_york = factory.ga_event(title="Fourth of July", timezone="America/New_York",
                                starts_at=datetime(2031, 7, 4, 20, 30, tzinfo=NEW_YORK))
    assert stored_utc(session, vienna.id) == "2031-01-15 18:00"
    assert stored_utc(session, new_york.id) == "2031-07-05 00:30"

    listing = client.get("/").get_data(as_text=True)
    assert "Wed 15 Jan 2031, 19:00 CET" in listing and "Fri 04 Jul 2031, 20:30 EDT" in listing
    assert "19:00 CET" in client.get(f"/events/{vienna.id}").get_data(as_text=True)
    assert "20:30 EDT" in client.get(f"/events/{new_york.id}").get_data(as_text=True)


def test_tickets_pdf_ics_and_mail_carry_the_venue_time(client, session, factory):
    event = factory.ga_event(title="Open Air", timezone="America/New_York",
                             starts_at=datetime(2031, 7, 4, 20, 30, tzinfo=NEW_YORK))
    buyer = factory.user()
    order = buy(session, event, buyer, quantities={factory.tier(event).id: 2})
    login(client, buyer.email)

    assert "Fri 04 Jul 2031, 20:30 EDT" in client.get(f"/orders/{order.id}").get_data(as_text=True)
    pdf = client.get(f"/orders/{order.id}/tickets.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    pages = PdfReader(io.BytesIO(pdf.data)).pages
    assert len(pages) == 2 and "20:30 EDT" in pages[0].extract_text()

    ics = Calendar.from_ical(calendar.event_ics(session.get(Event, event.id)))
    start = ics.walk("VEVENT")[0]["DTSTART"]
    assert start.params["TZID"] == "America/New_York" and start.dt.strftime("%H:%M") == "20:30"
    assert start.dt.astimezone(timezone.utc).strftime("%d %H:%M") == "05 00:30"

    message = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_confirmation")).one()
    _, body, html = mail.render(session, message.template, message.params)
    assert "Fri 04 Jul 2031, 20:30 EDT" in body and "20:30 EDT" in html


def test_the_pdf_is_only_for_its_buyer(client, session, factory):
    event = factory.ga_event()
    order = buy(session, event, factory.user(), quantities={factory.tier(event).id: 1})
    login(client, factory.user().email)
    assert client.get(f"/orders/{order.id}/tickets.pdf").status_code == 404


def _form_start(client, event_id: int) -> str:
    page = client.get(f"/admin/events/{event_id}/edit").get_data(as_text=True)
    return re.search(r'name="starts_at"[^>]*value="([^"]+)"', page).group(1)


def _event_form(token: str, starts_at: str, tz: str = "Europe/Vienna", title: str = "Spring Forward") -> dict:
    return {"csrf_token": token, "title": title, "venue": "Musikverein", "timezone": tz, "starts_at": starts_at,
            "hold_minutes": "8", "per_order_limit": "4", "offer_hours": "12"}


def test_admin_form_round_trips_local_times_across_a_dst_change(client, session, factory):
    client, _, token = admin_client(client, factory)
    # Vienna moves from CET (UTC+1) to CEST (UTC+2) at 02:00 on Sunday 30 March 2031.
    created = client.post("/admin/events/new", data=_event_form(token, "2031-03-30T01:30"))
    assert created.status_code == 303
    event = session.scalars(select(Event).where(Event.title == "Spring Forward")).one()
    assert event.timezone == "Europe/Vienna"
    assert stored_utc(session, event.id) == "2031-03-30 00:30"
    assert _form_start(client, event.id) == "2031-03-30T01:30"

    moved = client.post(f"/admin/events/{event.id}/edit", data=_event_form(token, "2031-03-30T03:30"))
    assert moved.status_code == 303
    assert stored_utc(session, event.id) == "2031-03-30 01:30"  # two hours of wall clock, one real hour
    assert _form_start(client, event.id) == "2031-03-30T03:30"
    assert "Sun 30 Mar 2031, 03:30 CEST" in client.get(f"/admin/events/{event.id}").get_data(as_text=True)

    # 02:30 that night never happens in Vienna: refused, with the reason.
    gap = client.post(f"/admin/events/{event.id}/edit", data=_event_form(token, "2031-03-30T02:30"))
    assert gap.status_code == 400 and "does not exist" in gap.get_data(as_text=True)
    assert stored_utc(session, event.id) == "2031-03-30 01:30"

    # Changing only the zone keeps the wall-clock time and moves the instant.
    rezoned = client.post(f"/admin/events/{event.id}/edit",
                          data=_event_form(token, "2031-03-30T03:30", tz="America/New_York"))
    assert rezoned.status_code == 303
    assert stored_utc(session, event.id) == "2031-03-30 07:30"
    assert _form_start(client, event.id) == "2031-03-30T03:30"


def test_an_autumn_time_that_happens_twice_means_the_first(client, session, factory):
    client, _, token = admin_client(client, factory)
    # Vienna's clocks go back from 03:00 CEST to 02:00 CET on 26 October 2031: 02:30 happens twice.
    created = client.post("/admin/events/new", data=_event_form(token, "2031-10-26T02:30", title="Fall Back"))
    assert created.status_code == 303
    event = session.scalars(select(Event).where(Event.title == "Fall Back")).one()
    assert stored_utc(session, event.id) == "2031-10-26 00:30"
    assert _form_start(client, event.id) == "2031-10-26T02:30"


def test_an_unknown_zone_is_refused_with_a_message(client, factory):
    client, _, token = admin_client(client, factory)
    response = client.post("/admin/events/new", data=_event_form(token, "2031-05-01T19:30", tz="Mars/Olympus"))
    assert response.status_code == 400 and "Pick the venue time zone" in response.get_data(as_text=True)


def test_demo_events_have_real_zones(session):
    from webapp.services import demo

    demo.seed(session)
    session.commit()
    zones = {e.title: (e.timezone, e.starts_at.strftime("%H:%M")) for e in session.scalars(select(Event))}
    assert zones["Vienna Philharmonic — Mahler 5"] == ("Europe/Vienna", "19:00")
    assert zones["Riverside Summer Festival"] == ("America/New_York", "12:00")
    assert zones["Late Night Jazz at The Cellar"] == ("Europe/London", "20:00")
