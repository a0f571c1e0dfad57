"""Venue time zones: the database keeps UTC, people see and type the venue's local time.

An event's `starts_at` is loaded as an aware datetime already in its venue's
zone (see the listener at the end of `webapp/models/events.py`), so every template
that prints it with the `when` filter shows local time and the zone's
abbreviation without knowing about zones. Other times (a hold's deadline)
are converted with `when(tz=...)`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UTC = timezone.utc


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped by a daylight-saving change (e.g. 02:30 on the spring-forward night)."""


def zone(name: str | None) -> ZoneInfo:
    """The zone called `name`; UTC for an empty or unknown name (an event must always display)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_valid_zone(name: str) -> bool:
    return name in zone_names()


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone name the system knows, sorted, for the admin's picker."""
    return tuple(sorted(n for n in available_timezones() if "/" in n or n == "UTC"))


def localise(value: datetime, tz: str | None) -> datetime:
    """The same instant on the venue's clock. A naive value is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone(tz))


def from_local(naive: datetime, tz: str) -> datetime:
    """An admin's wall-clock time at the venue, as an aware datetime.

    A time skipped by a DST change is refused: silently shifting a show by an
    hour is worse than asking. A repeated time (autumn) means its first
    occurrence, the summer-time one, which is what people mean by "02:30".
    """
    z = zone(tz)
    aware = naive.replace(tzinfo=z, fold=0)
    round_trip = aware.astimezone(UTC).astimezone(z).replace(tzinfo=None)
    if round_trip != naive.replace(tzinfo=None):
        raise NonexistentLocalTime(
            f"{naive:%H:%M} does not exist on {naive:%d %b %Y} in {tz}: the clocks skip it (daylight saving)."
        )
    return aware


def to_form(value: datetime, tz: str) -> datetime:
    """The naive local value an <input type=datetime-local> shows."""
    return localise(value, tz).replace(tzinfo=None)
