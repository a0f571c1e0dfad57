"""Factories that keep tests short: users, events, tiers, seat layouts."""
from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Tier, Unit, User
from webapp.services import accounts, events

PASSWORD = "correct-horse-battery"
# Hashing once keeps a test that makes 200 buyers fast; login still verifies it.
_PASSWORD_HASH = accounts.hash_password(PASSWORD)
_seq = itertools.count(1)


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
            starts_at=datetime.now(timezone.utc) + timedelta(days=starts_in_days), **extra,
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

    def seat_ids(self, event: Event) -> list[int]:
        return list(self.session.scalars(
            select(Unit.id).where(Unit.event_id == event.id).order_by(Unit.id)
        ).all())

    def tier(self, event: Event) -> Tier:
        return self.session.scalars(select(Tier).where(Tier.event_id == event.id).order_by(Tier.id)).first()


def sign_in(client, user_id: int) -> None:
    """A signed-in session cookie for `user_id`, as login makes it, without the password round."""
    from flask import session

    from webapp import session_user
    from webapp.extensions import db

    with client.application.test_request_context():
        session_user.remember(db.session.get(User, user_id))
        state = dict(session)
    with client.session_transaction() as s:
        s.update(state, _user_id=str(user_id), _fresh=True)


def login(client, email: str, password: str = PASSWORD):
    """Log the test client in through the real form (CSRF token included)."""
    import re

    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    # Login rotates the CSRF token: the one from the login form is dead now.
    page = client.get("/").get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)


def csrf_token(client, path: str = "/") -> str:
    import re

    page = client.get(path).get_data(as_text=True)
    return re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
