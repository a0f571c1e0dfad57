"""Read side of checkout: what the hold page, its countdown and the order page show.

Each view is one statement returning plain rows (no ORM object graph), and
the decisions a page makes about a hold ("expired", "payment in flight",
seconds left) are made here, once, by the database clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

import segno
from markupsafe import Markup
from sqlalchemy import text
from sqlalchemy.orm import Session

from webapp.models import document_label, place_label
from webapp.services.money import tax
from webapp.services.selling import attendees, codes
from webapp.services.waiting.waitlist_read import LIVE_OFFERS_JSON
from webapp.timezones import localise


@dataclass(frozen=True)
class Line:
    unit_id: int
    tier_id: int
    tier_name: str
    colour: str
    price_minor: int
    currency: str
    section: str | None
    row_label: str | None
    seat_number: int | None
    discount_minor: int = 0  # what the hold's discount code takes off this unit
    properties: list[str] = field(default_factory=list)  # wheelchair, companion, restricted_view, aisle
    tax_rate_bp: int = 0  # the tier's rate: the tax inside the price, rounded per ticket (services/money/tax.py)

    @property
    def place_label(self) -> str:
        return place_label(self.section, self.row_label, self.seat_number)


@dataclass(frozen=True)
class EventSummary:
    id: int
    title: str
    venue: str
    starts_at: datetime
    organiser_locale: str  # the organiser's default language (webapp/i18n.py)


# What a buyer's page of a hold or order reads about the organiser, in its own statement.
ORGANISER_LOCALE = "(SELECT og.default_locale FROM organisers og WHERE og.id = e.organiser_id) AS organiser_locale"


def _event(row) -> EventSummary:
    # Times on the venue's clock, as the Event model hands them out.
    return EventSummary(row.event_id, row.title, row.venue, localise(row.starts_at, row.timezone),
                        row.organiser_locale)


@dataclass(frozen=True)
class HoldView:
    id: int
    event: EventSummary
    kind: str  # purchase / offer
    status: str  # active / expired / released / converted
    total_minor: int
    currency: str
    lines: list[Line]
    seconds_left: int
    total_seconds: int
    payment_pending: bool
    last_decline: str | None
    order_id: int | None
    expires_at: datetime
    # Seconds before the buyer may hold these units again, once let go (the
    # event's re-hold cool-down, migration 0010); 0 when they may now.
    again_in: int = 0
    # "Reserve again" already took this hold's units again once (checkout.reserve_again).
    taken_again: bool = False
    # The event sells now (on sale, before its sale end): a lapsed hold may be taken again.
    on_sale: bool = True
    # The event's waiting room guards it: a fresh reserve needs a current pass.
    room_guarded: bool = False
    code: str | None = None  # the discount code applied, with what it takes off in all
    discount_minor: int = 0
    code_terms: str | None = None
    codes_offered: bool = False  # the event has discount codes: the hold page offers to apply one
    # What the pay form asks (attendee names, the organiser's questions) and what was typed last time.
    attendee_names: str = "off"
    questions: tuple[attendees.QuestionView, ...] = ()
    answers: dict | None = None

    @property
    def asked(self) -> attendees.Asked:
        return attendees.asked(self.attendee_names, list(self.questions),
                               [(line.unit_id, line.tier_id, f"Ticket {n}: {line.tier_name}, {line.place_label}")
                                for n, line in enumerate(self.lines, 1)])
    billing_required: bool = False  # the organiser asks for a billing name and address (for an invoice)

    @property
    def subtotal_minor(self) -> int:
        return self.total_minor + self.discount_minor

    @property
    def taxes(self) -> tax.Totals:
        """Net, tax and gross of what will be charged, as the invoice will state them (rounded per ticket)."""
        return tax.totals((line.tax_rate_bp, line.price_minor - line.discount_minor) for line in self.lines)

    @property
    def expired(self) -> bool:
        # Ran out, swept or not: the server decides, and a payment in flight
        # keeps its hold (the sweep leaves it to that payment).
        return not self.payment_pending and (
            self.status == "expired" or (self.status == "active" and self.seconds_left == 0))

    @property
    def can_reserve_again(self) -> bool:
        """Whether the hold page offers "Reserve again" (checkout.reserve_again): lapsed, still on sale, its
        one retry unused. After that, a fresh reserve once the re-hold cool-down is over (`can_reserve_afresh`)."""
        return self.expired and self.on_sale and not self.taken_again

    @property
    def can_reserve_afresh(self) -> bool:
        """Whether the hold page offers an ordinary reserve of the same units: the one retry used, the cool-down
        over, and no waiting room asking for a pass this page cannot have (its buyer is sent back there)."""
        return self.expired and self.on_sale and self.taken_again and not self.again_in and not self.room_guarded

    @property
    def payable(self) -> bool:
        return self.status == "active" and not self.expired and not self.payment_pending

    @property
    def seated(self) -> bool:
        return any(line.seat_number is not None for line in self.lines)

    @property
    def seats_together(self) -> bool:
        """The seats sit side by side in one row (what best available tries for)."""
        places = {(line.section, line.row_label) for line in self.lines}
        numbers = sorted(line.seat_number for line in self.lines if line.seat_number is not None)
        return len(places) == 1 and len(numbers) == len(self.lines) and numbers == list(
            range(numbers[0], numbers[0] + len(numbers)))

    @property
    def quantities(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for line in self.lines:
            counts[line.tier_id] = counts.get(line.tier_id, 0) + 1
        return counts


_LINES = """
    (SELECT json_agg(json_build_object(
                'unit_id', u.id, 'tier_id', t.id, 'tier_name', t.name, 'colour', t.colour,
                -- the price held (what will be paid), not the tier's price now
                'price_minor', coalesce(h.unit_prices[array_position(h.unit_ids, u.id)], t.price_minor),
                'currency', t.currency, 'tax_rate_bp', t.tax_rate_bp, 'section', u.section,
                'row_label', u.row_label, 'seat_number', u.seat_number,
                -- the seat's properties, named as models.SEAT_PROPERTIES names them
                'properties', array_remove(ARRAY[CASE WHEN u.wheelchair THEN 'wheelchair' END,
                                                 CASE WHEN u.companion_for IS NOT NULL THEN 'companion' END,
                                                 CASE WHEN u.restricted_view THEN 'restricted_view' END,
                                                 CASE WHEN u.aisle THEN 'aisle' END], NULL){extra}) ORDER BY u.id)
     FROM units u JOIN tiers t ON t.id = u.tier_id WHERE u.id = ANY({units}))
