"""Buyer resources: events, seats, holds, payment, orders, the waiting list.

Each view calls what the matching HTML view calls (shop, checkout, account,
waitlist): the same reserve statement, the same three-transaction payment,
the same waiting-list engine, so the API keeps the pages' guarantees.
"""
from __future__ import annotations

import hashlib
import logging

from flask import current_app, make_response, request, url_for
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from webapp import wrong_codes
from webapp.api import bp
from webapp.api import schemas as s
from webapp.api.routing import InvalidFields, caller, json_body, operation, query_args
from webapp.checkout.forms import CardForm
from webapp.client_address import for_address_limits
from webapp.database import single_statement
from webapp.extensions import db
from webapp.models import Event, WaitlistStatus, seat_label
from webapp.services.errors import InvalidRequest, NotFound, PassRequired, PaymentDeclined, PaymentNeedsAction
from webapp.services.money import checkout, checkout_read, payment_settings
from webapp.services.money.checkout_read import HoldView
from webapp.services.money.gateway import PaymentMethodId, payment_gateway
from webapp.services.selling import attendees, catalog, codes, inventory
from webapp.services.waiting import waiting_room, waitlist, waitlist_read

log = logging.getLogger(__name__)

EVENTS = "Events"
HOLDS = "Holds and payment"
ORDERS = "Orders"
WAITLIST = "Waiting list"


def _json(schema, obj, status: int = 200, **headers: str):
    response = make_response(schema().dump(obj), status)
    for name, value in headers.items():
        response.headers[name.replace("_", "-")] = value
    return response


def _event(event_id: int, unlocked: frozenset[int] = frozenset()) -> Event:
    event = catalog.public_event(db.session, event_id, staff=caller().admin, unlocked=unlocked)
    if event is None:
        raise NotFound(_("No such event."))
    return event


def _unlocked(event_id: int) -> frozenset[int]:
    """The hidden tiers the query's access code (`?access=CODE`) opens, tried under the limit on wrong codes."""
    code = query_args(s.EventQuery).get("access")
    if not code:
        return frozenset()
    _event(event_id)  # a draft's codes are tried as an unknown event's: not at all
    grant = wrong_codes.attempt(lambda: codes.unlock(db.session, event_id=event_id, raw_code=code),
                                user_id=caller().user_id)
    return frozenset(grant.tier_ids)


@operation(bp, "/events", "GET", summary="List upcoming events on sale", tag=EVENTS, query=s.EventListQuery,
           responses={200: ("Events, soonest first", s.EventList)})
def events_list():
    """The same list as the shop's front page, with the same filters (words, day)."""
    args = query_args(s.EventListQuery)
    cards = catalog.listed_events(db.session, q=args.get("q", "").strip(), on=args.get("date"))
    return _json(s.EventList, {"events": [dict(
        id=c.event.id, title=c.event.title, venue=c.event.venue, starts_at=c.event.starts_at,
        timezone=c.event.timezone, status=c.event.status.value, min_price_minor=c.min_price,
        max_price_minor=c.max_price, currency=c.currency, capacity=c.capacity, available=c.available,
        availability=c.availability) for c in cards]})


@operation(bp, "/events/<int:event_id>", "GET", summary="An event with per-tier availability", tag=EVENTS,
           query=s.EventQuery, responses={200: ("The event", s.EventDetail)}, errors=(404, 422, 429))
def event_detail(event_id: int):
    """Availability is what the event page shows: a tier the waiting list comes first for shows 0.
    Hidden tiers are listed only with an access code that unlocks them (`?access=CODE`)."""
    event = _event(event_id, _unlocked(event_id))
    tiers = catalog.tier_views(db.session, event)
    return _json(s.EventDetail, dict(
        id=event.id, title=event.title, description=event.description, venue=event.venue,
        starts_at=event.starts_at, timezone=event.timezone, sales_end_at=event.sales_end_at,
        image_url=event.image_url, status=event.status.value, seated=event.is_seated,
        per_order_limit=event.per_order_limit, hold_minutes=event.hold_minutes,
        waitlist_enabled=event.waitlist_enabled,
        tiers=[dict(id=tv.tier.id, name=tv.tier.name, price_minor=tv.tier.price_minor, currency=tv.tier.currency,
                    colour=tv.tier.colour, seated=tv.tier.seated, capacity=tv.tier.capacity,
                    available=tv.available, sold_out=tv.sold_out) for tv in tiers]))


