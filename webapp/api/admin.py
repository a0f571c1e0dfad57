"""Admin resources: events and tiers, the seat layout, sales, stats, orders, check-in, the attendee export.

An admin token only (anything else gets 404, as the admin pages answer
buyers). Input goes through the admin pages' own forms, so each field has
one rule and one message wherever it is entered; the services write the
audit log with the token's user as the actor.
"""
from __future__ import annotations

import logging
from datetime import timezone

from flask import make_response, stream_with_context, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from webapp.admin.forms import RANGE_LINES, EventForm, LayoutForm, ReasonForm, TierForm
from webapp.api import admin_bp
from webapp.api import schemas as s
from webapp.api.routing import InvalidFields, caller, json_body, operation, query_args
from webapp.extensions import db
from webapp.models import Event, EventStatus, Tier
from webapp.services.admin import checkin, export
from webapp.services.admin import events as admin_events
from webapp.services.admin import orders as admin_orders
from webapp.services.admin import reports as admin_reports
from webapp.services.errors import BookingError, InvalidRequest, NotFound
from webapp.services.messaging import webhooks
from webapp.services.money import refunds
from webapp.services.money.gateway import payment_gateway
from webapp.timezones import to_form

log = logging.getLogger(__name__)

ADMIN = "Admin"
_MINUTE = "%Y-%m-%dT%H:%M"


def _op(rule: str, method: str, **kw):
    return operation(admin_bp, rule, method, tag=kw.pop("tag", ADMIN), admin=True, **kw)


def _json(schema, obj, status: int = 200, **headers: str):
    response = make_response(schema().dump(obj), status)
    response.headers.update(headers)
    return response


def _load_event(event_id: int) -> Event:
    event = admin_reports.event_with_tiers(db.session, event_id)
    if event is None:
        raise NotFound("No such event.")
    return event


def _event_out(event: Event) -> dict:
    return dict(
        id=event.id, title=event.title, description=event.description, venue=event.venue,
        starts_at=event.starts_at, timezone=event.timezone, sales_end_at=event.sales_end_at,
        image_url=event.image_url, status=event.status.value, hold_minutes=event.hold_minutes,
        per_order_limit=event.per_order_limit, offer_hours=event.offer_hours,
        waitlist_enabled=event.waitlist_enabled, waitlist_partial_offers=event.waitlist_partial_offers,
        tiers=[dict(id=t.id, name=t.name, seated=t.seated, price_minor=t.price_minor, currency=t.currency,
                    colour=t.colour, capacity=t.capacity) for t in event.tiers])


def _form_text(value) -> str | None:
    """A JSON value as the form would have received it (booleans: present or absent)."""
    if value is None or value is False:
        return None
    if value is True:
        return "y"
    return str(value)


def _formdata(base: dict, changes: dict) -> MultiDict:
    merged = {**base, **{k: _form_text(v) for k, v in changes.items()}}
    return MultiDict({k: v for k, v in merged.items() if v is not None})


def _checked(form) -> None:
    if not form.validate():
        raise InvalidFields(form.errors)


def _event_base(event: Event) -> dict:
    """The event as its edit form shows it: a PATCH changes only the fields it sends."""
    return {k: _form_text(v) for k, v in dict(
        title=event.title, description=event.description, venue=event.venue, timezone=event.timezone,
        starts_at=to_form(event.starts_at, event.timezone).strftime(_MINUTE),
        sales_end_at=event.sales_end_at.astimezone(timezone.utc).strftime(_MINUTE)
        if event.sales_end_at else None,
        image_url=event.image_url, hold_minutes=event.hold_minutes, per_order_limit=event.per_order_limit,
        offer_hours=event.offer_hours, waitlist_enabled=event.waitlist_enabled,
        waitlist_partial_offers=event.waitlist_partial_offers, billing_required=event.billing_required).items()}


_NEW_EVENT = {"timezone": "UTC", "hold_minutes": "8", "per_order_limit": "8", "offer_hours": "12",
              "waitlist_enabled": "y"}


@_op("/events", "GET", summary="Every event, drafts included", responses={200: ("Events", s.AdminEventList)})
def events_all():
    rows = admin_reports.all_events(db.session)
    return _json(s.AdminEventList, {"events": [_event_out(e) for e in rows]})


@_op("/events", "POST", summary="Create an event (as a draft)", body=s.EventIn,
     responses={201: ("The new draft", s.AdminEvent)})