"""

# The owner's session version, admin flag and offers banner, read with their
# hold or order: the page's session check needs no statement of its own
# (session_user.adopt). Needs `users` joined on the owner.
_LINE_DISCOUNT = ", 'discount_minor', coalesce(h.unit_discounts[array_position(h.unit_ids, u.id)], 0)"

OWNER_COLUMNS = f"users.session_version, users.is_admin, {LIVE_OFFERS_JSON} AS offers"

_HOLD = text(f"""
SELECT h.id, h.kind, h.status, h.total_minor, h.currency, h.expires_at,
       e.id AS event_id, e.title, e.venue, e.starts_at, e.timezone,
       {ORGANISER_LOCALE},
       CASE WHEN h.status = 'active'
            THEN greatest(0, ceil(extract(epoch FROM h.expires_at - now())))::int ELSE 0 END AS seconds_left,
       round(CASE WHEN h.kind = 'offer' THEN e.offer_hours * 3600 ELSE e.hold_minutes * 60 END)::int AS total_seconds,
       EXISTS (SELECT 1 FROM payment_attempts p WHERE p.hold_id = h.id AND p.status = 'pending') AS pending,
       (SELECT p.decline_message FROM payment_attempts p WHERE p.hold_id = h.id
          AND p.status IN ('declined', 'failed') ORDER BY p.id DESC LIMIT 1) AS last_decline,
       (SELECT o.id FROM orders o WHERE o.hold_id = h.id) AS order_id,
       CASE WHEN h.status IN ('expired', 'released') OR h.expires_at <= now()
            THEN greatest(0, ceil(extract(epoch FROM
                 CASE WHEN h.status = 'released' THEN h.ended_at ELSE h.expires_at END
                 + make_interval(secs => e.rehold_cooldown_seconds) - now())))::int
            ELSE 0 END AS again_in,
       h.taken_again_at IS NOT NULL AS taken_again,
       e.status = 'on_sale' AND now() < coalesce(e.sales_end_at, e.starts_at) AS on_sale,
       e.waiting_room AS room_guarded, e.billing_required,
       {_LINES.format(units="h.unit_ids", extra=_LINE_DISCOUNT)} AS lines,
       h.discount_minor, c.code, c.percent_off, c.amount_off_minor,
       EXISTS (SELECT 1 FROM codes d WHERE d.event_id = h.event_id AND d.kind = 'discount' AND d.active)
         AS codes_offered,
       e.attendee_names, {attendees.questions_json("e.id")} AS questions, h.answers,
       {OWNER_COLUMNS}
