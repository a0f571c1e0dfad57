"""The waiting list under real concurrency: threads on their own connections.

Releases for one event take the line lock, so the last of several concurrent
releases sees every unit the others freed; these tests check the outcome
(every freed unit offered once, in line order) and the invariant checker.
"""
from __future__ import annotations

import itertools
from collections import Counter

import pytest
from sqlalchemy import select, text

from tests.support import buy, race
from webapp.extensions import db
from webapp.models import Hold, HoldKind, HoldStatus, Unit, UnitStatus, WaitlistEntry, WaitlistStatus
from webapp.services.invariants import check_event
from webapp.services.money import checkout
from webapp.services.money.gateway import SimulatedGateway
from webapp.services.selling import inventory
from webapp.services.waiting import waitlist

pytestmark = pytest.mark.slow


def sold_out_with_line(session, factory, capacity: int, quantities: list[int]):
    gateway = SimulatedGateway(db.engine, slow_seconds=0.2)
    event = factory.ga_event(capacity=capacity, per_order_limit=4)
    orders = [buy(session, event, u, gateway=gateway).id for u in factory.users(capacity)]
    people = factory.users(len(quantities))
    entries = []
    for person, n in zip(people, quantities):
        entries.append(waitlist.join(session, user_id=person.id, event_id=event.id, tier_id=None, quantity=n).id)
        session.commit()
    return event, orders, entries


def cancel_all_at_once(app, order_ids: list[int]) -> list[str]:
    def work(i):
        gateway = SimulatedGateway(db.engine, slow_seconds=0.2)
        try:
            checkout.cancel_order(db.session, gateway, order_id=order_ids[i], user_id=None, reason="race")
            db.session.commit()
            return "ok"
        except Exception as error:  # reported, so a failure names its cause
            db.session.rollback()
            return f"{type(error).__name__}: {error}"

    return race(app, len(order_ids), work)


def live_offers(session, event_id):
    session.expire_all()
    return session.scalars(
        select(Hold).where(Hold.event_id == event_id, Hold.kind == HoldKind.OFFER, Hold.status == HoldStatus.ACTIVE)
    ).all()


def entry_statuses(session, entry_ids):
    session.expire_all()
    rows = dict(session.execute(
        select(WaitlistEntry.id, WaitlistEntry.status).where(WaitlistEntry.id.in_(entry_ids))
    ).all())
    return [rows[i] for i in entry_ids]


def test_sixty_concurrent_cancels_offer_every_unit_once_in_waitlist_order(app, session, factory):
    event, orders, entries = sold_out_with_line(session, factory, 60, [1] * 80)
    freed = set(session.scalars(
        select(Unit.id).where(Unit.event_id == event.id, Unit.status == UnitStatus.SOLD)
    ).all())

    assert cancel_all_at_once(app, orders) == ["ok"] * 60

    offers = live_offers(session, event.id)
    offered_units = [u for h in offers for u in h.unit_ids]
    assert len(offered_units) == 60 and set(offered_units) == freed  # each freed unit, exactly once
    assert Counter(h.waitlist_entry_id for h in offers) == Counter({e: 1 for e in entries[:60]})
    # In line order: the first 60 are offered, the last 20 still wait.
    assert entry_statuses(session, entries) == [WaitlistStatus.OFFERED] * 60 + [WaitlistStatus.WAITING] * 20
    assert session.scalar(text("SELECT count(*) FROM units WHERE event_id = :e AND status = 'available'"),
                          {"e": event.id}) == 0
    assert session.scalar(text("SELECT count(*) FROM outbox_messages WHERE template = 'waitlist_offer'")) == 60
    assert check_event(session, event.id) == []