def event_create():
    """The fields and rules of the admin's event form; the start is the venue's local time."""
    data = json_body(s.EventIn)
    form = EventForm(formdata=_formdata(_NEW_EVENT, data), meta={"csrf": False}, creating=True)
    _checked(form)
    event = admin_events.create_event(db.session, actor_id=caller().user_id, **form.values())
    return _json(s.AdminEvent, _event_out(_load_event(event.id)), 201,
                 Location=url_for("api.admin.event_get", event_id=event.id))


@_op("/events/<int:event_id>", "GET", summary="An event with its tiers", errors=(404,),
     responses={200: ("The event", s.AdminEvent)})
def event_get(event_id: int):
    return _json(s.AdminEvent, _event_out(_load_event(event_id)))


@_op("/events/<int:event_id>", "PATCH", summary="Edit an event", body=s.EventIn, errors=(404, 409),
     responses={200: ("The event", s.AdminEvent)})
def event_update(event_id: int):
    event = _load_event(event_id)
    data = json_body(s.EventIn)
    form = EventForm(formdata=_formdata(_event_base(event), data), meta={"csrf": False})
    _checked(form)
    admin_events.update_event(db.session, actor_id=caller().user_id, event_id=event.id, **form.values())
    return _json(s.AdminEvent, _event_out(_load_event(event_id)))


