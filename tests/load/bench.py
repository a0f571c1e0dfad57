"""Rush-hour load benchmark.

    .venv/bin/python -m tests.load.bench --scenario all --workers 3

Starts the production stack (embedded PostgreSQL unless DATABASE_URL is set,
migrations, gunicorn with --workers gthread workers, the expiry sweep),
prepares buyers and their sessions, and drives real HTTP on 127.0.0.1.
Every request loop is bounded in count and by --deadline. Prints, per
scenario, throughput, p50/p95/p99 latency, status codes, peak RSS per
worker, CPU per process group and the invariant checker's verdict; exits 1
when a correctness check fails (speed targets are reported, not enforced).

Scenarios: db (PostgreSQL's own limit for the bare grab, via pgbench),
a (hot GA on-sale), b (sustained), c (seat-map rush), d (c with watchers).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from tests.load import scenarios
from tests.load.harness import Data, Stack, migrate, start_database

ALL = ("db", "a", "b", "c", "d")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (f"{psutil.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()},"
            f" Python {platform.python_version()}")


def db_limit(url: str, *, units: int = 200_000, seconds: int = 10, clients=(16, 64)) -> scenarios.Outcome:
    """PostgreSQL's own rate for the bare GA grab, with pgbench, no app in between."""
    import pgserver
    from sqlalchemy import create_engine, text

    from webapp import embedded_pg  # noqa: F401  (pgserver ships pgbench)

    pgbench = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    data = Data(url, "db-limit")
    event_id, tier_id = data.ga_event(units, title="pgbench GA")
    user_id = data.create_buyers(1, f"pgbench-{int(time.time())}")[0]
    data.dispose()
    # The statement pair the issue names: insert a hold, then take two places
    # with SKIP LOCKED. An offer-kind hold, so one user may hold many.
    script = (
        f"BEGIN;\n"
        f"INSERT INTO holds (event_id, user_id, kind, status, unit_ids, total_minor, currency, expires_at)"
        f" VALUES ({event_id}, {user_id}, 'offer', 'active', '{{0}}', 9000, 'EUR', now() + interval '10 minutes')"
        f" RETURNING id AS hold \\gset\n"
        f"UPDATE units SET status = 'held', hold_id = :hold WHERE id IN (SELECT id FROM units"
        f" WHERE tier_id = {tier_id} AND status = 'available' ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED);\n"
        f"COMMIT;\n"
    )
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    lines = ["== db: PostgreSQL alone, bare GA grab (insert hold + UPDATE ... SKIP LOCKED LIMIT 2), pgbench"]
    figures = {}
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    engine = create_engine(url)
    with engine.connect() as conn:
        plan = conn.execute(text(
            f"EXPLAIN SELECT id FROM units WHERE tier_id = {tier_id} AND status = 'available'"
            f" ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED")).scalars().all()
    lines.append("  plan: " + " / ".join(p.strip() for p in plan))
    for n in clients:
        out = subprocess.run(
            [str(pgbench), "-n", "-f", f.name, "-c", str(n), "-j", "2", "-T", str(seconds), "-d", dsn],
            capture_output=True, text=True, timeout=seconds + 60,
        )
        tps = next((line for line in out.stdout.splitlines() if line.startswith("tps")), out.stderr[-300:])
        lat = next((line for line in out.stdout.splitlines() if line.startswith("latency average")), "")
        lines.append(f"  {n:>3} clients: {tps.strip()}; {lat.strip()}")
        try:
            figures[f"tps_{n}"] = float(tps.split("=")[1].split()[0])
        except (IndexError, ValueError):
            pass
    with engine.begin() as conn:  # give the places back for anyone reading the data later
        conn.execute(text(f"UPDATE units SET status = 'available', hold_id = NULL WHERE tier_id = {tier_id}"))
        conn.execute(text(f"DELETE FROM holds WHERE event_id = {event_id}"))
    engine.dispose()
    os.unlink(f.name)
    return scenarios.Outcome(lines[0][3:], "\n".join(lines), [], figures)


