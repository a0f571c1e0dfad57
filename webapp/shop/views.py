"""The buyer's pages: the event list, an event, its seat map or tier picker, reserve.

The seat map is a real form of checkboxes. htmx adds to it: a summary that
follows the selection, a live poller that greys out seats other buyers take
(conditional GET on the event's inventory version: 304 while nothing moved),
and a reserve whose refusals are answered beside the picks, by one table
for every form (refusals.py).
"""
from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import abort, current_app, flash, g, make_response, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from webapp import session_user, wrong_codes
from webapp.client_address import for_address_limits
from webapp.database import single_statement
from webapp.extensions import db, limiter
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.parsing import parse_date, parse_id, parse_int
from webapp.services.errors import BookingError, InvalidRequest, TooManyWrongCodes
from webapp.services.people import organisers
from webapp.services.selling import catalog, codes, hall_layout, inventory
from webapp.services.waiting import waitlist_read
from webapp.shop import access, admission, bp, page, refusals, seat_list
from webapp.shop.page import LIVE_POLL_SECONDS

log = logging.getLogger(__name__)


def _user_id() -> int | None:
    return current_user.id if current_user.is_authenticated else None


@bp.get("/")
def index():
    q = request.args.get("q", "").strip()[:100]
    on_raw = request.args.get("date", "").strip()[:10]
    on = parse_date(on_raw)
    cards = catalog.listed_events(db.session, q=q, on=on)
    return render("shop/index.html", "shop/_event_list.html", cards=cards, q=q, date=on_raw)


@bp.get("/o/<slug>")
def organiser_page(slug: str):
    """An organiser's own page: its upcoming events on sale."""
    organiser = organisers.by_slug(db.session, slug[:60].lower())
    if organiser is None:
        abort(404)
    g.organiser_locale = organiser.default_locale
    cards = catalog.listed_events(db.session, organiser_id=organiser.id)
    return render_template("shop/organiser.html", organiser=organiser, cards=cards, q="", date="")


def _parse_quantities(args) -> dict[int, int]:
    quantities: dict[int, int] = {}
    for key, value in args.items():
        if key.startswith("qty-"):
            tier_id, n = parse_id(key[4:]), parse_int(value or "0")
            if tier_id is None or n is None:
                raise InvalidRequest(_("Quantities must be whole numbers."))
            quantities[tier_id] = n
    return quantities


def _parse_seat_ids(args) -> list[int]:
    ids = [parse_id(v) for v in args.getlist("seat")]
    if None in ids:
        raise InvalidRequest(_("Unknown seat."))
    return ids


def _apply_step(quantities: dict[int, int], step: str | None) -> dict[int, int]:
    """A stepper button sends `step=<tier id>:+1` or `:-1`."""
    if step:
        tier_raw, _, delta_raw = step.partition(":")
        tier_id = parse_id(tier_raw)
        if tier_id is not None and delta_raw in ("+1", "-1"):
            quantities = {**quantities, tier_id: quantities.get(tier_id, 0) + int(delta_raw)}
    return quantities


def _unlock(event_id: int, raw_code: str) -> str | None:
    """Try an access code: remembered when it opens hidden tiers; the refusal's words otherwise.

    Too many wrong codes (TooManyWrongCodes) is raised, for the caller's 429.
    """
    try:
        grant = wrong_codes.attempt(lambda: codes.unlock(db.session, event_id=event_id, raw_code=raw_code),
                                    user_id=_user_id())
    except TooManyWrongCodes:
        raise
    except BookingError as refused:
        return refused.message
    access.remember(event_id, grant)
    flash(_("Code %(code)s accepted: %(tiers)s now shown below.", code=grant.code, tiers=", ".join(grant.tier_names)),
          "success")
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
        return redirect_to(url_for("shop.waiting_room_page", event_id=event.id))
    ctx = page.context(event, seats=_parse_seat_ids(request.args),
                       quantities=_apply_step(_parse_quantities(request.args), request.args.get("step")))
    return render("shop/event.html", "shop/_event_body.html", **ctx)


