"""What the API takes and gives, as marshmallow schemas.

They check shapes and types only (a whole number is a whole number, a list
is a list); the rules themselves (limits, what is on sale, valid cards,
time zones) stay in the services and forms the pages use, so there is one
copy of each. The same classes become the OpenAPI document's components.
"""
from __future__ import annotations

import re
from datetime import date

from marshmallow import Schema, fields, validate

from webapp.models import SEAT_PROPERTIES
from webapp.parsing import MAX_YEAR, MIN_YEAR
from webapp.services.messaging.webhooks import EVENT_TYPES

PG_INT = validate.Range(min=1, max=2_147_483_647)
_SURROGATE = re.compile("[\ud800-\udfff]")


class Text(fields.String):
    """Every string the API takes in. PostgreSQL text cannot hold U+0000 (psycopg2 refuses the whole
    statement), so it is refused here, field by field, as `webapp/parsing.py` refuses it in forms and queries.
    Nor can UTF-8 carry a lone surrogate, which JSON's \\u escapes can spell (a form's bytes cannot)."""

    default_error_messages = {"nul": "Contains a character that is not allowed (NUL).",
                              "surrogate": "Contains a character that is not allowed (a lone UTF-16 surrogate)."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        if _SURROGATE.search(text):
            raise self.make_error("surrogate")
        return text


def _id(**kw) -> fields.Integer:
    return fields.Integer(strict=True, validate=PG_INT, **kw)


class Problem(Schema):
    """RFC 9457 problem details; extension members depend on the problem."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String()
    taken_seats = fields.List(fields.Dict(), metadata={"description": "seats taken (seat conflicts): id and label"})
    tier = fields.String(metadata={"description": "the tier short of places"})
    requested = fields.Integer()
    left = fields.Integer(metadata={"description": "how many are left"})
    waitlist_open = fields.Boolean(metadata={"description": "sold out, and the waiting list can be joined"})
    decline_code = fields.String()
    errors = fields.Dict(metadata={"description": "field name -> messages, for invalid input"})
    outcome = fields.String(metadata={"description": "check-in: why the ticket was not admitted"})
    checked_in_at = fields.String(allow_none=True, metadata={"description": "check-in: when it was admitted before"})


# --- events -----------------------------------------------------------------

class EventQuery(Schema):
    access = Text(validate=validate.Length(max=40),
                  metadata={"description": "an access code: its hidden tiers are listed too"})


class EventListQuery(Schema):
    q = Text(validate=validate.Length(max=100), metadata={"description": "words in title, venue or text"})
    # The years the pages' filter takes (webapp/parsing.py): 9999-12-31 would overflow the day after.
    date = fields.Date(validate=validate.Range(min=date(MIN_YEAR, 1, 1), max=date(MAX_YEAR, 12, 31)),
                       metadata={"description": "only events starting on this day (UTC)"})


class EventSummary(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    venue = fields.String(required=True)
    starts_at = fields.DateTime(required=True, metadata={"description": "in the venue's time zone"})
    timezone = fields.String(required=True)
    status = fields.String(required=True)
    min_price_minor = fields.Integer(allow_none=True, required=True)
    max_price_minor = fields.Integer(allow_none=True, required=True)
    currency = fields.String(required=True)
    capacity = fields.Integer(required=True)
    available = fields.Integer(required=True)
    availability = fields.String(required=True, validate=validate.OneOf(["available", "selling_fast", "sold_out"]))


class EventList(Schema):
    events = fields.List(fields.Nested(EventSummary), required=True)


class TierAvailability(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    price_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    colour = fields.String(required=True)
    seated = fields.Boolean(required=True)
    capacity = fields.Integer(required=True)
    available = fields.Integer(required=True, metadata={"description": "0 while the waiting list comes first"})
    sold_out = fields.Boolean(required=True)


class EventDetail(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    venue = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    timezone = fields.String(required=True)
    sales_end_at = fields.DateTime(allow_none=True, required=True)
    image_url = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    seated = fields.Boolean(required=True)
    per_order_limit = fields.Integer(required=True)
    hold_minutes = fields.Float(required=True)
    waitlist_enabled = fields.Boolean(required=True)
    tiers = fields.List(fields.Nested(TierAvailability), required=True)


class Seat(Schema):
    id = fields.Integer(required=True)
    tier_id = fields.Integer(required=True, allow_none=True,
                             metadata={"description": "null for a seat of a hidden tier its access code did not open"})
    section = fields.String(required=True)
    row = fields.String(required=True)
    number = fields.Integer(required=True)
    label = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["available", "taken", "blocked", "mine"]))
    properties = fields.List(fields.String(validate=validate.OneOf(list(SEAT_PROPERTIES))), required=True,
                             metadata={"description": "wheelchair (a wheelchair space), companion (a companion "
                                                      "seat, sold with its wheelchair space), restricted_view, aisle"})


class SeatList(Schema):
    event_id = fields.Integer(required=True)
    seats = fields.List(fields.Nested(Seat), required=True)


# --- holds and payment --------------------------------------------------------

class Quantity(Schema):
    tier_id = _id(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=0, max=1000))


class BestRequest(Schema):
    """The best free seats of a seat tier, nearest the event's focal point, side by side in a row where possible."""

    tier_id = _id(required=True)
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=100))
    wheelchair = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=50),
                                metadata={"description": "how many of them are wheelchair spaces, each with its "
                                                         "companion seat (counted in quantity)"})
    section = Text(validate=validate.Length(min=1, max=60), metadata={"description": "only in this section"})


