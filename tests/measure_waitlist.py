"""What the waiting list costs a release, measured on a real PostgreSQL.

    .venv/bin/python -m tests.measure_waitlist [--cancels 60] [--waiting 80]

Starts a throwaway PostgreSQL and reports:
- the time of one cancel (refund included) with nobody waiting, and with a
  line to offer to (the offer is made in the same transaction);
- N cancels at once on a sold-out event with M people waiting: wall time,
  failures, offers made, and the invariant checker's verdict.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cancels", type=int, default=60)
    parser.add_argument("--waiting", type=int, default=80)
    parser.add_argument("--sequential", type=int, default=20)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import text

    from config import TestConfig
    from tests.factories import Factory
    from tests.support import buy, race
    from webapp import create_app, embedded_pg
    from webapp.extensions import db
    from webapp.services.invariants import check_event
    from webapp.services.money import checkout
    from webapp.services.money.gateway import SimulatedGateway
    from webapp.services.waiting import waitlist

    workdir = Path(tempfile.mkdtemp(prefix="waitlist-measure-", dir="/tmp"))
    server = embedded_pg.start(workdir / "data", throwaway=True)
    try:
        url = embedded_pg.create_database(embedded_pg.url_of(server), "waitlist_measure", drop_first=True)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DB_POOL_SIZE": args.cancels + 5}, config_class=TestConfig)
        with app.app_context():
            upgrade()
            session, factory = db.session, Factory(db.session)
            gateway = SimulatedGateway(db.engine, slow_seconds=0.2)

            def sold_out(n: int, waiting: int, title: str):
                event = factory.ga_event(capacity=n, per_order_limit=4, title=title)
                orders = [buy(session, event, u, gateway=gateway).id for u in factory.users(n)]
                for person in factory.users(waiting):
                    waitlist.join(session, user_id=person.id, event_id=event.id, tier_id=None, quantity=1)
                    session.commit()
                return event.id, orders

            def timed_cancels(order_ids):
                times = []
                for order_id in order_ids:
                    started = time.perf_counter()
                    checkout.cancel_order(session, gateway, order_id=order_id, user_id=None, reason="measure")
                    session.commit()
                    times.append((time.perf_counter() - started) * 1000)
                return statistics.median(times)

            _, alone = sold_out(args.sequential, 0, "Nobody waiting")
            _, lined = sold_out(args.sequential, args.sequential, "Line waiting")
            print(f"one cancel, median of {args.sequential}: {timed_cancels(alone):.1f} ms with nobody waiting, "
                  f"{timed_cancels(lined):.1f} ms making an offer to the line")

            event_id, orders = sold_out(args.cancels, args.waiting, "Rush of cancels")
            session.remove()

            def cancel(i):
                try:
                    checkout.cancel_order(db.session, gateway, order_id=orders[i], user_id=None, reason="race")
                    db.session.commit()
                    return None
                except Exception as error:
                    db.session.rollback()
                    return type(error).__name__

            started = time.perf_counter()
            outcomes = race(app, len(orders), cancel)
            elapsed = time.perf_counter() - started
            offers = session.execute(text(
                "SELECT count(*), count(DISTINCT waitlist_entry_id), coalesce(sum(cardinality(unit_ids)), 0)"
                " FROM holds WHERE event_id = :e AND kind = 'offer' AND status = 'active'"), {"e": event_id}).one()
            failures = [o for o in outcomes if o]
            print(f"{args.cancels} cancels at once, {args.waiting} waiting: {elapsed:.2f} s wall"
                  f" ({elapsed / args.cancels * 1000:.0f} ms per release through the line lock);"
                  f" {len(failures)} failed {sorted(set(failures))};"
                  f" {offers[0]} offers to {offers[1]} people covering {offers[2]} units;"
                  f" invariants: {check_event(session, event_id) or 'ok'}")
            session.remove()
            db.engine.dispose()
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
