"""The seat list: a seated event's seats step by step (section, row, seat), for keyboard and screen-reader buyers.

One URL, two renderings: `/events/<id>/seat-list` with `section` and `row`
in the query is the whole page, or for htmx the step alone (`#seat-list`,
shop/_seat_list.html). Every step is a plain link or form, so the list works
without JavaScript. Its Reserve posts the picked seats to the seat map's own
reserve (`views.reserve`); a refusal comes back into the list (refusals.py).
The list is on every seated event and has no setting to turn it off.
"""
from __future__ import annotations

from collections.abc import Collection

from flask import abort, request
from flask_login import current_user

from webapp.extensions import db
from webapp.htmx import render
from webapp.models import Event
from webapp.parsing import parse_id
from webapp.services.selling import seat_list
from webapp.shop import admission, bp

# The form fields that say a reserve came from the list, and from which row.
SECTION_FIELD, ROW_FIELD = "list-section", "list-row"


def listed_row(form) -> tuple[str, str] | None:
    """The (section, row) a reserve form was sent from, when it is the seat list's."""
    section, row = form.get(SECTION_FIELD), form.get(ROW_FIELD)
    if section is None or row is None:
        return None
    return section[:60], row[:10]


def context(event: Event, section: str | None = None, row: str | None = None, *, picked: Collection[int] = (),
            message: str | None = None, refused: bool = False, user_id: int | None = None) -> dict:
    """What one step of the list draws: the sections, a section's rows, or a row's seats (404 for none such)."""
    if user_id is None and current_user.is_authenticated:
        user_id = current_user.id
    ctx: dict = dict(event=event, section=section, row=row, message=message, refused=refused,
                     free_cap=seat_list.FREE_SEATS_SHOWN)
    if section is None:
        ctx.update(step="sections", choices=seat_list.sections(db.session, event))
    elif row is None:
        rows = seat_list.section_rows(db.session, event, section)
        if rows is None:
            abort(404)
        ctx.update(step="rows", choices=rows)
    else:
        seats = seat_list.row_seats(db.session, event, section, row, user_id=user_id)
        if seats is None:
            abort(404)
        previous_row, next_row = seat_list.neighbour_rows(db.session, event, section, row)
        free = {s.id for s in seats if s.state == "available"}
        ctx.update(step="seats", seats=seats, picked={i for i in picked if i in free},
                   previous_row=previous_row, next_row=next_row)
    return ctx


@bp.get("/events/<int:event_id>/seat-list")
def seat_list_page(event_id: int):
    event = admission.load_public_event(event_id)
    if not event.is_seated:
        abort(404)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    section, row = request.args.get("section"), request.args.get("row")
    if (section is not None and len(section) > 60) or (row is not None and len(row) > 10) or (row and not section):
        abort(404)
    picked = [i for i in (parse_id(v) for v in request.args.getlist("seat")[:100]) if i is not None]
    return render("shop/seat_list.html", "shop/_seat_list.html", **context(event, section, row, picked=picked))
