"""Read-only queries for the admin pages: events, the live dashboard, sales over time, the layout map.

Every count is computed from the rows themselves (units, orders, tickets,
waiting-list entries), never kept as a second source of truth.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, Tier
from webapp.services.selling import catalog, inventory
from webapp.services.selling.catalog import SeatView, SectionView


def all_events(session: Session) -> list[Event]:
    """Every event, soonest first, with its tiers."""
    return list(session.scalars(select(Event).order_by(Event.starts_at).options(selectinload(Event.tiers))).all())


def event_with_tiers(session: Session, event_id: int) -> Event | None:
    return session.scalars(select(Event).where(Event.id == event_id).options(selectinload(Event.tiers))).first()


@dataclass(frozen=True)
class TierLine:
    tier: Tier
    counts: inventory.TierCounts


@dataclass(frozen=True)
class Dashboard:
    tiers: list[TierLine]
    capacity: int
    available: int
    held: int
    sold: int
    blocked: int
    waiting_people: int
    waiting_tickets: int
    offers_live: int
    orders: int
    revenue_minor: int
    refunded_minor: int
    checked_in: int
    currency: str
    code_orders: int = 0  # confirmed orders paid with a discount code
    code_discount_minor: int = 0  # what the codes took off them
    money: MoneyByState | None = None


@dataclass(frozen=True)
class MoneyByState:
    """The event's money by where it stands: authorised (reserved on cards, not yet taken), captured (taken),
    refunded (given back; `refund_pending` asked for, not yet confirmed) and outstanding (paid and kept)."""

    authorised_minor: int
    captured_minor: int
    refunded_minor: int
    refund_pending_minor: int
    outstanding_minor: int


def dashboard(session: Session, event: Event) -> Dashboard:
    counts = inventory.tier_counts(session, event.id)
    lines = [TierLine(t, counts[t.id]) for t in event.tiers if t.id in counts]
    figures = session.execute(
        text(
            "SELECT"
            " (SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'waiting') AS waiting_people,"
            " (SELECT coalesce(sum(quantity), 0) FROM waitlist_entries WHERE event_id = :e AND status = 'waiting')"
            "   AS waiting_tickets,"
            " (SELECT count(*) FROM waitlist_entries WHERE event_id = :e AND status = 'offered') AS offers_live,"
            " (SELECT count(*) FROM orders WHERE event_id = :e AND status = 'confirmed') AS orders,"
            " (SELECT coalesce(sum(total_minor), 0) FROM orders WHERE event_id = :e AND status = 'confirmed')"
            "   AS revenue,"
            " (SELECT count(*) FROM tickets WHERE event_id = :e AND status = 'valid' AND checked_in_at IS NOT NULL)"
            "   AS checked_in,"
            # A use of a discount code is a confirmed order carrying it (webapp/services/selling/codes.py).
            " (SELECT count(*) FROM orders WHERE event_id = :e AND status = 'confirmed' AND code_id IS NOT NULL)"
            "   AS code_orders,"
            " (SELECT coalesce(sum(discount_minor), 0) FROM orders"
            "   WHERE event_id = :e AND status = 'confirmed' AND code_id IS NOT NULL) AS code_discount,"
            # Money by state, from our own rows whatever the gateway: an order's payment is captured once
            # the gateway confirmed it (captured_at), authorised until then while the order stands (a
            # cancelled or refunded order's authorisation was voided); our refund rows.
            " (SELECT coalesce(sum(o.total_minor), 0) FROM orders o WHERE o.event_id = :e) AS paid,"
            " m.authorised, m.captured, r.refunded_ok, r.refund_pending"
            " FROM (SELECT coalesce(sum(p.amount_minor) FILTER (WHERE p.captured_at IS NULL"
            "     AND o.status = 'confirmed'), 0) AS authorised,"
            "   coalesce(sum(p.amount_minor) FILTER (WHERE p.captured_at IS NOT NULL), 0) AS captured"
            "   FROM orders o JOIN payment_attempts p ON p.id = o.payment_attempt_id WHERE o.event_id = :e) m,"
            "  (SELECT coalesce(sum(amount_minor) FILTER (WHERE state = 'succeeded'), 0) AS refunded_ok,"
            "   coalesce(sum(amount_minor) FILTER (WHERE state = 'requested'), 0) AS refund_pending"
            "   FROM refunds WHERE event_id = :e) r"
        ),
        {"e": event.id},
    ).one()
    return Dashboard(
        tiers=lines,
        capacity=sum(c.counts.capacity for c in lines),
        available=sum(c.counts.available for c in lines),
        held=sum(c.counts.held for c in lines),
        sold=sum(c.counts.sold for c in lines),
        blocked=sum(c.counts.blocked for c in lines),
        waiting_people=figures.waiting_people,
        waiting_tickets=figures.waiting_tickets,
        offers_live=figures.offers_live,
        orders=figures.orders,
        revenue_minor=figures.revenue,
        refunded_minor=figures.refunded_ok,
        checked_in=figures.checked_in,
        code_orders=figures.code_orders,
        code_discount_minor=figures.code_discount,
        money=MoneyByState(figures.authorised, figures.captured, figures.refunded_ok, figures.refund_pending,
                           figures.paid - figures.refunded_ok - figures.refund_pending),
        currency=event.tiers[0].currency if event.tiers else "EUR",
    )


MIN_BUCKETS = 12


@dataclass(frozen=True)
class SalesPoint:
    bucket: datetime
    tickets: int
    revenue_minor: int


def sales_series(session: Session, event_id: int) -> tuple[str, list[SalesPoint]]:
    """Valid tickets sold per hour, day or week (by span), gaps filled with zeros.

    At least MIN_BUCKETS periods are shown, so a first sale has some context.
    """
    span = session.execute(
        text("SELECT min(created_at) AS first, now() AS now FROM orders WHERE event_id = :e"), {"e": event_id}
    ).one()
    if span.first is None:
        return "hour", []
    hours = (span.now - span.first).total_seconds() / 3600
    unit = "hour" if hours <= 48 else "day" if hours <= 24 * 120 else "week"
    rows = session.execute(
        text(
            "WITH s AS (SELECT date_trunc(:u, o.created_at) AS b, count(t.id) AS n,"
            " coalesce(sum(t.price_minor), 0) AS r"
            "  FROM orders o JOIN tickets t ON t.order_id = o.id AND t.status = 'valid'"
            "  WHERE o.event_id = :e GROUP BY 1)"
            " SELECT g.b, coalesce(s.n, 0) AS n, coalesce(s.r, 0) AS r"
            " FROM generate_series(least(date_trunc(:u, CAST(:first AS timestamptz)),"
            "   date_trunc(:u, now()) - :min_buckets * CAST('1 ' || :u AS interval)), date_trunc(:u, now()),"
            "   CAST('1 ' || :u AS interval)) AS g(b)"
            " LEFT JOIN s ON s.b = g.b ORDER BY g.b"
        ),
        {"e": event_id, "u": unit, "first": span.first, "min_buckets": MIN_BUCKETS - 1},
    ).all()
    return unit, [SalesPoint(r.b, r.n, r.r) for r in rows]


def seat_layout(session: Session, event: Event, planned: list[tuple[Tier, dict]] | None = None, *,
                section: str | None = None) -> list[SectionView]:
    """The seat map as admins see it: every seat's true status (of one `section`), planned seats marked `new`."""
    seats = catalog.seat_rows(session, event.id, section)
    for tier, s in planned or []:
        seats.append(SeatView(0, tier.id, s["section"], s["row_label"], s["seat_number"], s["pos_x"], s["pos_y"],
                              "new"))
    return catalog.group_sections(seats)
