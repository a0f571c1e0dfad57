"""The event as an iCalendar (`.ics`) file, with its venue's time zone.

icalendar writes the escaping, line folding and the VTIMEZONE block that
calendar programs need to place a local time correctly across DST changes.
"""
from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr

from flask import current_app
from flask_babel import gettext as _
from icalendar import Calendar
from icalendar import Event as VEvent

from webapp.models import Event, Order
from webapp.services.messaging import language, links
from webapp.timezones import localise

# We do not know when a show ends; calendars need a block to draw.
ASSUMED_LENGTH = timedelta(hours=2)


def event_ics(event: Event, order: Order | None = None) -> bytes:
    """The event; with `order`, in its buyer's language and saying where their tickets are."""
    with language.speaking(order.locale if order else None):
        return _event_ics(event, order)


def _event_ics(event: Event, order: Order | None) -> bytes:
    domain = parseaddr(current_app.config["MAIL_FROM"])[1].rpartition("@")[2] or "localhost"
    starts = localise(event.starts_at, event.timezone).replace(microsecond=0)
    cal = Calendar()
    cal.add("prodid", "-//Ticketbooth//Tickets//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    vevent = VEvent()
    vevent.add("uid", f"event-{event.id}@{domain}")
    vevent.add("summary", event.title)
    vevent.add("location", event.venue)
    vevent.add("dtstart", starts)
    vevent.add("dtend", starts + ASSUMED_LENGTH)
    vevent.add("dtstamp", event.updated_at or starts)
    vevent.add("url", links.link("shop.event_page", event_id=event.id))
    if order is not None:
        vevent.add("description", _("Your order #%(number)s at %(venue)s. Your tickets: %(url)s", number=order.id,
                                    venue=event.venue, url=links.link("account.order_page", order_id=order.id)))
    if event.status.value == "cancelled":
        vevent.add("status", "CANCELLED")
    cal.add_component(vevent)
    cal.add_missing_timezones()
    return cal.to_ical()
