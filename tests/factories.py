"""Factories that keep tests short: users, events, tiers, seat layouts, holds, orders, waiting-list entries.

Holds, orders and entries are made through the real services and committed,
so they are exactly what a buyer would leave behind.
"""
from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.models import Event, EventStatus, Hold, Order, Tier, Unit, User, WaitlistEntry
from webapp.services.money import checkout
from webapp.services.money.gateway import Card, PaymentGateway, SimulatedGateway
from webapp.services.people import accounts
from webapp.services.selling import events, inventory
from webapp.services.waiting import waitlist

PASSWORD = "correct-horse-battery"
GOOD = Card("4242424242424242", 12, 2099, "123")
DECLINED = Card("4000000000000002", 12, 2099, "123")
NO_FUNDS = Card("4000000000009995", 12, 2099, "123")
SLOW_CARD = Card("4000000000000077", 12, 2099, "123")
# Hashing once keeps a test that makes 200 buyers fast; login still verifies it.
_PASSWORD_HASH = accounts.hash_password(PASSWORD)
_seq = itertools.count(1)


def reserve_seats(session: Session, *, user_id: int, event_id: int, unit_ids: Iterable[int],
                  admission_id: int | None = None, access: Iterable[str] = ()) -> Hold:
    """Hold exactly these seats, all or nothing, within the test's transaction (the test commits)."""
    return inventory.reserve_in_session(session, user_id=user_id, event_id=event_id, seat_ids=unit_ids,
                                        admission_id=admission_id, access=access)


def reserve_general(session: Session, *, user_id: int, event_id: int, quantities: dict[int, int],
                    admission_id: int | None = None, access: Iterable[str] = ()) -> Hold:
    """Hold N general-admission places per tier, all or nothing, within the test's transaction."""
    return inventory.reserve_in_session(session, user_id=user_id, event_id=event_id, quantities=quantities,
                                        admission_id=admission_id, access=access)


def reserve_best(session: Session, *, user_id: int, event_id: int, tier_id: int, count: int,
                 admission_id: int | None = None, access: Iterable[str] = ()) -> Hold:
    """Hold the best `count` free seats of a tier, within the test's transaction."""
    return inventory.reserve_in_session(session, user_id=user_id, event_id=event_id, best=(tier_id, count),
                                        admission_id=admission_id, access=access)


class Factory:
    def __init__(self, session: Session):
        self.session = session

    def user(self, email: str | None = None, *, name: str = "Test Buyer", is_admin: bool = False,
             commit: bool = True) -> User:
        user = User(email=(email or f"buyer{next(_seq)}@example.com").lower(), name=name,
                    password_hash=_PASSWORD_HASH, is_admin=is_admin)
        self.session.add(user)
        self.session.flush()
        if commit:
            self.session.commit()
        return user

    def users(self, n: int) -> list[User]:
        made = [self.user(commit=False) for _ in range(n)]
        self.session.commit()
        return made

    def event(self, *, title: str = "Test Event", status: EventStatus = EventStatus.ON_SALE,
              hold_minutes: float = 10, per_order_limit: int = 8, starts_in_days: int = 10, **extra) -> Event:
        return events.create_event(
            self.session, title=title, venue="Test Hall", status=status, hold_minutes=hold_minutes,
            per_order_limit=per_order_limit,
            starts_at=extra.pop("starts_at", None) or datetime.now(timezone.utc) + timedelta(days=starts_in_days),
            **extra,
        )

    def ga_event(self, capacity: int = 100, *, tiers: int = 1, price_minor: int = 5000, **kw) -> Event:
        event = self.event(title=kw.pop("title", "GA Festival"), **kw)
        for i in range(tiers):
            events.add_general_tier(self.session, event, name=f"Tier {i + 1}", price_minor=price_minor + i * 1000,
                                    capacity=capacity, sort_order=i)
        self.session.commit()
        return event

    def seated_event(self, rows: int = 4, seats_per_row: int = 10, *, price_minor: int = 4500, **kw) -> Event:
        event = self.event(title=kw.pop("title", "Seated Concert"), **kw)
        tier = events.add_seated_tier(self.session, event, name="Stalls", price_minor=price_minor)
        events.generate_section(self.session, event,
                                events.SectionSpec("Stalls", rows, seats_per_row, 0, 0, ((0, rows - 1, tier),)))
        self.session.commit()
        return event

    def stadium(self, *, sections: int, rows: int = 25, seats_per_row: int = 40, **kw) -> Event:
        """A stadium of `sections` blocks of rows x seats, in lines of ten; front half "Lower", back "Upper"."""
        event = self.event(title=kw.pop("title", "Stadium"), **kw)
        lower = events.add_seated_tier(self.session, event, name="Lower", price_minor=9000, colour="#b45309")
        upper = events.add_seated_tier(self.session, event, name="Upper", price_minor=4500, colour="#2563eb",
                                       sort_order=1)
        specs = [events.SectionSpec(f"Block {i + 1}", rows, seats_per_row, (i % 10) * (seats_per_row + 3),
                                    (i // 10) * (rows + 3),
                                    ((0, rows // 2 - 1, lower), (rows // 2, rows - 1, upper)))
                 for i in range(sections)]
        events.generate_sections(self.session, event, specs)
        self.session.commit()
        return event

    def seat_ids(self, event: Event) -> list[int]:
        return list(self.session.scalars(
            select(Unit.id).where(Unit.event_id == event.id).order_by(Unit.id)
        ).all())

    def tier(self, event: Event) -> Tier:
        return self.session.scalars(select(Tier).where(Tier.event_id == event.id).order_by(Tier.id)).first()

    def hold(self, event: Event, user: User | None = None, *, seats: list[int] | None = None,
             quantities: dict[int, int] | None = None) -> Hold:
        """A live hold through `inventory`: these seats, these GA quantities, or one place of the first tier."""
        user = user or self.user()
        if seats is not None:
            hold = reserve_seats(self.session, user_id=user.id, event_id=event.id, unit_ids=seats)
        else:
            quantities = quantities if quantities is not None else {event.tiers[0].id: 1}
            hold = reserve_general(self.session, user_id=user.id, event_id=event.id, quantities=quantities)
        self.session.commit()
        return hold

    def order(self, event: Event, user: User | None = None, *, seats: list[int] | None = None,
              quantities: dict[int, int] | None = None, gateway: PaymentGateway | None = None,
              billing_name: str | None = None, billing_address: str | None = None) -> Order:
        """A confirmed order: reserved and paid with the good card through the real services (invoiced if billed)."""
        user = user or self.user()
        hold = self.hold(event, user, seats=seats, quantities=quantities)
        result = checkout.pay(self.session, gateway or make_gateway(), hold_id=hold.id, user_id=user.id,
                              idempotency_key=secrets.token_urlsafe(24), card=GOOD, billing_name=billing_name,
                              billing_address=billing_address)
        order = self.session.get(Order, result.order_id)
        assert order is not None
        return order

    def waitlist_entry(self, event: Event, user: User | None = None, *, quantity: int = 1,
                       tier_id: int | None = None) -> WaitlistEntry:
        """Someone in line, joined through the real service."""
        user = user or self.user()
        entry = waitlist.join(self.session, user_id=user.id, event_id=event.id, tier_id=tier_id, quantity=quantity)
        self.session.commit()
        return entry


def make_gateway() -> SimulatedGateway:
    """The simulated gateway on the app's engine, with a short "slow card"."""
    return SimulatedGateway(db.engine, slow_seconds=0.2)
