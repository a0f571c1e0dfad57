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
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp import metrics, session_user
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.services.errors import (
    AccessCodeNeeded,
    BookingError,
    InvalidRequest,
    LimitExceeded,
    NotEnoughLeft,
    NotFound,
    PassRequired,
    SalesClosed,
    SeatsTaken,
    SessionEnded,
    TooSoonAgain,
)
from webapp.shop import admission, page, seat_list

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
    listed: tuple[str, str] | None = None  # seats picked in the seat list: its (section, row), answered there

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


def log_in_first(event_id: int, picks: Iterable[tuple[str, str]], listed: tuple[str, str] | None = None) -> Response:
    """To the login page, then back to the event (or the seat list's row) with the same picks."""
    admission.load_public_event(event_id)  # an unknown event is a 404, not a login
    if listed is not None:
        query = urlencode([("section", listed[0]), ("row", listed[1]), *picks])
        back = url_for("shop.seat_list_page", event_id=event_id) + f"?{query}"
    else:
        query = urlencode(list(picks))
        back = url_for("shop.event_page", event_id=event_id) + (f"?{query}" if query else "")
    return redirect_to(url_for("auth.login_get", next=back))


def answer(refused: BookingError, ask: Ask, *, event_id: int, user_id: int, pass_problem: str | None) -> Response:
    """The page's answer to a refused reserve; re-raised when the app's error message answers it."""
    if isinstance(refused, NotFound) and getattr(current_user, "is_admin", False):
        # The statement answers a draft as an unknown id (for everyone: it cannot tell who asks). An admin
        # previewing the draft sees its page, so is told why it cannot be reserved; an unknown id stays a 404.
        admission.load_public_event(event_id)
        refused = SalesClosed()
    metrics.note_refusal(refused)
    kind = next((a for error, a in ANSWERS.items() if isinstance(refused, error)), None)
    if kind is Answer.TO_THE_WAITING_ROOM:
        log.info("waiting_room.refused", extra={"event_id": event_id, "user_id": user_id})
        return admission.room_required(event_id, pass_problem or refused.message)
    if kind is Answer.LOG_IN_AGAIN:
        session_user.forget()
        return log_in_first(event_id, ask.picks, ask.listed)
    drawn = DRAWN.get((ask.form, kind))
    # The seat list says in its row what the map says beside the picks, and a
    # bad request too (Reserve with nothing picked), which would otherwise
    # replace the whole list with the app's error message.
    in_list = ask.listed is not None and (kind is not None or isinstance(refused, InvalidRequest))
    if drawn is None and not in_list:
        raise refused
    db.session.rollback()
    if isinstance(refused, SeatsTaken):
        log.info("hold.lost_race", extra={"event_id": event_id, "user_id": user_id, "units": refused.unit_ids})
    event = admission.load_public_event(event_id)
    if in_list and ask.listed is not None:
        if not event.is_seated:
            abort(404)  # the list is a seated event's
        ctx = seat_list.context(event, *ask.listed, picked=ask.kept_seats(refused), message=refused.message,
                                refused=kind is not Answer.WHAT_CHANGED, user_id=user_id)
        return _with_retry_after(render("shop/seat_list.html", "shop/_seat_list.html", status=refused.status_code,
                                        **ctx), refused)
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
    return _with_retry_after(response, refused)


def _with_retry_after(response: Response, refused: BookingError) -> Response:
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response
