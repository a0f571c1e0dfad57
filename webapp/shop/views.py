"""The buyer's pages: the event list, an event, its seat map or tier picker, reserve.

The seat map is a real form of checkboxes. htmx adds to it: a summary that
follows the selection, a live poller that greys out seats other buyers take
(conditional GET on the event's inventory version: 304 while nothing moved),
and a reserve that, when a seat was taken between click and reserve, answers
409 with the map refreshed and the rest of the selection kept.
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import abort, current_app, flash, make_response, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from webapp import session_user
from webapp.database import single_statement
from webapp.extensions import db, limiter
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.models import Event, EventStatus
from webapp.parsing import parse_date, parse_id, parse_int
from webapp.services.errors import (
    AccessCodeNeeded,
    BookingError,
    InvalidRequest,
    LimitExceeded,
    NotEnoughLeft,
    PassRequired,
    SeatsTaken,
    SessionEnded,
    TooSoonAgain,
)
from webapp.services.selling import catalog, codes, inventory
from webapp.services.waiting import waitlist_read
from webapp.shop import access, admission, bp

log = logging.getLogger(__name__)

PUBLIC_STATUSES = (EventStatus.ON_SALE, EventStatus.CLOSED, EventStatus.CANCELLED)
# How often an open map asks "anything changed?"; the README gives its cost.
LIVE_POLL_SECONDS = 2


def _user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


@bp.get("/")
def index():
    q = request.args.get("q", "").strip()[:100]
    on_raw = request.args.get("date", "").strip()[:10]
    on = parse_date(on_raw)
    cards = catalog.listed_events(db.session, q=q, on=on)
    return render("shop/index.html", "shop/_event_list.html", cards=cards, q=q, date=on_raw)


def _parse_quantities(args) -> dict[int, int]:
    quantities: dict[int, int] = {}
    for key, value in args.items():
        if key.startswith("qty-"):
            tier_id, n = parse_id(key[4:]), parse_int(value or "0")
            if tier_id is None or n is None:
                raise InvalidRequest("Quantities must be whole numbers.")
            quantities[tier_id] = n
    return quantities


def _parse_seat_ids(args) -> list[int]:
    ids = [parse_id(v) for v in args.getlist("seat")]
    if None in ids:
        raise InvalidRequest("Unknown seat.")
    return ids


def _apply_step(quantities: dict[int, int], step: str | None) -> dict[int, int]:
    """A stepper button sends `step=<tier id>:+1` or `:-1`."""
    if step:
        tier_raw, _, delta_raw = step.partition(":")
        tier_id = parse_id(tier_raw)
        if tier_id is not None and delta_raw in ("+1", "-1"):
            quantities = {**quantities, tier_id: quantities.get(tier_id, 0) + int(delta_raw)}
    return quantities


def _clamped(event: Event, tiers: list[catalog.TierView], quantities: dict[int, int]) -> dict[int, int]:
    """Steppers never go below zero or past what is left."""
    left = {tv.tier.id: tv.available for tv in tiers}
    return {t: max(0, min(n, left.get(t, 0))) for t, n in quantities.items() if t in left}


def event_context(event: Event, *, seats: list[int] | None = None, quantities: dict[int, int] | None = None,
                  message: str | None = None, user_id: int | None = None, best: dict | None = None) -> dict:
    """Everything the event page and its partials draw, with the buyer's picks kept.

    `user_id`: the buyer, when the caller already knows them checked (a lost
    reserve: its statement checked the session), so no lookup of its own.
    """
    if user_id is None:
        user_id = _user_id()
    whole_body = not is_partial_request() or request.endpoint == "shop.event_page"
    catalog.read_event_page(db.session, event, user_id)
    tiers = catalog.tier_views(db.session, event)
    # The "you already have a basket" banner is on the page body only, not in the map's partials.
    ctx = dict(event=event, tiers=tiers, message=message, poll_seconds=LIVE_POLL_SECONDS,
               hold=catalog.active_hold(db.session, event.id, user_id) if user_id and whole_body else None)
    if event.is_seated:
        states = catalog.seat_states(db.session, event, user_id=user_id)
        not_free = set(states["taken"]) | set(states["blocked"]) | set(states["mine"])
        picked = [s for s in (seats or []) if s not in not_free]
        ctx.update(hall=catalog.hall_markup(db.session, event, states, set(picked)), selected=set(picked),
                   preview=catalog.preview_seats(db.session, event, picked, user_id=user_id),
                   live=live_tag(event.id, user_id), sections=catalog.section_names(db.session, event),
                   best=best or {})
    else:
        chosen = _clamped(event, tiers, quantities or {})
        ctx.update(quantities=chosen, preview=catalog.preview_quantities(db.session, event, chosen))
    if whole_body:
        # The page body shows the waiting-list panel; the map's own partials do not.
        ctx["waitlist_panel"] = waitlist_read.buyer_panel(db.session, event, user_id)
    return ctx


def _unlock(event_id: int, raw_code: str) -> str | None:
    """Try an access code: remembered when it opens hidden tiers; the refusal's words otherwise."""
    try:
        grant = codes.unlock(db.session, event_id=event_id, raw_code=raw_code)
    except BookingError as refused:
        return refused.message
    access.remember(event_id, grant)
    flash(f"Code {grant.code} accepted: {', '.join(grant.tier_names)} now shown below.", "success")
    return None