def test_concurrent_cancels_serve_multi_ticket_entries_strictly_in_order(app, session, factory):
    quantities = list(itertools.islice(itertools.cycle([2, 1, 3, 1, 4, 2]), 40))
    event, orders, entries = sold_out_with_line(session, factory, 54, quantities)

    assert cancel_all_at_once(app, orders) == ["ok"] * 54

    # Strict rule: the longest prefix of the line that fits in 54 places is
    # served in full; the first entry that does not fit blocks those behind.
    served, total = 0, 0
    while total + quantities[served] <= 54:
        total += quantities[served]
        served += 1
    statuses = entry_statuses(session, entries)
    assert statuses == [WaitlistStatus.OFFERED] * served + [WaitlistStatus.WAITING] * (40 - served)
    offers = {h.waitlist_entry_id: h.quantity for h in live_offers(session, event.id)}
    assert offers == dict(zip(entries[:served], quantities[:served]))
    set_aside = session.scalar(text("SELECT count(*) FROM units WHERE event_id = :e AND status = 'available'"),
                               {"e": event.id})
    assert set_aside == 54 - total and set_aside < quantities[served]
    assert check_event(session, event.id) == []


def test_several_sweepers_expiring_offers_pass_each_on_once(app, session, factory):
    event, orders, entries = sold_out_with_line(session, factory, 30, [1] * 50)
    assert cancel_all_at_once(app, orders) == ["ok"] * 30
    session.execute(text("UPDATE holds SET expires_at = now() - interval '1 second'"
                         " WHERE event_id = :e AND kind = 'offer' AND status = 'active'"), {"e": event.id})
    session.commit()
    event_id = event.id

    def sweeper(i):
        expired = 0
        while True:
            n = inventory.expire_holds(db.session, event_id=event_id, limit=5)
            db.session.commit()
            expired += n
            if n == 0:
                return expired

    # The 30 lapsed offers pass to entries 31..50; 10 units are left for the public.
    assert sum(race(app, 4, sweeper)) == 30
    statuses = entry_statuses(session, entries)
    assert statuses == [WaitlistStatus.LAPSED] * 30 + [WaitlistStatus.OFFERED] * 20
    offers = live_offers(session, event.id)
    assert sorted(h.waitlist_entry_id for h in offers) == entries[30:]
    assert len({u for h in offers for u in h.unit_ids}) == 20
    assert session.scalar(text("SELECT count(*) FROM units WHERE event_id = :e AND status = 'available'"),
                          {"e": event.id}) == 10
    assert check_event(session, event.id) == []


def test_admin_change_locking_the_event_row_and_a_release_do_not_deadlock(app, session, factory):
    """An admin change locks the event row, then makes offers (raising capacity);
    a cancel arriving in between must wait for it, not hold the line lock
    while its offer's foreign-key check waits on the admin (a deadlock)."""
    import threading
    import time

    event, orders, entries = sold_out_with_line(session, factory, 2, [1, 1, 1])
    event_id, tier_id = event.id, event.tiers[0].id
    admin = db.engine.connect()
    from sqlalchemy.orm import Session as OrmSession

    admin_tx = OrmSession(admin)
    admin_tx.execute(text("SELECT id FROM events WHERE id = :e FOR UPDATE"), {"e": event_id})

    outcome = {}

    def cancel_now():
        with app.app_context():
            try:
                checkout.cancel_order(db.session, SimulatedGateway(db.engine), order_id=orders[0], user_id=None,
                                      reason="race")
                db.session.commit()
                outcome["cancel"] = "ok"
            except Exception as error:
                db.session.rollback()
                outcome["cancel"] = f"{type(error).__name__}: {error}"
            finally:
                db.session.remove()

    worker = threading.Thread(target=cancel_now)
    worker.start()
    # Wait (without a fixed sleep) until the cancel is blocked behind the admin.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        waiting = session.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )).scalar_one()
        session.rollback()
        if waiting:
            break
        time.sleep(0.05)
    assert waiting, "the cancel never waited for the admin's lock"

    # The admin adds a place and offers it, then commits.
    admin_tx.execute(text("INSERT INTO units (event_id, tier_id, status) VALUES (:e, :t, 'available')"),
                     {"e": event_id, "t": tier_id})
    admin_tx.execute(text("UPDATE tiers SET capacity = capacity + 1 WHERE id = :t"), {"t": tier_id})
    waitlist.offer_released_units(admin_tx, event_id)
    admin_tx.commit()
    admin_tx.close()
    admin.close()
    worker.join(30)

    assert outcome == {"cancel": "ok"}
    assert entry_statuses(session, entries) == [WaitlistStatus.OFFERED, WaitlistStatus.OFFERED,
                                                WaitlistStatus.WAITING]
    assert check_event(session, event_id) == []
