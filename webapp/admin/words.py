"""How staff pages say the values the database keeps as words (statuses, roles, kinds).

The database and the API keep the English token (`on_sale`, `box_office`);
a page shows it through `say(value)`, which translates the ones listed here
and shows any other value as it is (data, not a sentence).
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

WORDS = {
    # Event status
    "draft": _l("Draft"),
    "on_sale": _l("On sale"),
    "closed": _l("Closed"),
    "cancelled": _l("Cancelled"),
    # Seat and unit status
    "available": _l("available"),
    "held": _l("held"),
    "sold": _l("sold"),
    "blocked": _l("blocked"),
    # Order, ticket, payment, refund
    "confirmed": _l("Confirmed"),
    "refunded": _l("Refunded"),
    "valid": _l("valid"),
    "void": _l("void"),
    "pending": _l("pending"),
    "approved": _l("approved"),
    "declined": _l("declined"),
    "failed": _l("failed"),
    "requested": _l("requested"),
    "succeeded": _l("succeeded"),
    # Waiting list entry
    "waiting": _l("Waiting"),
    "offered": _l("Offered"),
    "fulfilled": _l("Fulfilled"),
    "left": _l("Left"),
    "removed": _l("Removed"),
    "lapsed": _l("Lapsed"),
    # Team roles
    "owner": _l("owner"),
    "manager": _l("manager"),
    "box_office": _l("box office"),
    "door": _l("door"),
    "viewer": _l("viewer"),
    # The sales chart's time unit
    "hour": _l("hour"),
    "day": _l("day"),
    "week": _l("week"),
    # Best available's orders (services/selling/events.py BEST_ORDERS)
    "front_centre": _l("Nearest the focal point"),
    "row_order": _l("Front rows first, left to right"),
    # Question kinds
    "text": _l("Text"),
    "number": _l("Number"),
    "choice": _l("One choice"),
    "choices": _l("Several choices"),
    "checkbox": _l("Checkbox (consent)"),
    "date": _l("Date"),
}

# The seat properties (models.SEAT_PROPERTIES) as the admin's seat-property form names them.
SEAT_PROPERTY_WORDS = {
    "wheelchair": _l("Wheelchair space"),
    "companion": _l("Companion seat"),
    "restricted_view": _l("Restricted view"),
    "aisle": _l("Aisle seat"),
}


def say(value: object) -> str:
    """The words for a stored token in the page's language; an unknown token as it is."""
    token = getattr(value, "value", value)
    word = WORDS.get(str(token))
    return str(word) if word is not None else str(token)