def _price_text(price_minor: int) -> str:
    sign = "-" if price_minor < 0 else ""
    whole, cents = divmod(abs(price_minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def _tier_formdata(base: dict, data: dict) -> MultiDict:
    changes = {k: v for k, v in data.items() if k != "price_minor"}
    if "price_minor" in data:
        changes["price"] = _price_text(data["price_minor"])
    return _formdata(base, changes)


@_op("/events/<int:event_id>/tiers", "POST", summary="Add a tier", body=s.TierIn, errors=(404, 409),
     responses={201: ("The event with the new tier", s.AdminEvent)})
def tier_create(event_id: int):
    """General admission gets its places at once; a seated tier gets seats from the layout generator."""
    event = _load_event(event_id)
    data = json_body(s.TierIn)
    form = TierForm(formdata=_tier_formdata({"colour": admin_events.suggest_tier_colour(event)}, data),
                    meta={"csrf": False})
    _checked(form)
    admin_events.add_tier(db.session, actor_id=caller().user_id, event_id=event.id,
                          seated=form.kind.data == "seated", name=form.name.data.strip(),
                          price_minor=form.price_minor, colour=form.colour.data, capacity=form.capacity.data or 0)
    return _json(s.AdminEvent, _event_out(_load_event(event_id)), 201)


def _tier(event: Event, tier_id: int) -> Tier:
    tier = next((t for t in event.tiers if t.id == tier_id), None)
    if tier is None:
        raise NotFound("No such tier.")
    return tier


@_op("/events/<int:event_id>/tiers/<int:tier_id>", "PATCH", summary="Edit a tier (name, price, colour, capacity)",
     body=s.TierIn, errors=(404, 409), responses={200: ("The event", s.AdminEvent)})
def tier_update(event_id: int, tier_id: int):
    """Capacity changes that would break sold inventory are refused with the reason."""
    event = _load_event(event_id)
    tier = _tier(event, tier_id)
    data = json_body(s.TierIn)
    data["kind"] = "seated" if tier.seated else "general"
    base = {"kind": data["kind"], "name": tier.name, "price": _price_text(tier.price_minor), "colour": tier.colour,
            "capacity": None if tier.seated else str(tier.capacity)}
    form = TierForm(formdata=_tier_formdata(base, data), meta={"csrf": False})
    _checked(form)
    admin_events.update_tier(db.session, actor_id=caller().user_id, event_id=event.id, tier_id=tier.id,
                             name=form.name.data.strip(), price_minor=form.price_minor, colour=form.colour.data,
                             capacity=None if tier.seated else form.capacity.data)
    return _json(s.AdminEvent, _event_out(_load_event(event_id)))


@_op("/events/<int:event_id>/layout", "POST", summary="Generate seats: sections × rows × seats, a tier per row range",
     body=s.LayoutIn, errors=(404, 409), responses={201: ("How many seats were made", s.LayoutOut)})
def layout_generate(event_id: int):
    event = _load_event(event_id)
    data = json_body(s.LayoutIn)
    fields = {"sections": ", ".join(data["sections"]), "rows": str(data["rows"]),
              "seats_per_row": str(data["seats_per_row"]), "first_row_label": data["first_row_label"]}
    if len(data["ranges"]) > RANGE_LINES:
        raise InvalidRequest(f"At most {RANGE_LINES} row ranges.")
    for i, line in enumerate(data["ranges"], start=1):
        fields.update({f"tier_{i}": str(line["tier_id"]), f"from_{i}": str(line["from_row"]),
                       f"to_{i}": str(line["to_row"])})
    formdata = MultiDict(fields)
    form = LayoutForm(formdata=formdata, meta={"csrf": False},
                      tier_choices=[(t.id, t.name) for t in event.tiers if t.seated])
    form.validate()
    request_, problems = form.layout_request(formdata)
    if request_ is None:
        raise InvalidFields({"layout": problems}, problems[0] if problems else "The layout is not valid.")
    created = admin_events.generate_layout(db.session, actor_id=caller().user_id, event_id=event.id,
                                           request=request_)
    return _json(s.LayoutOut, {"created": created}, 201)


@_op("/events/<int:event_id>/status", "POST", summary="Open or close sales", body=s.StatusIn, errors=(404, 409),
     responses={200: ("The event", s.AdminEvent)})
def event_status(event_id: int):
    _load_event(event_id)
    data = json_body(s.StatusIn)
    admin_events.change_status(db.session, actor_id=caller().user_id, event_id=event_id,
                               status=EventStatus(data["status"]))
    return _json(s.AdminEvent, _event_out(_load_event(event_id)))


@_op("/events/<int:event_id>/stats", "GET", summary="The dashboard's figures", errors=(404,),
     responses={200: ("Counts by tier and for the event, revenue, waiting list, check-ins", s.Stats)})
def event_stats(event_id: int):
    stats = admin_reports.dashboard(db.session, _load_event(event_id))
    return _json(s.Stats, dict(
        capacity=stats.capacity, available=stats.available, held=stats.held, sold=stats.sold,
        blocked=stats.blocked, waiting_people=stats.waiting_people, waiting_tickets=stats.waiting_tickets,
        offers_live=stats.offers_live, orders=stats.orders, revenue_minor=stats.revenue_minor,
        refunded_minor=stats.refunded_minor, checked_in=stats.checked_in, currency=stats.currency,
        tiers=[dict(tier_id=line.tier.id, name=line.tier.name, capacity=line.counts.capacity,
                    available=line.counts.available, held=line.counts.held, sold=line.counts.sold,
                    blocked=line.counts.blocked) for line in stats.tiers]))


@_op("/orders", "GET", summary="Search orders by e-mail, ticket code or order number", query=s.OrderSearchQuery,
     responses={200: ("Matching orders, newest first", s.AdminOrderList)})
def orders_search():
    args = query_args(s.OrderSearchQuery)
    rows = admin_orders.search_orders(db.session, args.get("q", ""), event_id=args.get("event_id"))
    return _json(s.AdminOrderList, {"orders": [dict(
        id=o.id, event_id=o.event_id, buyer_email=o.user.email, status=o.status.value, total_minor=o.total_minor,
        currency=o.currency, created_at=o.created_at, tickets=len(o.tickets)) for o in rows]})


@_op("/orders/<int:order_id>/refund", "POST", summary="Refund an order, some of its tickets, or an amount",
     body=s.RefundIn, errors=(404, 409), responses={200: ("The order, after the refund", s.AdminOrder)})
def order_refund(order_id: int):
    """As the admin order page: the tickets refunded void, money back, the buyer told, seats to the waiting list.

    With neither `ticket_ids` nor `amount_minor`, the whole order.
    """
    data = json_body(s.RefundIn)
    form = ReasonForm(formdata=MultiDict({"reason": data["reason"]}), meta={"csrf": False})
    _checked(form)
    found = admin_orders.get_order(db.session, order_id)
    ticket_ids, amount = data.get("ticket_ids"), data.get("amount_minor")
    admin_orders.refund(db.session, payment_gateway(), actor_id=caller().user_id, order_id=found.id,
                        reason=form.reason.data.strip(), ticket_ids=ticket_ids, amount_minor=amount,
                        whole=ticket_ids is None and amount is None)
    log.info("order.refunded_by_admin", extra={"order_id": order_id, "via": "api"})
    o = admin_orders.get_order(db.session, order_id)
    money = refunds.balance(db.session, o)
    return _json(s.AdminOrder, dict(id=o.id, event_id=o.event_id, buyer_email=o.user.email, status=o.status.value,
                                    total_minor=o.total_minor, currency=o.currency, created_at=o.created_at,
                                    tickets=len(o.tickets), refunded_minor=money.refunded_minor,
                                    refund_pending_minor=money.pending_minor,
                                    outstanding_minor=money.outstanding_minor))


@_op("/events/<int:event_id>/check-in", "POST", summary="Check a ticket in by its code", body=s.CheckInIn,
     errors=(404, 409), responses={200: ("Admitted", s.CheckInOut)})
def check_in(event_id: int):
    """Each valid ticket once, even when two gates scan it together. A refusal is a problem whose
    outcome says which: already_checked_in, cancelled, wrong_event, transferred (409) or unknown (404)."""
    event = _load_event(event_id)
    data = json_body(s.CheckInIn)
    result = checkin.check_in(db.session, event_id=event.id, code=data["code"], staff_id=caller().user_id)
    ticket = result.ticket
    if not result.admitted:
        raise CheckInRefused(result)
    assert ticket is not None
    return _json(s.CheckInOut, dict(
        outcome=result.outcome, admitted=True, code=result.code, ticket_id=ticket.id,
        place=ticket.unit.place_label, checked_in_at=result.checked_in_at))


class CheckInRefused(BookingError):
    # The check-in page's verdicts, in its words.
    VERDICTS = {checkin.ALREADY: "Already checked in.", checkin.CANCELLED: "Cancelled ticket — do not admit.",
                checkin.WRONG_EVENT: "Wrong event: this ticket is for another event.",
                checkin.UNKNOWN: "Unknown code: no ticket has this code. Check for a typo, or scan again.",
                checkin.TRANSFERRED: "Transferred — do not admit: the ticket has a new code, held by its recipient."}

    def __init__(self, result: checkin.CheckInResult):
        super().__init__(self.VERDICTS[result.outcome])
        self.status_code = checkin.STATUS_CODES[result.outcome]
        self.problem_extensions = {"outcome": result.outcome, "checked_in_at":
                                   result.checked_in_at.isoformat() if result.checked_in_at else None}


@_op("/events/<int:event_id>/attendees.csv", "GET", summary="Attendees as CSV (streamed)", errors=(404,),
     responses={200: ("One line per valid ticket", None, "text/csv")})
def attendees(event_id: int):
    event = _load_event(event_id)
    export.record_export(db.session, actor_id=caller().user_id, event_id=event.id)
    return Response(stream_with_context(export.attendee_csv(db.engine, event.id)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="attendees-event-{event.id}.csv"',
                             "Cache-Control": "no-store"})



@_op("/webhooks", "POST", tag="Webhooks", summary="Register a webhook endpoint", body=s.WebhookIn, errors=(404,),
     responses={201: ("The endpoint, with its signing secret (shown only here)", s.WebhookCreated)})
def webhook_create():
    """HTTPS only, to public addresses; event_id null means every event. Deliveries are signed with
    HMAC-SHA256 over <timestamp>.<body> (header Ticketbooth-Signature: t=…,v1=…)."""
    data = json_body(s.WebhookIn)
    endpoint = webhooks.create_endpoint(db.session, actor_id=caller().user_id, url=data["url"],
                                        event_id=data["event_id"], event_types=data["event_types"])
    return _json(s.WebhookCreated, endpoint, 201)


@_op("/webhooks", "GET", tag="Webhooks", summary="Webhook endpoints",
     responses={200: ("Every endpoint", s.WebhookList)})
def webhook_list():
    return _json(s.WebhookList, {"webhooks": webhooks.endpoints(db.session)})


@_op("/webhooks/<int:webhook_id>", "DELETE", tag="Webhooks", summary="Remove a webhook endpoint", errors=(404,),
     responses={204: ("Removed, with its delivery log", None)})
def webhook_delete(webhook_id: int):
    webhooks.delete_endpoint(db.session, actor_id=caller().user_id, endpoint_id=webhook_id)
    return make_response("", 204)


@_op("/webhooks/<int:webhook_id>/deliveries", "GET", tag="Webhooks", summary="An endpoint's delivery log",
     errors=(404,),
     responses={200: ("Newest first, with the last answer of each", s.DeliveryList)})
def webhook_deliveries(webhook_id: int):
    endpoint = webhooks.get_endpoint(db.session, webhook_id)
    return _json(s.DeliveryList, {"deliveries": webhooks.deliveries(db.session, endpoint.id)})


@_op("/webhooks/deliveries/<int:delivery_id>/redeliver", "POST", tag="Webhooks", summary="Send a delivery again",
     errors=(404,),
     responses={200: ("The delivery, due now", s.DeliveryOut)})
def webhook_redeliver(delivery_id: int):
    delivery = webhooks.redeliver(db.session, actor_id=caller().user_id, delivery_id=delivery_id)
    return _json(s.DeliveryOut, delivery)