class ReserveRequest(Schema):
    """One of “seats” (numbered seats, by id), “quantities” (general admission, per tier) or “best”."""

    seats = fields.List(_id(), validate=validate.Length(min=1, max=1000))
    quantities = fields.List(fields.Nested(Quantity), validate=validate.Length(min=1, max=50))
    best = fields.Nested(BestRequest)
    access_codes = fields.List(Text(validate=validate.Length(max=40)), validate=validate.Length(max=5),
                               metadata={"description": "access codes for hidden tiers (refused with 403 without)"})


class DiscountRequest(Schema):
    code = Text(required=True, validate=validate.Length(min=1, max=40))


class EventRef(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    venue = fields.String(required=True)
    starts_at = fields.DateTime(required=True)


class Line(Schema):
    unit_id = fields.Integer(required=True)
    tier_id = fields.Integer(required=True)
    tier_name = fields.String(required=True)
    price_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    place = fields.String(required=True, attribute="place_label")
    section = fields.String(allow_none=True, required=True)
    row = fields.String(allow_none=True, required=True, attribute="row_label")
    seat = fields.Integer(allow_none=True, required=True, attribute="seat_number")
    discount_minor = fields.Integer(required=True, metadata={"description": "what the hold's code takes off"})
    properties = fields.List(fields.String(), required=True,
                             metadata={"description": "the seat's properties, as in the seat list"})


class QuestionOut(Schema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(
        ["text", "number", "choice", "choices", "checkbox", "date"]))
    options = fields.List(fields.String(), required=True, metadata={"description": "for choice and choices"})
    required = fields.Boolean(required=True)
    per_ticket = fields.Boolean(required=True, metadata={"description": "false: asked once per order"})
    tier_id = fields.Integer(allow_none=True, required=True, metadata={"description": "asked only of this tier"})


class HoldOut(Schema):
    id = fields.Integer(required=True)
    event = fields.Nested(EventRef, required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["purchase", "offer"]))
    status = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    seconds_left = fields.Integer(required=True)
    expired = fields.Boolean(required=True)
    payable = fields.Boolean(required=True)
    payment_pending = fields.Boolean(required=True)
    last_decline = fields.String(allow_none=True, required=True)
    total_minor = fields.Integer(required=True, metadata={"description": "after the discount code, if any"})
    net_minor = fields.Integer(required=True, metadata={
        "description": "the total without tax; net + tax = total, the tax rounded per ticket as on the invoice"})
    tax_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    stripe_publishable_key = fields.String(allow_none=True, required=True, metadata={
        "description": "with Stripe: the key to make the PaymentMethod with (the event's organiser's account); "
                       "null with the simulated gateway"})
    order_id = fields.Integer(allow_none=True, required=True)
    discount_code = fields.String(allow_none=True, required=True)
    discount_minor = fields.Integer(required=True)
    lines = fields.List(fields.Nested(Line), required=True)
    attendee_names = fields.String(required=True, validate=validate.OneOf(["off", "asked", "required"]),
                                   metadata={"description": "whether each ticket's attendee name is asked"})
    questions = fields.List(fields.Nested(QuestionOut), required=True,
                            metadata={"description": "what the payment must answer (attendees)"})


