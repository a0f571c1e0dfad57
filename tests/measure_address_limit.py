"""What the limit per client address costs a reserve as the event grows, on a real PostgreSQL.

    .venv/bin/python -m tests.measure_address_limit [--sizes 1000 10000 100000 1000000] [--repeat 200]

Starts a throwaway PostgreSQL and, for each size, fills one event with that
many live holds (offers: one buyer may have many), each from an address of its own (one unit id each, rows
only: the rule reads holds, not units), plus 5 from the address measured,
then times the rule itself (`SELECT tb_address_rules(...)`, the lock and the
count the reserve statement runs) `--repeat` times inside a transaction
rolled back each time, and prints the median and 95th percentile in ms with
its plan's buffers. The count walks ix_holds_event_client_addr for one
address, so it must not grow with the event.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

FILL = """
    INSERT INTO holds (event_id, user_id, kind, status, unit_ids, total_minor, currency, expires_at, client_addr)
    SELECT :e, :u, 'offer', 'active', ARRAY[g::bigint], 100, 'EUR', now() + interval '1 hour',
           CAST('10.0.0.0' AS inet) + g
    FROM generate_series(1, :n) g
"""
MINE = """
    INSERT INTO holds (event_id, user_id, kind, status, unit_ids, total_minor, currency, expires_at, client_addr)
    SELECT :e, :u, 'offer', 'active', ARRAY[g::bigint], 100, 'EUR', now() + interval '1 hour', '203.0.113.7'
    FROM generate_series(1, 5) g
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import text

    from config import TestConfig
    from tests.factories import Factory
    from webapp import create_app, embedded_pg
    from webapp.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="address-measure-", dir="/tmp"))
    server = embedded_pg.start(workdir / "data", throwaway=True)
    try:
        url = embedded_pg.create_database(embedded_pg.url_of(server), "address_measure", drop_first=True)
        # Filling a million rows takes longer than a request may.
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DB_STATEMENT_TIMEOUT_MS": 600_000},
                         config_class=TestConfig)
        with app.app_context():
            upgrade()
            factory = Factory(db.session)
            user = factory.user()
            print("holds in the event | median ms | p95 ms | buffers of the count")
            for size in args.sizes:
                event = factory.ga_event(capacity=1, title=f"Size {size}", per_address_limit=10_000)
                db.session.execute(text(FILL), {"e": event.id, "u": user.id, "n": size})
                db.session.execute(text(MINE), {"e": event.id, "u": user.id})
                db.session.commit()
                db.session.execute(text("ANALYZE holds"))
                db.session.commit()
                connection = db.engine.connect()
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    connection.execute(text("SELECT tb_address_rules(:u, :e, CAST('203.0.113.7' AS inet), 1)"),
                                       {"u": user.id + 1, "e": event.id})
                    times.append((time.perf_counter() - started) * 1000)
                    connection.rollback()
                plan = connection.execute(text(
                    "EXPLAIN (ANALYZE, BUFFERS) SELECT coalesce(sum(cardinality(h.unit_ids)), 0) FROM holds h"
                    " WHERE h.event_id = :e AND h.client_addr = CAST('203.0.113.7' AS inet)"
                    " AND h.status = 'active' AND h.expires_at > now()"), {"e": event.id}).scalars().all()
                connection.rollback()
                connection.close()
                buffers = next((line.strip() for line in plan if "Buffers" in line), "")
                times.sort()
                print(f"{size:>18,} | {statistics.median(times):9.3f} | {times[int(len(times) * 0.95)]:6.3f} |"
                      f" {buffers}")
            db.engine.dispose()
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