@bp.get("/events/<int:event_id>")
def event_page(event_id: int):
    if "access" in request.args:
        # An access link: remember the code, then show the event as it opens it.
        admission.load_public_event(event_id)
        if (problem := _unlock(event_id, request.args.get("access", "")[:100])) is not None:
            flash(problem, "error")
        rest = MultiDict((k, v) for k, v in request.args.items(multi=True) if k != "access")
        query = urlencode(list(rest.items(multi=True)))
        return redirect_to(url_for("shop.event_page", event_id=event_id) + (f"?{query}" if query else ""))
    event = admission.load_public_event(event_id)
    if event.waiting_room and admission.pass_check(event.id).problem is not None:
        # The room is on: the event page is the waiting page until the buyer's turn.
        return redirect_to(url_for("shop.line_page", event_id=event.id))
    ctx = event_context(event, seats=_parse_seat_ids(request.args),
                        quantities=_apply_step(_parse_quantities(request.args), request.args.get("step")))
    return render("shop/event.html", "shop/_event_body.html", **ctx)


def _render_seated(event_id: int, partial: str):
    """A seated event's page, or one of its seat-map partials, for the picked seats."""
    event = admission.load_public_event(event_id)
    if not event.is_seated:
        abort(404)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    return render("shop/event.html", partial, **event_context(event, seats=_parse_seat_ids(request.args)))


@bp.post("/events/<int:event_id>/access")
def enter_access_code(event_id: int):
    """The event page's "Have an access code?" box."""
    event = admission.load_public_event(event_id)
    if (problem := _unlock(event_id, request.form.get("code", "")[:100])) is not None:
        ctx = event_context(event, message=None)  # nothing unlocked: the same snapshot
        # The whole body is redrawn (the panel too), whichever way the form was sent.
        ctx.setdefault("waitlist_panel", waitlist_read.buyer_panel(db.session, event, _user_id()))
        return render("shop/event.html", "shop/_event_body.html", status=422, access_error=problem,
                      access_typed=request.form.get("code", "")[:40], **ctx)
    return redirect_to(url_for("shop.event_page", event_id=event_id))


@bp.get("/events/<int:event_id>/seat-map")
def seat_map(event_id: int):
    return _render_seated(event_id, "shop/_seat_map.html")


@bp.get("/events/<int:event_id>/selection")
def selection(event_id: int):
    """The summary of the seats picked so far (seats, tiers, subtotal, limit)."""
    if not is_partial_request():
        return _render_seated(event_id, "shop/_summary.html")
    # Swapped on every click on the map: the summary needs the picked seats
    # and nothing else of the page.
    event = admission.load_public_event(event_id)
    if not event.is_seated:
        abort(404)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    preview = catalog.preview_seats(db.session, event, _parse_seat_ids(request.args), user_id=_user_id())
    return render("shop/event.html", "shop/_summary.html", event=event, preview=preview)


@bp.get("/events/<int:event_id>/tickets")
def tier_picker(event_id: int):
    """The general-admission picker, after a stepper click or a typed quantity."""
    event = admission.load_public_event(event_id)
    if event.is_seated:
        abort(404)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    quantities = _apply_step(_parse_quantities(request.args), request.args.get("step"))
    return render("shop/event.html", "shop/_tier_picker.html", **event_context(event, quantities=quantities))