async def run(args: argparse.Namespace) -> int:
    wanted = ALL if "all" in args.scenario else tuple(args.scenario)
    print(f"Ticketbooth rush-hour benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {machine()}")
    print(f"app: gunicorn, {args.workers} gthread workers x {args.threads} threads, {args.instances} instance(s);"
          f" client: one asyncio process on the same machine", flush=True)
    database = start_database(os.environ.get("DATABASE_URL"))
    results: list[scenarios.Outcome] = []
    try:
        stack = Stack(database.url, workers=args.workers, threads=args.threads, instances=args.instances)
        migrate(database.url, stack.secret_key)
        if "db" in wanted:
            results.append(db_limit(database.url, seconds=args.db_seconds))
            print(results[-1].text, flush=True)
        app_scenarios = [s for s in wanted if s != "db"]
        if app_scenarios:
            with stack:
                data = Data(database.url, stack.secret_key)
                pid = database.postmaster_pid
                for name in app_scenarios:
                    outcome = await asyncio.wait_for(_scenario(name, stack, data, pid, args), args.deadline)
                    results.append(outcome)
                    print(outcome.text, flush=True)
                    if outcome.failures:
                        print("  FAILED: " + "; ".join(outcome.failures), flush=True)
                data.dispose()
                errors = stack.server_errors()
                print(f"server log: {len(errors)} error line(s)" + "".join(f"\n  {e}" for e in errors[:5]))
        _summary(results)
    finally:
        database.stop()
    return 1 if any(r.failures for r in results) else 0


async def _scenario(name: str, stack: Stack, data: Data, pid, args) -> scenarios.Outcome:
    if name == "a":
        return await scenarios.hot_ga(stack, data, pid, buyers=args.buyers_a, places=args.places_a)
    if name == "b":
        return await scenarios.sustained(stack, data, pid, buyers=args.buyers_b, places=args.buyers_b * 2,
                                         in_flight=args.in_flight)
    if name == "c":
        return await scenarios.seat_rush(stack, data, pid, buyers=args.buyers_c)
    if name == "d":
        from tests.load import watchers

        return await watchers.seat_rush_with_watchers(stack, data, pid, buyers=args.buyers_c,
                                                      watchers=args.watchers)
    raise ValueError(name)


def _summary(results: list[scenarios.Outcome]) -> None:
    figures = {}
    for r in results:
        figures.update(r.figures)
    print("== summary")
    db = max((v for k, v in figures.items() if k.startswith("tps_")), default=None)
    rate = figures.get("reservations_per_s")
    if rate is not None:
        print(f"  sustained reservations/s: {rate:.0f} (target 1000)")
        if db:
            print(f"  ratio to PostgreSQL's own limit ({db:.0f}/s): {rate / db * 100:.0f}% (target >= 25%)")
        print(f"  ratio to the Node peer's 100-160/s: {rate / 160:.1f}x - {rate / 100:.1f}x (target > 5x)")
    if "reserve_p99_ms" in figures:
        print(f"  hot on-sale reserve p99: {figures['reserve_p99_ms']:.0f} ms (target < 500 ms)")
    rss = max((r.figures.get("peak_rss_mb", 0) for r in results), default=0)
    if rss:
        print(f"  peak RSS per worker: {rss:.0f} MB (target < 150 MB)")
    for r in results:
        print(f"  {'ok    ' if r.ok else 'FAILED'} {r.title}" + (f": {'; '.join(r.failures)}" if r.failures else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", nargs="+", default=["all"], choices=("all", *ALL))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--instances", type=int, default=1, help="gunicorn masters (\"hosts\"); buyers split evenly")
    parser.add_argument("--buyers-a", type=int, default=1000)
    parser.add_argument("--places-a", type=int, default=100)
    parser.add_argument("--buyers-b", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--buyers-c", type=int, default=500)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--db-seconds", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=600, help="seconds any one scenario may take")
    args = parser.parse_args(argv)
    import resource

    # One socket per buyer: 1,000+ at once.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536) if hard > 0 else 65536, hard))
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