class Answer(fields.Raw):
    """One answer: text, a number, true (a ticked checkbox) or a list of options; nothing else."""

    default_error_messages = {"kind": "An answer is a string, a number, true or a list of strings.",
                              "nul": "Contains a character that is not allowed (NUL)."}

    def _deserialize(self, value, attr, data, **kwargs):
        plain = [value] if not isinstance(value, list) else value
        if isinstance(value, dict) or len(plain) > 50 or not all(
                isinstance(v, (str, int, float)) and not (isinstance(v, bool) and v is False) for v in plain) \
                or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise self.make_error("kind")
        if any(isinstance(v, str) and "\x00" in v for v in plain):
            raise self.make_error("nul")
        return value


class TicketAttendeeIn(Schema):
    name = Text(allow_none=True, load_default=None, validate=validate.Length(max=120))
    answers = fields.Dict(keys=Text(), values=Answer(), load_default=dict,
                          metadata={"description": "per-ticket answers by question id"})


class AttendeesIn(Schema):
    order = fields.Dict(keys=Text(), values=Answer(), load_default=dict,
                        metadata={"description": "answers asked once per order, by question id"})
    tickets = fields.Dict(keys=Text(), values=fields.Nested(TicketAttendeeIn), load_default=dict,
                          metadata={"description": "by the unit id of the hold's line"})


class CardIn(Schema):
    number = Text(required=True, metadata={"example": "4242 4242 4242 4242"})
    expiry = Text(required=True, metadata={"description": "MM/YY", "example": "12/30"})
    cvc = Text(required=True, metadata={"example": "123"})
    name = Text(required=True, metadata={"example": "Ada Lovelace"})


class BillingIn(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=200), metadata={"example": "Ada Lovelace Ltd"})
    address = Text(required=True, validate=validate.Length(min=1, max=500),
                   metadata={"example": "12 St James's Square, London"})


class PayRequest(Schema):
    card = fields.Nested(CardIn, load_default=None, metadata={
        "description": "a test card, with the simulated gateway (PAYMENT_GATEWAY=simulated) only"})
    payment_method = Text(load_default=None, validate=validate.Regexp(
        r"^pm_[A-Za-z0-9_]{1,100}$", error="A Stripe PaymentMethod id looks like pm_..."), metadata={
        "description": "with Stripe (PAYMENT_GATEWAY=stripe): the id of a PaymentMethod the client made with "
                       "Stripe.js and the shop's publishable key; card numbers never reach this API",
        "example": "pm_1QticketboothExample"})
    attendees = fields.Nested(AttendeesIn, load_default=None, metadata={"description": (
        "attendee names and answers to the hold's questions; refused ones come back as a 400 whose `fields` "
        "name them as ticket-<unit id>-name, ticket-<unit id>-q<question id> or order-q<question id>")})
    billing = fields.Nested(BillingIn, metadata={
        "description": "who the invoice is made out to: optional unless the organiser requires it"})


class PaymentActionOut(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["requires_action", "processing"]), metadata={
        "description": "requires_action: the bank asks the buyer to confirm (3-D Secure); processing: "
                       "not settled yet, ask again"})
    client_secret = fields.String(allow_none=True, metadata={
        "description": "for Stripe.js's handleCardAction in the client (requires_action only)"})
    finish = fields.String(required=True, metadata={
        "description": "POST here, with the same Idempotency-Key, once the client is done: the order (201), "
                       "still processing (202) or the decline (402)"})


# --- orders -------------------------------------------------------------------

class TicketOut(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True, metadata={"description": "what the QR code carries; checked in once"})
    status = fields.String(required=True, validate=validate.OneOf(["valid", "void"]))
    price_minor = fields.Integer(required=True)
    tier_id = fields.Integer(required=True, attribute="line.tier_id")
    tier_name = fields.String(required=True, attribute="line.tier_name")
    place = fields.String(required=True, attribute="line.place_label")
    attendee_name = fields.String(allow_none=True, required=True)
    answers = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True,
                          metadata={"description": "per-ticket answers by question id"})


class OrderOut(Schema):
    id = fields.Integer(required=True)
    event = fields.Nested(EventRef, required=True)
    status = fields.String(required=True, validate=validate.OneOf(["confirmed", "cancelled", "refunded"]))
    total_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    cancelled_at = fields.DateTime(allow_none=True, required=True)
    tickets = fields.List(fields.Nested(TicketOut), required=True)
    answers = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True,
                          metadata={"description": "answers asked once per order, by question id"})