def live_tag(event_id: int, user_id: int | None, version: int | None = None) -> str:
    if version is None:
        version = inventory.inventory_version(db.session, event_id)
    return catalog.live_tag(event_id, user_id, version)


@bp.get("/events/<int:event_id>/seat-status")
@limiter.exempt
def seat_status(event_id: int):
    """Live seat states for open maps: 304 while the event's inventory is unchanged."""
    if not is_partial_request():
        # Without JavaScript the poller is a "refresh availability" button.
        event = admission.load_public_event(event_id)
        if not event.is_seated:
            abort(404)
        return render("shop/event.html", "shop/_seat_status.html",
                      **event_context(event, seats=_parse_seat_ids(request.args)))
    # The poll of every open map: one statement in autocommit, no session.
    # It also reads the session version the cookie claims, so the answer
    # "unchanged" needs no second statement for the user.
    claim = session_user.claimed()
    with single_statement() as connection:
        version, session_version = inventory.inventory_version_and_session(
            connection, event_id, claim[0] if claim else None)
    tag = live_tag(event_id, session_user.confirmed(claim, session_version), version)
    if request.if_none_match.contains_weak(tag):
        response = make_response("", 304)
    else:
        event = admission.load_public_event(event_id)
        if not event.is_seated:
            abort(404)
        states = catalog.seat_states(db.session, event, user_id=_user_id())
        response = render("shop/event.html", "shop/_seat_status.html", event=event, states=states,
                          live=tag, poll_seconds=LIVE_POLL_SECONDS)
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(("HX-Request", "Cookie"))
    return response


def _reserve_limit() -> str:
    return current_app.config["RESERVE_RATE_LIMIT"]


def _reserve_key() -> str:
    # The cookie's signed claim, not current_user: loading the user would cost
    # the reserve a round trip of its own (the reserve statement checks it).
    claim = session_user.claimed()
    return f"user:{claim[0]}" if claim else f"ip:{request.remote_addr}"


def _event_url_with_picks(event: Event, form) -> str:
    picks = MultiDict((k, v) for k, v in form.items(multi=True) if k == "seat" or k.startswith("qty-"))
    query = urlencode(list(picks.items(multi=True)))
    return url_for("shop.event_page", event_id=event.id) + (f"?{query}" if query else "")


@bp.post("/events/<int:event_id>/reserve")
@limiter.limit(_reserve_limit, key_func=_reserve_key)
def reserve(event_id: int):
    claim = session_user.claimed()
    if claim is None:
        # Log in first, then come back to the same picks.
        event = admission.load_public_event(event_id)
        return redirect_to(url_for("auth.login_get", next=_event_url_with_picks(event, request.form)))
    user_id, session_version = claim
    # The event's state, the buyer's session and, while the event's waiting
    # room is on, their admission are checked by the reserve statement
    # itself: the hot path loads nothing before it (one round trip, see
    # inventory.reserve). The pass's signature is checked here; a forged,
    # foreign or expired pass names no admission, which the statement refuses.
    check = admission.pass_check(event_id)
    seats = _parse_seat_ids(request.form)
    seated = "seat" in request.form or (
        not any(k.startswith("qty-") for k in request.form) and admission.load_public_event(event_id).is_seated)
    try:
        if seated:
            reservation = inventory.reserve(user_id=user_id, event_id=event_id, seat_ids=seats,
                                                session_version=session_version, admission_id=check.admission_id,
                                                access=access.codes_for(event_id))
        else:
            reservation = inventory.reserve(user_id=user_id, event_id=event_id,
                                                quantities=_parse_quantities(request.form),
                                                session_version=session_version, admission_id=check.admission_id,
                                                access=access.codes_for(event_id))
    except PassRequired as refused:
        log.info("waiting_room.refused", extra={"event_id": event_id, "user_id": user_id})
        return admission.room_required(event_id, check.problem or refused.message)
    except SessionEnded:
        session_user.forget()
        event = admission.load_public_event(event_id)
        return redirect_to(url_for("auth.login_get", next=_event_url_with_picks(event, request.form)))
    except SeatsTaken as lost:
        # The race is lost for these seats only: refresh the map, keep the rest.
        db.session.rollback()
        log.info("hold.lost_race", extra={"event_id": event_id, "user_id": user_id, "units": lost.unit_ids})
        event = admission.load_public_event(event_id)
        keep = [s for s in seats if s not in set(lost.unit_ids)]
        ctx = event_context(event, seats=keep, message=lost.message, user_id=user_id)
        return render("shop/event.html", "shop/_seat_map.html", status=409, **ctx)
    except NotEnoughLeft as short:
        db.session.rollback()
        event = admission.load_public_event(event_id)
        ctx = event_context(event, quantities=_parse_quantities(request.form), message=short.message,
                            user_id=user_id)
        return render("shop/event.html", "shop/_tier_picker.html", status=409, **ctx)
    except (LimitExceeded, TooSoonAgain, AccessCodeNeeded) as refused:
        # The per-buyer rules (and an access code that stopped working): said
        # beside the buyer's picks, which are kept.
        db.session.rollback()
        event = admission.load_public_event(event_id)
        if seated:
            ctx = event_context(event, seats=seats, message=refused.message, user_id=user_id)
            partial = "shop/_seat_map.html"
        else:
            ctx = event_context(event, quantities=_parse_quantities(request.form), message=refused.message,
                                user_id=user_id)
            partial = "shop/_tier_picker.html"
        response = render("shop/event.html", partial, status=refused.status_code, refused=True, **ctx)
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    log.info("hold.created", extra={"event_id": event_id, "user_id": user_id,
                                     "hold_id": reservation.hold_id})
    if seated and (dropped := _dropped_seats(request.form, event_id, set(seats))):
        # Seats the live map took out of the selection just before Reserve:
        # the hold page says so, where the buyer looks next.
        were, them = ("was", "it is") if len(dropped) == 1 else ("were", "they are")
        flash(f"{'; '.join(dropped)} {were} taken by another buyer just before you reserved, "
              f"so {them} not in this reservation.", "warning")
    return redirect_to(url_for("checkout.hold_page", hold_id=reservation.hold_id))


