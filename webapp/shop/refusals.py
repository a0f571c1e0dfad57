"""How the shop answers a refused reserve, whichever form sent it: the seat map, the tier picker, best available.

A reserve is refused with an error of `webapp/services/errors.py`: the
reserve statement's TBnnn codes are read into those errors by one table
(`inventory.REFUSALS`). The API answers the same errors as problem details,
status, words, Retry-After and facts all taken from the error
(`webapp/api/problems.py`); the pages answer them here, by one table
(`ANSWERS`, then `DRAWN` for where), and every answer that shows the page
draws it from one read (`page.context`).
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import abort, url_for
from werkzeug.wrappers import Response

from webapp import session_user
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.services.errors import (
    AccessCodeNeeded,
    BookingError,
    LimitExceeded,
    NotEnoughLeft,
    PassRequired,
    SeatsTaken,
    SessionEnded,
    TooSoonAgain,
)
from webapp.shop import admission, page

log = logging.getLogger(__name__)


class Answer(enum.Enum):
    """What a refused buyer is shown."""

    TO_THE_WAITING_ROOM = "the waiting room's refusal, with the way back to it"
    LOG_IN_AGAIN = "the login page, then back to the same picks"
    WHAT_CHANGED = "what other buyers took meanwhile, and the rest of the picks"
    BESIDE_THE_PICKS = "the refusal beside the picks, all of them kept"


ANSWERS: dict[type[BookingError], Answer] = {
    PassRequired: Answer.TO_THE_WAITING_ROOM,
    SessionEnded: Answer.LOG_IN_AGAIN,
    SeatsTaken: Answer.WHAT_CHANGED,
    NotEnoughLeft: Answer.WHAT_CHANGED,
    LimitExceeded: Answer.BESIDE_THE_PICKS,
    TooSoonAgain: Answer.BESIDE_THE_PICKS,
    AccessCodeNeeded: Answer.BESIDE_THE_PICKS,
}


@dataclass(frozen=True)
class Drawn:
    """The partial an answer is drawn in for htmx; without JavaScript the whole page answers."""

    partial: str
    into: str | None = None  # for htmx, an element other than the one the form swaps (its content)


# Seats taken meanwhile redraw the whole map, from the hall's cached geometry:
# a seat's state is drawn on its label, which has no id to swap it by, and
# the summary, whose Reserve button gets the focus back (app.js), must follow
# the seats still picked.
_MAP = Drawn("shop/_seat_map.html")
_PICKER = Drawn("shop/_tier_picker.html")
_BEST = Drawn("shop/_best_available.html")
# Places lost to other buyers: the message and the changed counts, the picker
# left as the buyer set it.
_LEFT_NOW = Drawn("shop/_too_few_left.html", into="#tier-picker-message")

# Per form, the partial of each answer. A refusal with no answer here (a bad
# request, sales closed, busy) is the app's error message (webapp/errors.py),
# except in the best-available box, which says every refusal itself.
DRAWN: dict[tuple[str, Answer | None], Drawn] = {
    ("seats", Answer.WHAT_CHANGED): _MAP,
    ("seats", Answer.BESIDE_THE_PICKS): _MAP,
    ("places", Answer.WHAT_CHANGED): _LEFT_NOW,
    ("places", Answer.BESIDE_THE_PICKS): _PICKER,
    ("best", Answer.WHAT_CHANGED): _BEST,
    ("best", Answer.BESIDE_THE_PICKS): _BEST,
    ("best", None): _BEST,
}


@dataclass(frozen=True)
class Ask:
    """What the buyer asked to reserve: sent to inventory, and drawn again beside a refusal."""

    form: str  # "seats", "places" or "best"
    seats: tuple[int, ...] = ()
    quantities: dict[int, int] = field(default_factory=dict)
    best: dict = field(default_factory=dict)  # the best-available box's choice, as typed
    picks: tuple[tuple[str, str], ...] = ()  # the form's picks as sent, for the way back from login

    @property
    def wanted(self) -> dict:
        """What a seat or general-admission reserve asks of `inventory.reserve`."""
        return {"seat_ids": self.seats} if self.form == "seats" else {"quantities": self.quantities}

    def kept_seats(self, refused: BookingError) -> list[int]:
        """The picked seats still worth showing picked: all but those just taken."""
        lost = set(refused.unit_ids) if isinstance(refused, SeatsTaken) else set()
        return [s for s in self.seats if s not in lost]


def picks_of(form) -> tuple[tuple[str, str], ...]:
    """The picks of a reserve form (seats, quantities) as the event page's query takes them."""
    return tuple((k, v) for k, v in form.items(multi=True) if k == "seat" or k.startswith("qty-"))


def log_in_first(event_id: int, picks: Iterable[tuple[str, str]]) -> Response:
    """To the login page, then back to the event with the same picks."""
    admission.load_public_event(event_id)  # an unknown event is a 404, not a login
    query = urlencode(list(picks))
    back = url_for("shop.event_page", event_id=event_id) + (f"?{query}" if query else "")
    return redirect_to(url_for("auth.login_get", next=back))


def answer(refused: BookingError, ask: Ask, *, event_id: int, user_id: int, pass_problem: str | None) -> Response:
    """The page's answer to a refused reserve; re-raised when the app's error message answers it."""
    kind = next((a for error, a in ANSWERS.items() if isinstance(refused, error)), None)
    if kind is Answer.TO_THE_WAITING_ROOM:
        log.info("waiting_room.refused", extra={"event_id": event_id, "user_id": user_id})
        return admission.room_required(event_id, pass_problem or refused.message)
    if kind is Answer.LOG_IN_AGAIN:
        session_user.forget()
        return log_in_first(event_id, ask.picks)
    drawn = DRAWN.get((ask.form, kind))
    if drawn is None:
        raise refused
    db.session.rollback()
    if isinstance(refused, SeatsTaken):
        log.info("hold.lost_race", extra={"event_id": event_id, "user_id": user_id, "units": refused.unit_ids})
    event = admission.load_public_event(event_id)
    if ask.form != "best" and (ask.form == "seats") != event.is_seated:
        # A form of the other kind (places asked of a seated event, seats of a
        # general-admission one) is answered by the event's own map or picker.
        drawn = _MAP if event.is_seated else _PICKER
    if ask.form == "best":
        if not event.is_seated:
            abort(404)
        ctx = page.context(event, user_id=user_id, best=dict(ask.best, message=refused.message))
    else:
        # A big venue's section page is drawn again even when all its picks were just taken.
        section, part = page.section_of(event, ask.seats) or (None, None)
        ctx = page.context(event, seats=ask.kept_seats(refused), quantities=ask.quantities,
                           message=refused.message, user_id=user_id, section=section, part=part)
    response = render("shop/event.html", drawn.partial, status=refused.status_code,
                      refused=kind is Answer.BESIDE_THE_PICKS, asked=ask.quantities, **ctx)
    if drawn.into and is_partial_request():
        response.headers["HX-Retarget"] = drawn.into
        response.headers["HX-Reswap"] = "innerHTML"
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response
