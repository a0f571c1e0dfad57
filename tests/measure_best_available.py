"""What best available costs as the venue grows, during a rush, and how many orphan seats it leaves.

    .venv/bin/python -m tests.measure_best_available [--sizes 1000 10000 60000] [--requests 40]
                                                    [--rush-threads 8] [--purchases 1000]

Starts a throwaway PostgreSQL, migrates it, and lays out venues set-based
(one INSERT ... generate_series per venue: blocks 30 seats wide with a gap of
two positions between them, six blocks across, as many rows as the size
needs), ranked by tb_rank_seats from the default focal point. Then:

1. per size, `--requests` sequential best-available holds of 2 seats (each
   a fresh buyer, one statement `SELECT tb_hold_best(...)`), the median
   time beside the median of `SELECT 1` on the same connection, and the
   same with the function as migration 0014 left it (its frozen text,
   loaded under another name), on the same venue freshly laid out;
2. a rush on the largest venue: `--rush-threads` threads asking at once,
   PostgreSQL's CPU per request (psutil, summed over its processes) against
   the CPU of as many `SELECT 1`;
3. `--purchases` random best-available holds (1 to 6 seats, a random
   section one time in four) on the largest venue, with the orphan-seat rule
   on and off, and the free seats left alone afterwards: a free seat whose
   neighbours in its row are both not free, at least one of them taken.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil

from tests.load.harness import process_cpu

BLOCK, BLOCKS, GAP = 30, 6, 2

VENUE = """
WITH seats AS (
    SELECT g, (g % (:blocks * :block)) AS across, (g / (:blocks * :block)) AS row_index
    FROM generate_series(0, :n - 1) g
)
INSERT INTO units (event_id, tier_id, status, section, row_label, seat_number, pos_x, pos_y)
SELECT :e, :t, 'available', 'Block ' || (across / :block + 1), 'R' || (row_index + 1), across % :block + 1,
       (across / :block) * (:block + :gap) + across % :block, row_index