def _render_seated(event_id: int, partial: str):
    """A seated event's page, or one of its seat-map partials, for the picked seats."""
    event = _seated_or_404(event_id)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    return render("shop/event.html", partial, **page.context(event, seats=_parse_seat_ids(request.args)))


@bp.post("/events/<int:event_id>/access")
def enter_access_code(event_id: int):
    """The event page's "Have an access code?" box."""
    event = admission.load_public_event(event_id)
    status, retry_after = 422, None
    try:
        problem = _unlock(event_id, request.form.get("code", "")[:100])
    except TooManyWrongCodes as limited:
        problem, status, retry_after = limited.message, limited.status_code, limited.retry_after
    if problem is not None:
        ctx = page.context(event, message=None)  # nothing unlocked: the same snapshot
        # The whole body is redrawn (the panel too), whichever way the form was sent.
        ctx.setdefault("waitlist_panel", waitlist_read.buyer_panel(db.session, event, _user_id()))
        response = render("shop/event.html", "shop/_event_body.html", status=status, access_error=problem,
                          access_typed=request.form.get("code", "")[:40], **ctx)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response
    return redirect_to(url_for("shop.event_page", event_id=event_id))


@bp.get("/events/<int:event_id>/seat-map")
def seat_map(event_id: int):
    return _render_seated(event_id, "shop/_seat_map.html")


@bp.get("/events/<int:event_id>/selection")
def selection(event_id: int):
    """The summary of the seats picked so far (seats, tiers, subtotal, limit)."""
    if not is_partial_request():
        return _render_seated(event_id, "shop/_selection_summary.html")
    # Swapped on every click on the map: the summary needs the picked seats
    # and nothing else of the page.
    event = admission.load_public_event(event_id)
    if not event.is_seated:
        abort(404)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    preview = catalog.preview_seats(db.session, event, _parse_seat_ids(request.args), user_id=_user_id())
    return render("shop/event.html", "shop/_selection_summary.html", event=event, preview=preview)


@bp.get("/events/<int:event_id>/tickets")
def tier_picker(event_id: int):
    """The general-admission picker, after a stepper click or a typed quantity."""
    event = admission.load_public_event(event_id)
    if event.is_seated:
        abort(404)
    if (refused := admission.without_pass(event)) is not None:
        return refused
    quantities = _apply_step(_parse_quantities(request.args), request.args.get("step"))
    return render("shop/event.html", "shop/_tier_picker.html", **page.context(event, quantities=quantities))


def _seated_or_404(event_id: int, section: int | None = None, part: int = 1):
    """The seated event (as the buyer sees it), and the `section` and `part` if given: 404 unless they exist."""
    event = admission.load_public_event(event_id)
    if not event.is_seated:
        abort(404)
    if section is not None and hall_layout.for_event(db.session, event).part(section, part) is None:
        abort(404)
    return event


def _part() -> int | None:
    """A big section's part, as asked (`?part=`): 404 for anything that is not a part number."""
    if "part" not in request.args:
        return None
    part = parse_id(request.args.get("part"))
    if part is None:
        abort(404)
    return part


@bp.get("/events/<int:event_id>/sections/<int:section>")
def section_page(event_id: int, section: int):
    """A big venue's section: today's seat map for that section (a big one's `?part=`), the way back, a minimap."""
    part = _part()
    event = _seated_or_404(event_id, section, part or 1)
    if event.waiting_room and admission.pass_check(event.id).problem is not None:
        return redirect_to(url_for("shop.waiting_room_page", event_id=event.id))
    ctx = page.context(event, seats=_parse_seat_ids(request.args), section=section, part=part)
    return render("shop/event.html", "shop/_event_body.html", **ctx)