IF_NONE_MATCH = {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
                 "description": "the ETag of an earlier answer: 304 while nothing changed"}


@operation(bp, "/events/<int:event_id>/seats", "GET", summary="Seats of a seated event, with their status",
           tag=EVENTS, query=s.EventQuery, headers=(IF_NONE_MATCH,), errors=(404, 422, 429),
           responses={200: ("Every seat", s.SeatList), 304: ("Nothing changed since the ETag sent", None)})
def event_seats(event_id: int):
    """The ETag is the inventory version the seat map's live poll uses: an unchanged event costs one statement.
    Seats of a hidden tier are listed as the seat map draws them without its access code: blocked, with no
    tier (`tier_id` null); `?access=CODE` shows those its code opens."""
    user_id = caller().user_id
    access = query_args(s.EventQuery).get("access")
    with single_statement() as connection:
        version, _session = inventory.inventory_version_and_session(connection, event_id, None)
    # Its own tag family: the JSON is another representation than the map's HTML; and another per access code.
    tag = "api-" + catalog.live_tag(event_id, user_id, version) + (
        "-" + hashlib.sha256(access.encode()).hexdigest()[:12] if access else "")
    if request.if_none_match.contains_weak(tag):
        response = make_response("", 304)
    else:
        event = _event(event_id, _unlocked(event_id))
        if not event.is_seated:
            raise NotFound(_("This event has no numbered seats; reserve places by tier."))
        states = catalog.seat_states(db.session, event, user_id=user_id)
        status = {i: name for name in ("taken", "blocked", "mine") for i in states[name]}
        locked = set(event.locked_tier_ids)
        seats = [dict(id=v.id, tier_id=None if v.tier_id in locked else v.tier_id, section=v.section,
                      row=v.row_label, number=v.seat_number,
                      label=seat_label(v.section, v.row_label, v.seat_number), status=status.get(v.id, "available"),
                      properties=list(v.features))
                 for v in catalog.seat_rows(db.session, event.id)]
        response = _json(s.SeatList, {"event_id": event.id, "seats": seats})
    response.set_etag(tag, weak=True)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def _hold_out(view: HoldView) -> dict:
    taxes, config = view.taxes, current_app.config
    publishable = None
    if config["PAYMENT_GATEWAY"] == "stripe":
        with single_statement() as connection:
            publishable = payment_settings.publishable_key_of_event(connection, view.event.id,
                                                                    config["STRIPE_PUBLISHABLE_KEY"])
    return dict(id=view.id, event=view.event, kind=view.kind, status=view.status, expires_at=view.expires_at,
                seconds_left=view.seconds_left, expired=view.expired, payable=view.payable,
                payment_pending=view.payment_pending, last_decline=view.last_decline,
                total_minor=view.total_minor, net_minor=taxes.net_minor, tax_minor=taxes.tax_minor,
                currency=view.currency, stripe_publishable_key=publishable, order_id=view.order_id,
                discount_code=view.code, discount_minor=view.discount_minor, lines=view.lines,
                attendee_names=view.attendee_names, questions=view.questions)


def _own_hold(hold_id: int) -> HoldView:
    with single_statement() as connection:
        view = checkout_read.hold_view(connection, hold_id, caller().user_id)
    if view is None:
        raise NotFound(_("No such reservation."))
    return view


WAITING_ROOM_PASS = {"name": "Waiting-Room-Pass", "in": "header", "required": False, "schema": {"type": "string"},
                     "description": "while the event's waiting room is on: the pass its page gave this account "
                                    "when its turn came (the tb_pass_{event id} cookie's value; the cookie itself "
                                    "is read too)"}


@operation(bp, "/events/<int:event_id>/holds", "POST", summary="Reserve seats or general-admission places",
           tag=HOLDS, body=s.ReserveRequest, headers=(WAITING_ROOM_PASS,), errors=(403, 404, 409, 413, 429),
           responses={201: ("The hold, with its expires_at (the database's clock)", s.HoldOut)})