@bp.post("/events/<int:event_id>/best-available")
@limiter.limit(_reserve_limit, key_func=_reserve_key)
def reserve_best(event_id: int):
    """The best free seats of one tier, together in a row where possible: a hold like any other.

    Like the seat reserve, the hot path loads nothing before its one
    statement (the best-available SQL function) checks the event, its state and that the tier
    is one of its (visible, or unlocked) seat tiers. The event is read only
    to draw a refusal.
    """
    claim = session_user.claimed()
    tier_id = parse_id(request.form.get("tier"))
    count = parse_int(request.form.get("quantity"), minimum=1, maximum=100)
    picks = {"tier": tier_id, "quantity": request.form.get("quantity", "")[:4]}
    if claim is None:
        admission.load_public_event(event_id)
        return redirect_to(url_for("auth.login_get", next=url_for("shop.event_page", event_id=event_id)))
    user_id, session_version = claim

    def refused_here(message: str, status: int):
        db.session.rollback()
        event = admission.load_public_event(event_id)
        if not event.is_seated:
            abort(404)
        ctx = event_context(event, message=None, user_id=user_id, best=dict(picks, message=message))
        return render("shop/event.html", "shop/_best_available.html", status=status, **ctx)

    if tier_id is None:
        return refused_here("Choose a seat tier.", 400)
    if count is None:
        return refused_here("Choose how many seats you want, from 1.", 400)
    check = admission.pass_check(event_id)
    try:
        reservation = inventory.reserve(user_id=user_id, event_id=event_id, best=(tier_id, count),
                                            session_version=session_version, admission_id=check.admission_id,
                                            access=access.codes_for(event_id))
    except PassRequired as refused:
        return admission.room_required(event_id, check.problem or refused.message)
    except SessionEnded:
        session_user.forget()
        return redirect_to(url_for("auth.login_get", next=url_for("shop.event_page", event_id=event_id)))
    except BookingError as refused:
        response = refused_here(refused.message, refused.status_code)
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    log.info("hold.created", extra={"event_id": event_id, "user_id": user_id, "hold_id": reservation.hold_id,
                                     "best_available": True})
    # The hold page says whether they sit together (from the seats it shows
    # anyway), so this request needs no statement of its own to find out.
    return redirect_to(url_for("checkout.hold_page", hold_id=reservation.hold_id, best=count))


def _dropped_seats(form, event_id: int, reserved: set[int]) -> list[str]:
    """The labels of seats app.js unpicked because someone else took them (`dropped`), not reserved now."""
    ids = sorted({i for i in (parse_id(v) for v in form.getlist("dropped")[:50]) if i is not None} - reserved)
    return catalog.seat_labels(db.session, event_id, ids) if ids else []