def _live_answer(event_id: int, draw):
    """A live poll's answer: 304 while the event's inventory version is unchanged, `draw()` otherwise.

    The map's, a section's and the overview's polls: one statement in
    autocommit, no session. It also reads the session version the cookie
    claims, so the answer "unchanged" needs no second statement for the user.
    """
    claim = session_user.claimed()
    with single_statement() as connection:
        version, session_version = inventory.inventory_version_and_session(
            connection, event_id, claim[0] if claim else None)
    tag = catalog.live_tag(event_id, session_user.confirmed(claim, session_version), version)
    response = make_response("", 304) if request.if_none_match.contains_weak(tag) else draw(tag)
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = "private, no-cache"
    response.vary.update(("HX-Request", "Cookie"))
    return response


@bp.get("/events/<int:event_id>/seat-status")
@bp.get("/events/<int:event_id>/sections/<int:section>/seat-status")
@limiter.exempt
def seat_status(event_id: int, section: int | None = None):
    """Live seat states for open maps (of one section of a big venue): 304 while the event's inventory is unchanged."""
    if not is_partial_request():
        # Without JavaScript the poller is a "refresh availability" button.
        part = _part() if section is not None else None
        event = _seated_or_404(event_id, section, part or 1)
        return render("shop/event.html", "shop/_seat_live.html",
                      **page.context(event, seats=_parse_seat_ids(request.args), section=section, part=part))

    def draw(tag: str):
        event = _seated_or_404(event_id, section)
        name = None if section is None else hall_layout.for_event(db.session, event).sections[section - 1].name
        states = catalog.seat_states(db.session, event, user_id=_user_id(), section=name)
        return render("shop/event.html", "shop/_seat_live.html", event=event, states=states,
                      live=tag, poll_seconds=LIVE_POLL_SECONDS, section_number=section)

    return _live_answer(event_id, draw)


@bp.get("/events/<int:event_id>/sections")
@limiter.exempt
def venue_overview(event_id: int):
    """A big venue's sections with what each has left: the overview's poll (304 while nothing changed)."""
    if not is_partial_request():
        return redirect_to(url_for("shop.event_page", event_id=event_id))

    def draw(tag: str):
        event = _seated_or_404(event_id)
        return render("shop/event.html", "shop/_venue_overview.html", event=event,
                      overview=catalog.overview(db.session, event), live=tag, poll_seconds=LIVE_POLL_SECONDS)

    return _live_answer(event_id, draw)


def _reserve_limit() -> str:
    return current_app.config["RESERVE_RATE_LIMIT"]


def _reserve_key() -> str:
    # The cookie's signed claim, not current_user: loading the user would cost
    # the reserve a round trip of its own (the reserve statement checks it).
    claim = session_user.claimed()
    return f"user:{claim[0]}" if claim else f"ip:{request.remote_addr}"


def _reserve_ask(event_id: int, form) -> refusals.Ask:
    """What the reserve form asks for: seats, or places per tier (the event says which when it names neither)."""
    picks = refusals.picks_of(form)
    seated = "seat" in form or (
        not any(k.startswith("qty-") for k in form) and admission.load_public_event(event_id).is_seated)
    if seated:
        return refusals.Ask("seats", seats=tuple(_parse_seat_ids(form)), picks=picks,
                            listed=seat_list.listed_row(form))
    return refusals.Ask("places", quantities=_parse_quantities(form), picks=picks)