def reserve(event_id: int):
    """All or nothing: “seats” by id, “quantities” per tier, or “best”: the best free seats of a tier,
    nearest the event's focal point and side by side in a row where possible, with wheelchair spaces (each
    with its companion seat) and within one section if asked. A taken seat is named; a short tier says how
    many are left; a sold-out tier says the waiting list is open. A new reserve replaces the buyer's earlier
    basket for the event.
    While the event's waiting room is on, only an admitted buyer may reserve: send the pass (403 without
    one, or with one that is forged, another account's or event's, or out of time by the database's clock)."""
    # Refused with the errors the shop's pages answer (webapp/shop/refusals.py), each answered
    # here as the problem the error describes (webapp/api/problems.py).
    data = json_body(s.ReserveRequest)
    who = caller()
    if sum(key in data for key in ("seats", "quantities", "best")) != 1:
        raise InvalidRequest(_("Send one of “seats” (seat ids), “quantities” (per tier) or “best” (a tier and a"
                             " quantity)."))
    access = [c for c in (codes.normalise(raw) for raw in data.get("access_codes", [])) if c]
    # Checked as the page's pass is: the signature here, the admission by the reserve statement.
    room_pass = waiting_room.check_pass(
        request.headers.get("Waiting-Room-Pass") or request.cookies.get(waiting_room.pass_cookie_name(event_id)),
        user_id=who.user_id, event_id=event_id)
    if "seats" in data:
        wanted: dict = {"seat_ids": data["seats"]}
    elif "best" in data:
        best = data["best"]
        wanted = {"best": inventory.BestSeats(best["tier_id"], best["quantity"], best["wheelchair"],
                                              best.get("section"))}
    else:
        quantities: dict[int, int] = {}
        for line in data["quantities"]:
            quantities[line["tier_id"]] = quantities.get(line["tier_id"], 0) + line["quantity"]
        wanted = {"quantities": quantities}

    def reserve_now() -> inventory.Reservation:
        return inventory.reserve(user_id=who.user_id, event_id=event_id, access=access,
                                 admission_id=room_pass.admission_id, client_addr=for_address_limits(), **wanted)

    try:
        # Access codes sent with a reserve are guesses like any other: a hidden tier refused for want of one
        # counts as a wrong code. Without codes the reserve pays nothing for the limit.
        reservation = (wrong_codes.attempt(reserve_now, user_id=who.user_id, wrong=wrong_codes.RESERVE_WRONG)
                       if access else reserve_now())
    except PassRequired as refused:
        # The pass's own problem (forged, another account's, out of time) says more than "take your place".
        raise PassRequired(room_pass.problem or refused.message) from None
    log.info("hold.created", extra={"event_id": event_id, "user_id": who.user_id, "hold_id": reservation.hold_id,
                                     "via": "api"})
    view = _own_hold(reservation.hold_id)
    return _json(s.HoldOut, _hold_out(view), 201,
                 Location=url_for("api.hold_detail", hold_id=reservation.hold_id))


@operation(bp, "/holds/<int:hold_id>", "GET", summary="A hold: its lines, total and time left", tag=HOLDS,
           errors=(404,), responses={200: ("The hold", s.HoldOut)})
def hold_detail(hold_id: int):
    """Someone else's hold is a 404."""
    return _json(s.HoldOut, _hold_out(_own_hold(hold_id)))


@operation(bp, "/holds/<int:hold_id>", "DELETE", summary="Release a hold", tag=HOLDS, errors=(404, 409),
           responses={204: ("Released; its units went back (to the waiting list first)", None)})
def hold_release(hold_id: int):
    view = _own_hold(hold_id)
    inventory.release_hold_by_id(db.session, hold_id=view.id, user_id=caller().user_id)
    log.info("hold.released", extra={"event_id": view.event.id, "user_id": caller().user_id, "hold_id": hold_id})
    return make_response("", 204)


@operation(bp, "/holds/<int:hold_id>/discount-code", "PUT", summary="Apply a discount code to a hold",
           tag=HOLDS, body=s.DiscountRequest, errors=(400, 404, 409, 422, 429),
           responses={200: ("The hold at its new price", s.HoldOut)})