class OrderList(Schema):
    orders = fields.List(fields.Nested(OrderOut), required=True)


class TicketList(Schema):
    tickets = fields.List(fields.Nested(TicketOut), required=True)


# --- waiting list -------------------------------------------------------------

class WaitlistJoin(Schema):
    tier_id = _id(allow_none=True, load_default=None, metadata={"description": "a tier, or null for any ticket type"})
    quantity = fields.Integer(strict=True, required=True, validate=validate.Range(min=-2_147_483_648,
                                                                                 max=2_147_483_647))


class OfferOut(Schema):
    hold_id = fields.Integer(required=True)
    expires_at = fields.DateTime(required=True)
    seconds_left = fields.Integer(required=True)
    quantity = fields.Integer(required=True)


class WaitlistEntryOut(Schema):
    id = fields.Integer(required=True)
    event_id = fields.Integer(required=True)
    tier_id = fields.Integer(allow_none=True, required=True)
    tier_name = fields.String(required=True)
    quantity = fields.Integer(required=True)
    status = fields.String(required=True)
    position = fields.Integer(allow_none=True, required=True, metadata={"description": "1 = next in line"})
    ahead_people = fields.Integer(allow_none=True, required=True)
    ahead_tickets = fields.Integer(allow_none=True, required=True)
    offer = fields.Nested(OfferOut, allow_none=True, required=True)


class WaitlistEntries(Schema):
    entries = fields.List(fields.Nested(WaitlistEntryOut), required=True)


# --- admin --------------------------------------------------------------------

class EventIn(Schema):
    """Event fields as the admin form takes them; the form's rules decide."""

    title = Text()
    description = Text()
    venue = Text()
    timezone = Text(metadata={"example": "Europe/Vienna"})
    starts_at = Text(metadata={"description": "local time at the venue, YYYY-MM-DDTHH:MM",
                           "example": "2027-05-01T19:30"})
    sales_end_at = Text(allow_none=True, metadata={"description": "UTC, YYYY-MM-DDTHH:MM; null: at the start"})
    image_url = Text(allow_none=True)
    hold_minutes = fields.Float()
    per_order_limit = fields.Integer(strict=True)
    offer_hours = fields.Float()
    waitlist_enabled = fields.Boolean()
    waitlist_partial_offers = fields.Boolean()


class TierIn(Schema):
    kind = Text(validate=validate.OneOf(["general", "seated"]), load_default="general")
    name = Text()
    price_minor = fields.Integer(strict=True, metadata={"description": "in cents"})
    colour = Text(metadata={"example": "#3b82f6"})
    capacity = fields.Integer(strict=True, allow_none=True, metadata={"description": "general admission only"})


class RowRangeIn(Schema):
    tier_id = _id(required=True)
    from_row = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=1000))
    to_row = fields.Integer(strict=True, required=True, validate=validate.Range(min=1, max=1000))


class LayoutIn(Schema):
    sections = fields.List(Text(), required=True, validate=validate.Length(min=1, max=20))
    rows = fields.Integer(strict=True, required=True)
    seats_per_row = fields.Integer(strict=True, required=True)
    first_row_label = Text(load_default="A")
    ranges = fields.List(fields.Nested(RowRangeIn), required=True, validate=validate.Length(min=1, max=4))


class LayoutOut(Schema):
    created = fields.Integer(required=True)


class StatusIn(Schema):
    status = Text(required=True, validate=validate.OneOf(["on_sale", "closed"]))