FROM holds h JOIN events e ON e.id = h.event_id JOIN users ON users.id = h.user_id
LEFT JOIN codes c ON c.id = h.code_id
WHERE h.id = :h AND h.user_id = :u
""")


@dataclass(frozen=True)
class CountdownView:
    """What the countdown poll redraws while a hold is live: its time, and no lines or prices."""

    id: int
    kind: str
    seated: bool
    seconds_left: int
    total_seconds: int
    live: bool  # still active and not run out (or a payment is in flight): else the whole panel is redrawn
    organiser_locale: str


# The poll of every open hold page (every 15 s): the hold's clock and the
# owner's session check only. An event sells seats or places, never both,
# so the first unit says which.
_COUNTDOWN = text(f"""
SELECT h.id, h.kind,
       h.status = 'active' AND (h.expires_at > now() OR EXISTS (
           SELECT 1 FROM payment_attempts p WHERE p.hold_id = h.id AND p.status = 'pending')) AS live,
       greatest(0, ceil(extract(epoch FROM h.expires_at - now())))::int AS seconds_left,
       round(CASE WHEN h.kind = 'offer' THEN e.offer_hours * 3600 ELSE e.hold_minutes * 60 END)::int AS total_seconds,
       EXISTS (SELECT 1 FROM units u WHERE u.id = h.unit_ids[1] AND u.seat_number IS NOT NULL) AS seated,
       {ORGANISER_LOCALE}, {OWNER_COLUMNS}
FROM holds h JOIN events e ON e.id = h.event_id JOIN users ON users.id = h.user_id
WHERE h.id = :h AND h.user_id = :u
""")


def countdown_view_and_owner(session, hold_id: int, user_id: int) -> tuple[CountdownView | None, Any]:
    """The hold's clock, and its owner's row (`OWNER_COLUMNS`) from the same statement."""
    r = session.execute(_COUNTDOWN, {"h": hold_id, "u": user_id}).first()
    if r is None:
        return None, None
    return CountdownView(r.id, r.kind, r.seated, r.seconds_left, max(1, r.total_seconds), r.live,
                         r.organiser_locale), r


def hold_view(session: Session, hold_id: int, user_id: int) -> HoldView | None:
    """The buyer's own hold, or None (someone else's hold cannot be probed)."""
    return hold_view_and_owner(session, hold_id, user_id)[0]


def hold_view_and_owner(session, hold_id: int, user_id: int) -> tuple[HoldView | None, Any]:
    """The hold, and its owner's row (`OWNER_COLUMNS`) from the same statement."""
    r = session.execute(_HOLD, {"h": hold_id, "u": user_id}).first()
    return (None, None) if r is None else (_hold(r), r)


def _hold(r) -> HoldView:
    return HoldView(
        id=r.id, event=_event(r), kind=r.kind, status=r.status,
        total_minor=r.total_minor, currency=r.currency, lines=[Line(**line) for line in r.lines or []],
        seconds_left=r.seconds_left, total_seconds=max(1, r.total_seconds), payment_pending=r.pending,
        last_decline=r.last_decline, order_id=r.order_id, expires_at=r.expires_at, again_in=r.again_in,
        taken_again=r.taken_again, on_sale=r.on_sale, room_guarded=r.room_guarded,
        billing_required=r.billing_required,
        code=r.code, discount_minor=r.discount_minor, codes_offered=r.codes_offered,
        code_terms=None if r.code is None else codes.terms(r.percent_off, r.amount_off_minor, r.currency),
        attendee_names=r.attendee_names, questions=tuple(attendees.questions_from_rows(r.questions)),
        answers=r.answers,
    )