def hold_discount(hold_id: int):
    """As on the hold page: the price changes at once, and the use is the hold's until it is paid, released or
    runs out. 422 says why a code does not apply (a code that does not exist and one that cannot be used now
    alike); 409 that it is used up, to an account that used it (or a payment is in flight); 429 too many
    wrong codes from this account or address, with Retry-After."""
    data = json_body(s.DiscountRequest)
    wrong_codes.attempt(lambda: codes.apply_discount(db.session, hold_id=hold_id, user_id=caller().user_id,
                                                     raw_code=data["code"]), user_id=caller().user_id)
    # Committed before the answer is read, on a connection of its own.
    db.session.commit()
    return _json(s.HoldOut, _hold_out(_own_hold(hold_id)))


@operation(bp, "/holds/<int:hold_id>/discount-code", "DELETE", summary="Take the discount code off a hold",
           tag=HOLDS, errors=(404, 409), responses={200: ("The hold at its full price", s.HoldOut)})
def hold_discount_remove(hold_id: int):
    codes.remove_discount(db.session, hold_id=hold_id, user_id=caller().user_id)
    # Committed before the answer is read, on a connection of its own.
    db.session.commit()
    return _json(s.HoldOut, _hold_out(_own_hold(hold_id)))


IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": True,
                   "schema": {"type": "string", "minLength": 16, "maxLength": 64},
                   "description": "the same key for every retry of one payment: one charge, one order"}


def _attempt_key(user_id: int, hold_id: int, key: str) -> str:
    # Keys are the client's to choose, so they are scoped to the buyer and
    # the hold before they meet the payment table's global unique index.
    return "api-" + hashlib.sha256(f"{user_id}:{hold_id}:{key}".encode()).hexdigest()[:48]


@operation(bp, "/holds/<int:hold_id>/payment", "POST", summary="Pay for a hold", tag=HOLDS,
           body=s.PayRequest, headers=(IDEMPOTENCY_KEY,), errors=(402, 404, 409, 410),
           responses={201: ("Paid (or paid before with this key): the order", s.OrderOut),
                      202: ("Stripe: the bank asks the buyer to confirm (3-D Secure); finish it afterwards",
                            s.PaymentActionOut)})
def pay(hold_id: int):
    """The checkout of the pages: three short transactions around the gateway call. Retrying with the same
    Idempotency-Key never charges twice; a decline keeps the hold (try again with a new key). With the
    simulated gateway send `card` (a test card); with Stripe send `payment_method`, and a 202 hands back the
    `client_secret` to confirm with the bank and the URL that finishes the payment."""
    data = json_body(s.PayRequest)
    who = caller()
    key = request.headers.get("Idempotency-Key", "").strip()
    stripe = current_app.config["PAYMENT_GATEWAY"] == "stripe"
    if stripe:
        card = _stripe_payment_method(data, key)
    else:
        if data.get("card") is None:
            raise InvalidFields({"card": ["Send the card to pay with."]})
        # The checkout page's own form: the same card rules and the same words.
        form = CardForm(formdata=MultiDict({**data["card"], "idempotency_key": key}), meta={"csrf": False})
        if not form.validate():
            raise InvalidFields(_key_named_as_header(dict(form.errors)))
        card = form.card()
    billing = data.get("billing") or {}
    try:
        result = checkout.pay(db.session, payment_gateway(), hold_id=hold_id, user_id=who.user_id,
                              idempotency_key=_attempt_key(who.user_id, hold_id, key), card=card,
                              answers=attendees.typed_values(data.get("attendees")),
                              billing_name=billing.get("name"), billing_address=billing.get("address"))
    except PaymentNeedsAction as action:
        # Left pending, the hold kept: the client confirms with the bank, then posts to `finish`.
        db.session.rollback()
        return _payment_action(hold_id, "requires_action", action.client_secret)
    return _order_created(result.order_id or 0, who.user_id)


def _stripe_payment_method(data: dict, key: str) -> PaymentMethodId:
    if data.get("card") is not None:
        raise InvalidFields({"card": ["This shop takes cards through Stripe: make a PaymentMethod with "
                                      "Stripe.js and send its id as payment_method."]})
    errors = {} if data.get("payment_method") else {"payment_method": ["Send the PaymentMethod id to pay with."]}
    if not 16 <= len(key) <= 64:
        errors["Idempotency-Key"] = ["Send an Idempotency-Key header of 16 to 64 characters."]
    if errors:
        raise InvalidFields(errors)
    return PaymentMethodId(data["payment_method"])