class AdminTier(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    seated = fields.Boolean(required=True)
    price_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    colour = fields.String(required=True)
    capacity = fields.Integer(required=True)


class AdminEvent(Schema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    venue = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    timezone = fields.String(required=True)
    sales_end_at = fields.DateTime(allow_none=True, required=True)
    image_url = fields.String(allow_none=True, required=True)
    status = fields.String(required=True)
    hold_minutes = fields.Float(required=True)
    per_order_limit = fields.Integer(required=True)
    offer_hours = fields.Float(required=True)
    waitlist_enabled = fields.Boolean(required=True)
    waitlist_partial_offers = fields.Boolean(required=True)
    tiers = fields.List(fields.Nested(AdminTier), required=True)


class TierStats(Schema):
    tier_id = fields.Integer(required=True)
    name = fields.String(required=True)
    capacity = fields.Integer(required=True)
    available = fields.Integer(required=True)
    held = fields.Integer(required=True)
    sold = fields.Integer(required=True)
    blocked = fields.Integer(required=True)


class Stats(Schema):
    capacity = fields.Integer(required=True)
    available = fields.Integer(required=True)
    held = fields.Integer(required=True)
    sold = fields.Integer(required=True)
    blocked = fields.Integer(required=True)
    waiting_people = fields.Integer(required=True)
    waiting_tickets = fields.Integer(required=True)
    offers_live = fields.Integer(required=True)
    orders = fields.Integer(required=True)
    revenue_minor = fields.Integer(required=True)
    refunded_minor = fields.Integer(required=True)
    checked_in = fields.Integer(required=True)
    currency = fields.String(required=True)
    tiers = fields.List(fields.Nested(TierStats), required=True)


class OrderSearchQuery(Schema):
    q = Text(validate=validate.Length(max=200), metadata={"description": "e-mail, ticket code or #order"})
    event_id = _id()


class AdminOrder(Schema):
    id = fields.Integer(required=True)
    event_id = fields.Integer(required=True)
    buyer_email = fields.String(required=True)
    status = fields.String(required=True)
    total_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    tickets = fields.Integer(required=True, metadata={"description": "number of tickets"})
    refunded_minor = fields.Integer(metadata={"description": "refunds confirmed by the gateway"})
    refund_pending_minor = fields.Integer(metadata={"description": "refunds asked for, not yet confirmed"})
    outstanding_minor = fields.Integer(metadata={"description": "paid and not given back"})


class AdminOrderList(Schema):
    orders = fields.List(fields.Nested(AdminOrder), required=True)


class ReasonIn(Schema):
    reason = Text(required=True)


class RefundIn(Schema):
    reason = Text(required=True)
    ticket_ids = fields.List(fields.Integer(strict=True, validate=PG_INT), validate=validate.Length(min=1, max=1000),
                             metadata={"description": "refund these tickets of the order (they become void)"})
    amount_minor = fields.Integer(strict=True, validate=validate.Range(min=-2_147_483_648, max=2_147_483_647),
                                  metadata={"description": "refund this amount; the tickets stay valid"})


class CheckInIn(Schema):
    code = Text(required=True)


class CheckInOut(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(
        ["valid", "already_checked_in", "cancelled", "wrong_event", "unknown", "transferred"]))
    admitted = fields.Boolean(required=True)
    code = fields.String(required=True)
    ticket_id = fields.Integer(allow_none=True, required=True)
    place = fields.String(allow_none=True, required=True)
    checked_in_at = fields.DateTime(allow_none=True, required=True)


class AdminEventList(Schema):
    events = fields.List(fields.Nested(AdminEvent), required=True)


class WebhookIn(Schema):
    url = Text(required=True, metadata={"example": "https://hooks.example.com/ticketbooth"})
    event_id = _id(allow_none=True, load_default=None, metadata={"description": "one event, or null for all"})
    event_types = fields.List(Text(validate=validate.OneOf(EVENT_TYPES)), required=True,
                              validate=validate.Length(min=1, max=len(EVENT_TYPES)))


class WebhookOut(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    event_id = fields.Integer(allow_none=True, required=True)
    event_types = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class WebhookCreated(WebhookOut):
    secret = fields.String(required=True, metadata={"description": "the HMAC key: shown here only"})


class WebhookList(Schema):
    webhooks = fields.List(fields.Nested(WebhookOut), required=True)


class DeliveryOut(Schema):
    id = fields.Integer(required=True)
    event_type = fields.String(required=True)
    event_id = fields.Integer(allow_none=True, required=True)
    body = fields.String(required=True, metadata={"description": "the JSON sent, byte for byte"})
    created_at = fields.DateTime(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(allow_none=True, required=True)
    failed_at = fields.DateTime(allow_none=True, required=True)
    last_status = fields.Integer(allow_none=True, required=True)
    last_response = fields.String(allow_none=True, required=True)
    last_error = fields.String(allow_none=True, required=True)


class DeliveryList(Schema):
    deliveries = fields.List(fields.Nested(DeliveryOut), required=True)
