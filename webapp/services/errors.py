"""What can go wrong when changing inventory, in words a buyer understands.

Each error carries the HTTP status a view should answer with, a message
that can be shown as it is, and the facts behind it, so that whoever
answers a refusal (the shop's pages, webapp/shop/refusals.py; the API's
problems, webapp/api/problems.py) answers from the error alone and both say
the same.
"""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext


class BookingError(Exception):
    status_code = 409
    # Marked for translation (lazy, at class level) and turned into text when
    # raised: in the language of the request that caused it.
    default_message: str = _l("That could not be done.")
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(self, message: str | None = None):
        text = str(message or self.default_message)
        super().__init__(text)
        self.message = text

    @property
    def facts(self) -> dict[str, Any]:
        """What a program needs to act on the refusal besides its words (which seats, how many are left)."""
        return {}


class NotFound(BookingError):
    status_code = 404
    default_message = _l("Not found.")


class InvalidRequest(BookingError):
    status_code = 400
    default_message = _l("The request was not valid.")


class BillingRequired(InvalidRequest):
    default_message = _l("The organiser asks for a billing name and address for the invoice.")


class SalesClosed(BookingError):
    default_message = _l("Tickets for this event are not on sale.")


class LimitExceeded(BookingError):
    status_code = 400


class TooSoonAgain(BookingError):
    """The buyer let these seats (or this tier) go a moment ago: a short cool-down against hoarding."""

    status_code = 429

    def __init__(self, wait_seconds: int, *, expired: bool, seated: bool):
        self.retry_after = wait_seconds
        if expired and seated:
            message = _("Your reservation of these seats ran out a moment ago; you can take them again in %(wait)s s.",
                        wait=wait_seconds)
        elif expired:
            message = _("Your reservation of tickets of this type ran out a moment ago; you can take them again in"
                        " %(wait)s s.", wait=wait_seconds)
        elif seated:
            message = _("You released these seats a moment ago; you can take them again in %(wait)s s.",
                        wait=wait_seconds)
        else:
            message = _("You released tickets of this type a moment ago; you can take them again in %(wait)s s.",
                        wait=wait_seconds)
        super().__init__(message)


class SeatsTaken(BookingError):
    def __init__(self, labels: list[str], unit_ids: list[int]):
        self.labels = labels
        self.unit_ids = unit_ids
        super().__init__(ngettext("Sorry, the following seat was just taken: %(names)s.",
                                  "Sorry, the following seats were just taken: %(names)s.", len(labels),
                                  names="; ".join(labels)))

    @property
    def facts(self) -> dict[str, Any]:
        return {"taken_seats": [{"id": i, "label": label} for i, label in zip(self.unit_ids, self.labels)]}


class NotEnoughLeft(BookingError):
    def __init__(self, tier_name: str, requested: int, left: int, waitlist_open: bool = False):
        self.tier_name = tier_name
        self.requested = requested
        self.left = left
        self.waitlist_open = waitlist_open
        if left == 0 and waitlist_open:
            msg = _("%(tier)s is sold out. You can join the waiting list.", tier=tier_name)
        elif left == 0:
            msg = _("%(tier)s is sold out.", tier=tier_name)
        else:
            msg = _("Only %(left)s left in %(tier)s; you asked for %(requested)s.", left=left, tier=tier_name,
                    requested=requested)
        super().__init__(msg)

    @property
    def facts(self) -> dict[str, Any]:
        return {"tier": self.tier_name, "requested": self.requested, "left": self.left,
                "waitlist_open": self.waitlist_open}


class HoldExpired(BookingError):
    status_code = 410
    default_message = _l("Your reservation has expired and its seats are no longer available.")


class HoldNotActive(BookingError):
    default_message = _l("This reservation is no longer active.")


class PaymentInProgress(BookingError):
    status_code = 409
    default_message = _l("A payment for this reservation is already being processed.")


class PaymentNeedsAction(BookingError):
    """The provider asks the buyer to confirm the payment with their bank (3-D Secure) in the browser."""

    status_code = 402
    default_message = _l("Your bank asks you to confirm this payment.")

    def __init__(self, client_secret: str):
        self.client_secret = client_secret
        super().__init__()


class PaymentDeclined(BookingError):
    status_code = 402

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)

    @property
    def facts(self) -> dict[str, Any]:
        return {"decline_code": self.code}


class OrderNotCancellable(BookingError):
    default_message = _l("This order can no longer be cancelled.")


class Busy(BookingError):
    """The database did not give us the lock in time: overload, try again."""

    status_code = 503
    retry_after = 2
    default_message = _l("We are very busy right now. Please try again in a moment.")


class AlreadyOnWaitlist(BookingError):
    default_message = _l("You are already on the waiting list for this event.")


class NotSoldOut(BookingError):
    default_message = _l("Tickets are still available: you can book them directly.")


class WaitlistClosed(BookingError):
    default_message = _l("This event has no waiting list.")


class SessionEnded(BookingError):
    """The buyer's session was ended elsewhere (logout, password reset): log in again."""

    status_code = 401
    default_message = _l("Your session has ended. Please log in again.")


class AccessCodeNeeded(BookingError):
    """A hidden tier, asked for without an access code that unlocks it now."""

    status_code = 403
    default_message = _l("These tickets are sold only with an access code. Open the link you were sent again,"
                       " or enter the code on the event page.")


class PassRequired(BookingError):
    """The event's waiting room is on and this buyer has no current pass of their own."""

    status_code = 403
    default_message = _l("Tickets for this event are sold through the waiting room: please take your place there.")


class PlacesLimitReached(BookingError):
    """The waiting room's limit of places per client address per minute (the organiser's rule)."""

    status_code = 429

    def __init__(self, wait_seconds: int):
        self.retry_after = wait_seconds
        super().__init__(_("Too many places in this waiting room were taken from your network in the last minute;"
                           " you can take one again in %(wait)s s.", wait=wait_seconds))


class ChallengeNotPassed(BookingError):
    """The waiting room's proof of work on join was missing, ran out, or did not check out."""

    status_code = 400
    default_message = _l("The check that comes with taking a place did not pass. Reload the page and try again.")


class TooManyWrongCodes(BookingError):
    """Too many discount or access codes that could not be used, from this account or this client address."""

    status_code = 429

    def __init__(self, wait_seconds: int):
        self.retry_after = wait_seconds
        super().__init__(_("Too many codes that could not be used were tried; please wait %(wait)s s before"
                           " trying another.", wait=wait_seconds))