def _key_named_as_header(errors: dict) -> dict:
    if "idempotency_key" in errors:
        errors["Idempotency-Key"] = ["Send an Idempotency-Key header of 16 to 64 characters."]
        del errors["idempotency_key"]
    return errors


def _payment_action(hold_id: int, status: str, client_secret: str | None):
    return _json(s.PaymentActionOut, {"status": status, "client_secret": client_secret,
                                      "finish": url_for("api.pay_finish", hold_id=hold_id)}, 202)


def _order_created(order_id: int, user_id: int):
    with single_statement() as connection:
        order = checkout_read.order_view(connection, order_id, user_id)
    if order is None:
        raise NotFound(_("No such order."))
    return _json(s.OrderOut, order, 201, Location=url_for("api.order_detail", order_id=order.id))


@operation(bp, "/holds/<int:hold_id>/payment/finish", "POST", summary="Finish a payment the bank asked to confirm",
           tag=HOLDS, headers=(IDEMPOTENCY_KEY,), errors=(402, 404),
           responses={201: ("Paid: the order", s.OrderOut),
                      202: ("Not settled yet: ask again in a moment", s.PaymentActionOut)})
def pay_finish(hold_id: int):
    """After 3-D Secure, with the payment's Idempotency-Key: settled from Stripe's own word on the payment
    (what the client says counts for nothing), as the pages and the webhook settle it."""
    who = caller()
    key = request.headers.get("Idempotency-Key", "").strip()
    if not 16 <= len(key) <= 64:
        raise InvalidFields({"Idempotency-Key": ["Send the payment's Idempotency-Key header (16 to 64 characters)."]})
    result = checkout.settle_from_gateway(db.session, payment_gateway(), user_id=who.user_id,
                                          idempotency_key=_attempt_key(who.user_id, hold_id, key))
    if result is None:
        return _payment_action(hold_id, "processing", None)
    if result.order_id is None:
        raise PaymentDeclined(result.decline_code or "failed", result.decline_message or "Payment failed.")
    return _order_created(result.order_id, who.user_id)


@operation(bp, "/orders", "GET", summary="Your orders, newest first", tag=ORDERS,
           responses={200: ("Orders with their tickets", s.OrderList)})
def orders_list():
    return _json(s.OrderList, {"orders": checkout_read.order_views(db.session, caller().user_id)})


def _own_order(order_id: int) -> checkout_read.OrderView:
    with single_statement() as connection:
        order = checkout_read.order_view(connection, order_id, caller().user_id)
    if order is None:
        raise NotFound(_("No such order."))
    return order


@operation(bp, "/orders/<int:order_id>", "GET", summary="An order", tag=ORDERS, errors=(404,),
           responses={200: ("The order", s.OrderOut)})
def order_detail(order_id: int):
    """Someone else's order is a 404, as on the pages."""
    return _json(s.OrderOut, _own_order(order_id))


@operation(bp, "/orders/<int:order_id>/tickets", "GET", summary="An order's tickets with their codes",
           tag=ORDERS, errors=(404,), responses={200: ("The tickets", s.TicketList)})
def order_tickets(order_id: int):
    return _json(s.TicketList, {"tickets": _own_order(order_id).tickets})


@operation(bp, "/orders/<int:order_id>/cancel", "POST", summary="Cancel an order (refunded)", tag=ORDERS,
           errors=(404, 409), responses={200: ("The order, refunded", s.OrderOut)})
def order_cancel(order_id: int):
    """As on the order page: refunded, tickets void, the seats free again (the waiting list first)."""
    checkout.cancel_by_buyer(db.session, payment_gateway(), order_id=order_id, user_id=caller().user_id)
    # Committed before the answer is read, on a connection of its own.
    db.session.commit()
    log.info("order.cancelled", extra={"order_id": order_id, "user_id": caller().user_id, "via": "api"})
    return _json(s.OrderOut, _own_order(order_id))


