"""The buyer's pages: the event list, an event, its seat map or tier picker, reserve."""
from __future__ import annotations

import logging
from datetime import date

from flask import abort, current_app, request, url_for
from flask_login import current_user, login_required

from webapp.extensions import db, limiter
from webapp.htmx import redirect_to, render
from webapp.models import Event, EventStatus
from webapp.services import catalog, inventory
from webapp.services.errors import InvalidRequest
from webapp.shop import bp

log = logging.getLogger(__name__)

PUBLIC_STATUSES = (EventStatus.ON_SALE, EventStatus.CLOSED, EventStatus.CANCELLED)


def load_public_event(event_id: int) -> Event:
    event = db.session.get(Event, event_id)
    if event is None or (event.status == EventStatus.DRAFT and not getattr(current_user, "is_admin", False)):
        abort(404)
    return event


@bp.get("/")
def index():
    q = request.args.get("q", "").strip()[:100]
    on_raw = request.args.get("date", "").strip()
    on = None
    if on_raw:
        try:
            on = date.fromisoformat(on_raw)
        except ValueError:
            on = None
    cards = catalog.listed_events(db.session, q=q, on=on)
    return render("shop/index.html", "shop/_event_list.html", cards=cards, q=q, date=on_raw)


@bp.get("/events/<int:event_id>")
def event_page(event_id: int):
    event = load_public_event(event_id)
    user_id = current_user.id if current_user.is_authenticated else None
    tiers = catalog.tier_views(db.session, event)
    sections = catalog.seat_map(db.session, event, user_id=user_id) if event.is_seated else []
    return render("shop/event.html", "shop/_event_body.html", event=event, tiers=tiers, sections=sections)


@bp.get("/events/<int:event_id>/seat-map")
def seat_map(event_id: int):
    event = load_public_event(event_id)
    if not event.is_seated:
        abort(404)
    user_id = current_user.id if current_user.is_authenticated else None
    tiers = catalog.tier_views(db.session, event)
    sections = catalog.seat_map(db.session, event, user_id=user_id)
    return render("shop/event.html", "shop/_seat_map.html", event=event, tiers=tiers, sections=sections)


def _reserve_limit() -> str:
    return current_app.config["RESERVE_RATE_LIMIT"]


def _parse_quantities(form) -> dict[int, int]:
    quantities: dict[int, int] = {}
    for key, value in form.items():
        if key.startswith("qty-"):
            try:
                tier_id, n = int(key[4:]), int(value or 0)
            except ValueError:
                raise InvalidRequest("Quantities must be whole numbers.") from None
            quantities[tier_id] = n
    return quantities


def _parse_seat_ids(form) -> list[int]:
    try:
        return [int(v) for v in form.getlist("seat")]
    except ValueError:
        raise InvalidRequest("Unknown seat.") from None


@bp.post("/events/<int:event_id>/reserve")
@login_required
@limiter.limit(_reserve_limit, key_func=lambda: f"user:{current_user.get_id()}")
def reserve(event_id: int):
    event = load_public_event(event_id)
    if event.is_seated:
        hold = inventory.reserve_seats(
            db.session, user_id=current_user.id, event_id=event.id, unit_ids=_parse_seat_ids(request.form)
        )
    else:
        hold = inventory.reserve_general(
            db.session, user_id=current_user.id, event_id=event.id, quantities=_parse_quantities(request.form)
        )
    db.session.commit()
    log.info("hold.created", extra={"event_id": event.id, "user_id": current_user.id, "hold_id": hold.id,
                                     "units": len(hold.unit_ids)})
    return redirect_to(url_for("checkout.hold_page", hold_id=hold.id))