@dataclass(frozen=True)
class TicketView:
    id: int
    code: str
    status: str
    price_minor: int
    line: Line
    attendee_name: str | None = None
    answers: dict = field(default_factory=dict)  # per-ticket answers, by question id
    checked_in: bool = False
    # Passed on: someone else holds it now (its code is theirs); or the offer still open or accepted.
    passed_on: bool = False
    transfer: dict | None = None  # {"id", "status", "to_email"}: the latest offer not withdrawn

    @property
    def qr(self) -> Markup:
        return qr_svg(self.code)


@dataclass(frozen=True)
class OrderView:
    id: int
    event: EventSummary
    status: str
    total_minor: int
    currency: str
    cancelled_at: datetime | None
    tickets: list[TicketView]
    code: str | None = None  # the discount code the order used, and what it took off
    discount_minor: int = 0
    # The answers asked once per order; the event's questions (to name them) and attendee settings.
    answers: dict = field(default_factory=dict)
    questions: tuple[attendees.QuestionView, ...] = ()
    attendee_names: str = "off"
    attendee_editable: bool = False  # the holder may still change names and answers
    transfers_open: bool = False  # holders may pass tickets on now

    @property
    def asked(self) -> attendees.Asked:
        """What the order asks, of its valid tickets (the edit form's fields)."""
        return attendees.asked(self.attendee_names, list(self.questions), [
            (t.line.unit_id, t.line.tier_id, f"Ticket {n}: {t.line.tier_name}, {t.line.place_label}")
            for n, t in enumerate(self.tickets, 1) if t.status == "valid"])

    @property
    def passed_on(self) -> bool:
        """Some ticket is someone else's now: its buyer may not cancel the order, nor print that ticket."""
        return any(t.passed_on for t in self.tickets)

    @property
    def printable(self) -> bool:
        return any(t.status == "valid" and not t.passed_on for t in self.tickets)

    @property
    def answered(self) -> list[tuple[str, str]]:
        """The order's answers as (question, answer), in the organiser's order."""
        return [(q.label, q.shown(self.answers.get(str(q.id)))) for q in self.questions
                if not q.per_ticket and str(q.id) in self.answers]

    def ticket_answers(self, ticket: TicketView) -> list[tuple[str, str]]:
        return [(q.label, q.shown(ticket.answers.get(str(q.id)))) for q in self.questions
                if q.per_ticket and str(q.id) in ticket.answers]

    def typed(self) -> dict[str, list[str]]:
        """The saved names and answers as the edit form's values."""
        return attendees.typed_values({"order": self.answers, "tickets": {
            str(t.line.unit_id): {"name": t.attendee_name, "answers": t.answers} for t in self.tickets}})
    refunded_minor: int = 0  # refunds asked for or made (not failed); the single-order view only
    invoiced: bool = False  # it has an invoice (and perhaps credit notes): `documents_of` reads them
    documents: list[DocumentView] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentView:
    id: int
    kind: str
    series: str
    number: int
    gross_minor: int

    @property
    def label(self) -> str:
        return document_label(self.series, self.number)


_ORDER_SELECT = """
SELECT o.id, o.status, o.total_minor, o.currency, o.cancelled_at, o.discount_minor,
       (SELECT c.code FROM codes c WHERE c.id = o.code_id) AS code,
       e.id AS event_id, e.title, e.venue, e.starts_at, e.timezone, """ + ORGANISER_LOCALE + """,
       (SELECT json_agg(json_build_object(
                   'id', k.id, 'code', k.code, 'status', k.status, 'price_minor', k.price_minor,
                   'unit_id', u.id, 'tier_id', t.id, 'tier_name', t.name, 'colour', t.colour,
                   'tier_price', t.price_minor, 'currency', t.currency, 'section', u.section,
                   'row_label', u.row_label, 'seat_number', u.seat_number,
                   'attendee_name', k.attendee_name, 'answers', k.answers,
                   'checked_in', k.checked_in_at IS NOT NULL, 'passed_on', k.holder_id IS NOT NULL,
                   'transfer', (SELECT json_build_object('id', x.id, 'status', x.status, 'to_email', x.to_email)
                                FROM ticket_transfers x WHERE x.ticket_id = k.id AND x.status <> 'withdrawn'
                                ORDER BY x.id DESC LIMIT 1)) ORDER BY k.id)
        FROM tickets k JOIN units u ON u.id = k.unit_id JOIN tiers t ON t.id = k.tier_id
        WHERE k.order_id = o.id) AS tickets,
       o.answers, e.attendee_names, now() < coalesce(e.attendee_edit_until, e.starts_at) AS attendee_editable,
       e.transfers_enabled AND now() < coalesce(e.transfers_until, e.starts_at) AS transfers_open,
       """ + attendees.questions_json("e.id") + " AS questions"
