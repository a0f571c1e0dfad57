"""What each step of the seat list costs as the hall grows: 1x, 10x, 100x and 1,000x the demo hall.

    .venv/bin/python -m tests.load.seat_list_scale                 # 1,000 to 1,000,000 seats
    .venv/bin/python -m tests.load.seat_list_scale --scales 1 10   # fewer

It starts an embedded PostgreSQL (or uses DATABASE_URL), migrates it, and
lays out halls of sections of 1,000 seats (20 rows of 50), one section per
1x; a tenth of every row is taken (blocked). The rows are written with one
INSERT ... SELECT generate_series each, as measurement data, not through the
layout generator, which would take minutes at a million seats. Then, in
process through Flask's test client (htmx requests, as the list's links send
them), it times each step after one request has cached the hall's geometry:
the median wall time of `--requests` requests, and the shared buffers the
step's count statement touched (EXPLAIN (ANALYZE, BUFFERS)). It prints a
table and asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import text

from tests.load.harness import migrate, start_database

SEATS_PER_SECTION = 1_000  # 20 rows of 50
DEMO_HALL = 1_008


def _lay_out(session, sections: int) -> int:
    """An on-sale seated event of `sections` x 1,000 seats, a tenth of them taken; its id."""
    from datetime import datetime, timedelta, timezone

    from webapp.models import EventStatus
    from webapp.services.selling import events

    event = events.create_event(session, title=f"Scale {sections}", venue="Scale Hall",
                                starts_at=datetime.now(timezone.utc) + timedelta(days=30),
                                status=EventStatus.ON_SALE)
    tier = events.add_seated_tier(session, event, name="Stalls", price_minor=5000)
    session.flush()
    session.execute(text("SET LOCAL statement_timeout = 0"))  # a million rows take longer than a request may
    session.execute(text(
        "INSERT INTO units (event_id, tier_id, status, section, row_label, seat_number, pos_x, pos_y, best_rank)"
        " SELECT :e, :t, CASE WHEN n % 10 = 0 THEN 'blocked' ELSE 'available' END,"
        "        'S' || lpad((s)::text, 4, '0'), chr(65 + r), n, (s % 10) * 60 + n, (s / 10) * 25 + r, 0"
        " FROM generate_series(0, :sections - 1) s, generate_series(0, 19) r, generate_series(1, 50) n"),
        {"e": event.id, "t": tier.id, "sections": sections})
    session.execute(text("UPDATE tiers SET capacity = :c WHERE id = :t"),
                    {"c": sections * SEATS_PER_SECTION, "t": tier.id})
    session.commit()
    return event.id


def _time(client, url: str, requests: int) -> float:
    client.get(url, headers={"HX-Request": "true"})  # the geometry, once per layout version
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(url, headers={"HX-Request": "true"})
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples)


def _buffers(session, statement, params: dict) -> int:
    plan = session.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + str(statement)), params).scalars().all()
    top = next((line for line in plan if "Buffers:" in line), "")
    return sum(int(part.split("=")[1]) for part in top.split("Buffers:")[-1].split() if "=" in part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    import os

    database = start_database(os.environ.get("DATABASE_URL"))
    try:
        migrate(database.url, "scale")
        from webapp import create_app
        from webapp.extensions import db
        from webapp.services.selling import seat_list

        app = create_app({"SQLALCHEMY_DATABASE_URI": database.url, "SECRET_KEY": "scale",
                          "RATELIMIT_ENABLED": False,
                          # The first view of a million-seat hall reads its geometry once: longer than a request may.
                          "DB_STATEMENT_TIMEOUT_MS": 300_000})
        rows = []
        with app.app_context():
            for scale in args.scales:
                event_id = _lay_out(db.session, scale)
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE units"))
                base = f"/events/{event_id}/seat-list"
                client = app.test_client()
                tier = db.session.execute(text("SELECT id FROM tiers WHERE event_id = :e"),
                                          {"e": event_id}).scalar_one()
                section = "S0000"
                sections = [f"S{n:04d}" for n in range(scale)]
                timed = {
                    "sections": _time(client, base, args.requests),
                    "rows": _time(client, f"{base}?section={section}", args.requests),
                    "seats": _time(client, f"{base}?section={section}&row=B", args.requests),
                }
                buffers = {
                    "sections": _buffers(db.session, seat_list._FREE_PER_SECTION,
                                         {"e": event_id, "tiers": [tier], "cap": seat_list.FREE_SEATS_SHOWN,
                                          "sections": sections}),
                    "rows": _buffers(db.session, seat_list._FREE_PER_ROW, {"e": event_id, "tiers": [tier],
                                                                         "s": section}),
                    "seats": _buffers(db.session, seat_list._ROW, {"e": event_id, "s": section, "r": "B",
                                                                   "u": None}),
                }
                db.session.rollback()
                rows.append((scale, scale * SEATS_PER_SECTION, scale, timed, buffers))
                print(f"{scale}x done", flush=True)
        print("\n| hall | seats | sections | sections step ms (buffers) | a section's rows ms (buffers)"
              " | a row's seats ms (buffers) |")
        print("|---|---:|---:|---:|---:|---:|")
        for scale, seats, n_sections, timed, buffers in rows:
            print(f"| {scale}x | {seats:,} | {n_sections:,} | {timed['sections']:.2f} ({buffers['sections']})"
                  f" | {timed['rows']:.2f} ({buffers['rows']}) | {timed['seats']:.2f} ({buffers['seats']}) |")
    finally:
        database.stop()


if __name__ == "__main__":
    main()