@bp.post("/events/<int:event_id>/reserve")
@limiter.limit(_reserve_limit, key_func=_reserve_key)
def reserve(event_id: int):
    claim = session_user.claimed()
    if claim is None:
        return refusals.log_in_first(event_id, refusals.picks_of(request.form), seat_list.listed_row(request.form))
    user_id, session_version = claim
    # The event's state, the buyer's session and, while the event's waiting
    # room is on, their admission are checked by the reserve statement
    # itself: the hot path loads nothing before it (one round trip, see
    # inventory.reserve). The pass's signature is checked here; a forged,
    # foreign or expired pass names no admission, which the statement refuses.
    check = admission.pass_check(event_id)
    ask = _reserve_ask(event_id, request.form)
    try:
        reservation = inventory.reserve(user_id=user_id, event_id=event_id, **ask.wanted,
                                        session_version=session_version, admission_id=check.admission_id,
                                        access=access.codes_for(event_id), client_addr=for_address_limits())
    except BookingError as refused:
        return refusals.answer(refused, ask, event_id=event_id, user_id=user_id, pass_problem=check.problem)
    log.info("hold.created", extra={"event_id": event_id, "user_id": user_id,
                                     "hold_id": reservation.hold_id})
    if ask.form == "seats" and (dropped := _dropped_seats(request.form, event_id, set(ask.seats))):
        # Seats the live map took out of the selection just before Reserve:
        # the hold page says so, where the buyer looks next.
        flash(ngettext("%(seats)s was taken by another buyer just before you reserved, so it is not in this"
                       " reservation.",
                       "%(seats)s were taken by another buyer just before you reserved, so they are not in this"
                       " reservation.", len(dropped), seats="; ".join(dropped)), "warning")
    return redirect_to(url_for("checkout.hold_page", hold_id=reservation.hold_id))


@bp.post("/events/<int:event_id>/best-available")
@limiter.limit(_reserve_limit, key_func=_reserve_key)
def reserve_best(event_id: int):
    """The best free seats of one tier, together in a row where possible: a hold like any other.

    Like the seat reserve, the hot path loads nothing before its one
    statement, which checks the event, its state and that the tier is one
    of its (visible, or unlocked) seat tiers. The event is read only to draw
    a refusal.
    """
    claim = session_user.claimed()
    if claim is None:
        return refusals.log_in_first(event_id, ())
    user_id, session_version = claim
    tier_id = parse_id(request.form.get("tier"))
    count = parse_int(request.form.get("quantity"), minimum=1, maximum=100)
    wheelchair = parse_int(request.form.get("wheelchair") or "0", minimum=0, maximum=50)
    section = request.form.get("section", "").strip()[:61] or None
    ask = refusals.Ask("best", best={"tier": tier_id, "quantity": request.form.get("quantity", "")[:4],
                                     "wheelchair": request.form.get("wheelchair", "")[:4], "section": section})
    check = admission.pass_check(event_id)
    try:
        if tier_id is None:
            raise InvalidRequest(_("Choose a seat tier."))
        if count is None:
            raise InvalidRequest(_("Choose how many seats you want, from 1."))
        if wheelchair is None:
            raise InvalidRequest(_("Choose how many wheelchair spaces you want, from 0."))
        reservation = inventory.reserve(user_id=user_id, event_id=event_id,
                                        best=inventory.BestSeats(tier_id, count, wheelchair, section),
                                        session_version=session_version, admission_id=check.admission_id,
                                        access=access.codes_for(event_id), client_addr=for_address_limits())
    except BookingError as refused:
        return refusals.answer(refused, ask, event_id=event_id, user_id=user_id, pass_problem=check.problem)
    log.info("hold.created", extra={"event_id": event_id, "user_id": user_id, "hold_id": reservation.hold_id,
                                     "best_available": True})
    # The hold page says whether they sit together (from the seats it shows
    # anyway), so this request needs no statement of its own to find out.
    return redirect_to(url_for("checkout.hold_page", hold_id=reservation.hold_id, best=count))


def _dropped_seats(form, event_id: int, reserved: set[int]) -> list[str]:
    """The labels of seats app.js unpicked because someone else took them (`dropped`), not reserved now."""
    ids = sorted({i for i in (parse_id(v) for v in form.getlist("dropped")[:50]) if i is not None} - reserved)
    return catalog.seat_labels(db.session, event_id, ids) if ids else []