_ORDER_FROM = " FROM orders o JOIN events e ON e.id = o.event_id "
# The single order also shows what was refunded (a kept number) and whether it has an invoice.
_ORDER_MONEY = ", o.refunded_minor, o.billing_name IS NOT NULL AS invoiced"
_ORDER = text(f"{_ORDER_SELECT}{_ORDER_MONEY}, {OWNER_COLUMNS}{_ORDER_FROM} JOIN users ON users.id = o.user_id"
              " WHERE o.id = :o AND o.user_id = :u")
_ORDERS = text(_ORDER_SELECT + _ORDER_FROM + "WHERE o.user_id = :u ORDER BY o.id DESC LIMIT :n")


def order_view(session: Session, order_id: int, user_id: int) -> OrderView | None:
    """The buyer's own order with its tickets, or None."""
    return order_view_and_owner(session, order_id, user_id)[0]


def order_view_and_owner(session, order_id: int, user_id: int) -> tuple[OrderView | None, Any]:
    """The order, and its owner's row (`OWNER_COLUMNS`) from the same statement."""
    r = session.execute(_ORDER, {"o": order_id, "u": user_id}).first()
    return (None, None) if r is None else (_order(r), r)


def order_views(session: Session, user_id: int, limit: int = 100) -> list[OrderView]:
    """The buyer's orders, newest first, with their tickets: one statement."""
    return [_order(r) for r in session.execute(_ORDERS, {"u": user_id, "n": limit}).all()]


def _order(r) -> OrderView:
    tickets = [
        TicketView(t["id"], t["code"], t["status"], t["price_minor"], Line(
            t["unit_id"], t["tier_id"], t["tier_name"], t["colour"], t["tier_price"], t["currency"],
            t["section"], t["row_label"], t["seat_number"]), t.get("attendee_name"), t.get("answers") or {},
            t.get("checked_in", False), t.get("passed_on", False), t.get("transfer"))
        for t in r.tickets or []
    ]
    money = r._mapping
    return OrderView(r.id, _event(r), r.status, r.total_minor,
                     r.currency, r.cancelled_at, tickets, r.code, r.discount_minor, r.answers or {},
                     tuple(attendees.questions_from_rows(r.questions)), r.attendee_names, r.attendee_editable,
                     r.transfers_open, money.get("refunded_minor", 0), money.get("invoiced", False))


_DOCUMENTS = text("SELECT id, kind, series, number, gross_minor FROM invoices WHERE order_id = :o ORDER BY id")


def with_documents(session, order: OrderView) -> OrderView:
    """The order with its invoice and credit notes: one more statement, for an invoiced order only."""
    if not order.invoiced:
        return order
    documents = [DocumentView(r.id, r.kind, r.series, r.number, r.gross_minor)
                 for r in session.execute(_DOCUMENTS, {"o": order.id}).all()]
    return replace(order, documents=documents)


@lru_cache(maxsize=4096)
def qr_svg(code: str, scale: int = 4) -> Markup:
    """The ticket code as an inline SVG QR code, drawn once per code and process.

    A ticket's code never changes, so the drawing is a pure function of it:
    caching it can never show anything stale (segno takes milliseconds per
    code, the largest single cost of the order page before).
    """
    return Markup(segno.make_qr(code, error="m").svg_inline(scale=scale, border=2, dark="#111"))