def _entry_out(item: waitlist_read.WaitlistEntryView) -> dict:
    e = item.entry
    offer = None
    if item.offer is not None:
        offer = dict(hold_id=item.offer.id, expires_at=item.offer.expires_at,
                     seconds_left=item.offer_seconds_left or 0, quantity=item.offer.quantity)
    return dict(id=e.id, event_id=e.event_id, tier_id=e.tier_id, tier_name=item.tier_name, quantity=e.quantity,
                status=e.status.value, position=item.place.position if item.place else None,
                ahead_people=item.place.ahead_people if item.place else None,
                ahead_tickets=item.place.ahead_tickets if item.place else None, offer=offer)


def _own_entry(entry_id: int) -> waitlist_read.WaitlistEntryView:
    entry = waitlist.entry_of(db.session, entry_id=entry_id, user_id=caller().user_id)
    if entry is None:
        raise NotFound(_("No such waiting-list entry."))
    view = waitlist_read.entry_view(db.session, entry)
    assert view is not None
    return view


@operation(bp, "/events/<int:event_id>/waitlist", "POST", summary="Join a sold-out event's waiting list",
           tag=WAITLIST, body=s.WaitlistJoin, errors=(404, 409),
           responses={201: ("Your place in line", s.WaitlistEntryOut)})
def waitlist_join(event_id: int):
    """For a sold-out tier, or (tier_id null) any ticket type once every tier is sold out."""
    data = json_body(s.WaitlistJoin)
    event = _event(event_id)
    entry = waitlist.join(db.session, user_id=caller().user_id, event_id=event.id, tier_id=data["tier_id"],
                          quantity=data["quantity"])
    # Committed before the place in line is read: the event's joins and releases queue on the line lock.
    db.session.commit()
    log.info("waitlist.joined", extra={"event_id": event.id, "user_id": caller().user_id, "entry_id": entry.id,
                                        "via": "api"})
    return _json(s.WaitlistEntryOut, _entry_out(_own_entry(entry.id)), 201,
                 Location=url_for("api.waitlist_entry", entry_id=entry.id))


@operation(bp, "/waitlist", "GET", summary="Your waiting-list entries", tag=WAITLIST,
           responses={200: ("Live entries with place or offer, then recent ended ones", s.WaitlistEntries)})
def waitlist_mine():
    entries = waitlist_read.my_entries(db.session, caller().user_id)
    return _json(s.WaitlistEntries, {"entries": [_entry_out(e) for e in entries]})


@operation(bp, "/waitlist/<int:entry_id>", "GET", summary="Your place in line, or your offer", tag=WAITLIST,
           errors=(404,), responses={200: ("The entry", s.WaitlistEntryOut)})
def waitlist_entry(entry_id: int):
    return _json(s.WaitlistEntryOut, _entry_out(_own_entry(entry_id)))


@operation(bp, "/waitlist/<int:entry_id>", "DELETE", summary="Leave the waiting list", tag=WAITLIST,
           errors=(404, 409), responses={204: ("Left; an offer you held passes to the next person", None)})
def waitlist_leave(entry_id: int):
    waitlist.leave(db.session, entry_id=entry_id, user_id=caller().user_id)
    return make_response("", 204)


@operation(bp, "/waitlist/<int:entry_id>/accept", "POST", summary="Accept an offer", tag=WAITLIST,
           errors=(404, 409), responses={200: ("The offer's hold: pay it like any hold", s.HoldOut)})
def waitlist_accept(entry_id: int):
    """Accepting is the normal checkout, as on the pages: this returns the offer's hold, to pay before it runs out."""
    item = _own_entry(entry_id)
    if item.entry.status != WaitlistStatus.OFFERED or item.offer is None:
        raise waitlist.NoOffer()
    return _json(s.HoldOut, _hold_out(_own_hold(item.offer.id)))


@operation(bp, "/waitlist/<int:entry_id>/decline", "POST", summary="Decline an offer", tag=WAITLIST,
           errors=(404, 409), responses={200: ("The entry, ended; the tickets went to the next person",
                                               s.WaitlistEntryOut)})
def waitlist_decline(entry_id: int):
    waitlist.decline(db.session, entry_id=entry_id, user_id=caller().user_id)
    # Committed before the entry is read: the event's joins and releases queue on the line lock.
    db.session.commit()
    return _json(s.WaitlistEntryOut, _entry_out(_own_entry(entry_id)))