FROM seats
"""

# A free ordinary seat whose row neighbours are both not free, at least one of them taken: one pass
# over the venue's rows, neighbours by window (a gap in pos_x is the end of a block's row).
ORPHANS = """
WITH seats AS (
    SELECT pos_y, pos_x, status = 'available' AND NOT wheelchair AND companion_for IS NULL AS free,
           status IN ('held', 'sold') AS taken
    FROM units WHERE event_id = :e AND seat_number IS NOT NULL
), around AS (
    SELECT free,
           coalesce(lag(pos_x) OVER w = pos_x - 1 AND lag(free) OVER w, false) AS left_free,
           coalesce(lag(pos_x) OVER w = pos_x - 1 AND lag(taken) OVER w, false) AS left_taken,
           coalesce(lead(pos_x) OVER w = pos_x + 1 AND lead(free) OVER w, false) AS right_free,
           coalesce(lead(pos_x) OVER w = pos_x + 1 AND lead(taken) OVER w, false) AS right_taken
    FROM seats WINDOW w AS (PARTITION BY pos_y ORDER BY pos_x)
)
SELECT count(*) FROM around WHERE free AND NOT left_free AND NOT right_free AND (left_taken OR right_taken)
"""


def _pg_cpu(server) -> float:
    """CPU seconds of this server's PostgreSQL processes (not other servers' on the machine)."""
    postmaster = psutil.Process(int((Path(server.pgdata) / "postmaster.pid").read_text().split()[0]))
    return sum(process_cpu(p.pid) for p in [postmaster, *postmaster.children(recursive=True)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 60000])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--rush-threads", type=int, default=8)
    parser.add_argument("--rush-requests", type=int, default=400)
    parser.add_argument("--purchases", type=int, default=1000)
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import text

    from config import TestConfig
    from migrations.functions import frozen
    from tests.factories import Factory
    from webapp import create_app, embedded_pg
    from webapp.extensions import db
    from webapp.services.selling import events

    workdir = Path(tempfile.mkdtemp(prefix="best-measure-", dir="/tmp"))
    server = embedded_pg.start(workdir / "data", throwaway=True)
    try:
        url = embedded_pg.create_database(embedded_pg.url_of(server), "best_measure", drop_first=True)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "DB_POOL_SIZE": args.rush_threads + 5},
                         config_class=TestConfig)
        with app.app_context():
            upgrade()
            session, factory = db.session, Factory(db.session)
            # The function as 0014 left it, beside today's, to compare on the same venues.
            session.execute(text(frozen("tb_hold_best", "0014").replace(
                "FUNCTION tb_hold_best(", "FUNCTION tb_hold_best_0014(")))
            users = iter(session.execute(text(
                "INSERT INTO users (email, name, password_hash) SELECT 'b' || g || '@bench.example', 'B', 'x'"
                " FROM generate_series(1, :n) g RETURNING id"),
                {"n": 2 * len(args.sizes) * args.requests + 3 * args.purchases
                 + args.rush_requests + 100}).scalars().all())
            session.commit()

            def venue(size: int, *, avoid_orphans: bool = True) -> tuple[int, int]:
                event = factory.event(title=f"Venue {size}", hold_minutes=60, per_order_limit=8,
                                      avoid_orphans=avoid_orphans)
                tier = events.add_seated_tier(session, event, name="Seats", price_minor=5000)
                session.flush()
                session.execute(text(VENUE), {"e": event.id, "t": tier.id, "n": size, "block": BLOCK,
                                              "blocks": BLOCKS, "gap": GAP})
                session.execute(text("SELECT tb_rank_seats(:e)"), {"e": event.id})
                tier.capacity = size
                ids = event.id, tier.id
                session.commit()
                session.execute(text("ANALYZE units"))
                # Ended, not left open: reading the ids after a commit would begin a transaction that the
                # server's idle-in-transaction timeout ends while the requests run.
                session.commit()
                return ids

            def hold(connection, function: str, event_id: int, tier_id: int, count: int,
                     section: str | None = None) -> None:
                extra = ", 0, CAST(:s AS text)" if function == "tb_hold_best" else ""
                connection.execute(text(f"SELECT {function}(:u, :e, :t, :n, NULL, NULL{extra})"),
                                   {"u": next(users), "e": event_id, "t": tier_id, "n": count, "s": section})

            def rush(function: str, event_id: int, tier_id: int) -> None:
                """Threads asking at once; PostgreSQL's CPU per request against as many SELECT 1."""
                per_thread = args.rush_requests // args.rush_threads
                barrier = threading.Barrier(args.rush_threads)
                lock = threading.Lock()
                failures: list[str] = []
                done: list[int] = []

                def buyer(seed: int) -> None:
                    rng = random.Random(seed)
                    with app.app_context(), db.engine.connect() as connection:
                        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                        barrier.wait()
                        for _ in range(per_thread):
                            with lock:
                                user = next(users)
                            try:
                                connection.execute(text(f"SELECT {function}(:u, :e, :t, :n, NULL, NULL)"),
                                                   {"u": user, "e": event_id, "t": tier_id,
                                                    "n": rng.randint(1, 4)})
                                done.append(1)
                            except Exception as error:  # noqa: BLE001 - counted and shown, the rush goes on
                                failures.append(str(error).splitlines()[0])

                cpu_before, started = _pg_cpu(server), time.perf_counter()
                threads = [threading.Thread(target=buyer, args=(i,)) for i in range(args.rush_threads)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                wall, cpu = time.perf_counter() - started, _pg_cpu(server) - cpu_before
                asked = per_thread * args.rush_threads
                with db.engine.connect() as connection:
                    floor_before = _pg_cpu(server)
                    for _ in range(asked):
                        connection.execute(text("SELECT 1"))
                    floor_cpu = _pg_cpu(server) - floor_before
                print(f"{function}: {len(done)} holds in {wall:.2f} s ({len(done) / wall:.0f}/s),"
                      f" {len(failures)} refused{' (' + failures[0] + ')' if failures else ''};"
                      f" PostgreSQL CPU per request {cpu / asked * 1000:.2f} ms, per SELECT 1"
                      f" {floor_cpu / asked * 1000:.3f} ms: {cpu / max(floor_cpu, 1e-9):.0f}× the floor")

            print("== 1. one best-available hold of 2 seats, sequential: the backend's CPU ms (median of the"
                  " requests) and × the CPU of a SELECT 1 on the same connection")
            print(f"{'seats':>7}  {'SELECT 1':>8}  {'0014':>7}  {'×':>5}  {'0018':>7}  {'×':>5}")
            for size in args.sizes:
                row = {}
                for function in ("tb_hold_best_0014", "tb_hold_best"):
                    event_id, tier_id = venue(size)
                    with db.engine.connect() as connection:
                        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
                        hold(connection, function, event_id, tier_id, 2)  # plans made, caches warm
                        before = process_cpu(backend)
                        for _ in range(500):
                            connection.execute(text("SELECT 1"))
                        row["floor"] = (process_cpu(backend) - before) / 500 * 1000
                        times = []
                        for _ in range(args.requests):
                            before = process_cpu(backend)
                            hold(connection, function, event_id, tier_id, 2)
                            times.append(process_cpu(backend) - before)
                    row[function] = statistics.median(times) * 1000
                print(f"{size:>7}  {row['floor']:>8.3f}  {row['tb_hold_best_0014']:>7.2f}"
                      f"  {row['tb_hold_best_0014'] / row['floor']:>5.0f}  {row['tb_hold_best']:>7.2f}"
                      f"  {row['tb_hold_best'] / row['floor']:>5.0f}")

            largest = max(args.sizes)
            print(f"\n== 2. a rush on {largest:,} seats: {args.rush_threads} threads,"
                  f" {args.rush_requests} holds of 1-4 seats")
            for function in ("tb_hold_best_0014", "tb_hold_best"):
                rush(function, *venue(largest))

            print(f"\n== 3. {args.purchases} random best-available holds on {largest:,} seats: orphan seats after")
            for avoid in (True, False):
                event_id, tier_id = venue(largest, avoid_orphans=avoid)
                rng = random.Random(7)
                sections = [f"Block {i + 1}" for i in range(BLOCKS)]
                cpu: dict[bool, list[float]] = {True: [], False: []}
                with db.engine.connect() as connection:
                    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                    backend = connection.execute(text("SELECT pg_backend_pid()")).scalar()
                    for _ in range(args.purchases):
                        section = rng.choice(sections) if rng.random() < 0.25 else None
                        before = process_cpu(backend)
                        hold(connection, "tb_hold_best", event_id, tier_id, rng.randint(1, 6), section)
                        cpu[section is not None].append(process_cpu(backend) - before)
                orphans = session.execute(text(ORPHANS), {"e": event_id}).scalar()
                held = session.execute(text("SELECT count(*) FROM units WHERE event_id = :e AND status = 'held'"),
                                       {"e": event_id}).scalar()
                session.commit()
                print(f"rule {'on ' if avoid else 'off'}: {held} seats held, {orphans} orphan seats; backend CPU"
                      f" per hold, median {statistics.median(cpu[False]) * 1000:.2f} ms anywhere,"
                      f" {statistics.median(cpu[True]) * 1000:.2f} ms in one section;"
                      f" slowest {max(cpu[False] + cpu[True]) * 1000:.1f} ms")
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
