"""Rush-hour load benchmark.

    .venv/bin/python -m tests.load.bench --scenario all --workers 3
    .venv/bin/python -m tests.load.bench --quick        # every ratio in under 3 minutes
    .venv/bin/python -m tests.load.bench --quick \\
        --purchases-before tests/load/results/2026-12-02-quick-before.txt
    .venv/bin/python -m tests.load.bench --scenario rate a   # some scenarios (the floor always runs)

Starts the production stack (embedded PostgreSQL unless DATABASE_URL is set,
migrations, gunicorn with --workers gthread workers, the expiry sweep),
prepares buyers and their sessions, and drives real HTTP on 127.0.0.1.
Every request loop is bounded in count and by --deadline. Prints, per
scenario, throughput, p50/p95/p99 latency, status codes, peak RSS per
worker, CPU per process group and the invariant checker's verdict; exits 1
when a correctness check fails (speed targets are reported, not enforced).

Scenarios: db (PostgreSQL's own limit for the bare grab, via pgbench),
floor (a bare Flask app, tests/load/floor_app.py, under the same gunicorn
command line and worker/thread counts: its text route and its `SELECT 1`
route at 10 and 64 in flight, and as many simultaneous requests as (a) has
buyers), rate (GA reserves alone at 10 and 64 in flight, from a fresh pool,
each by its own buyer), a (hot GA on-sale), b (sustained), c (seat-map
rush), d (c with watchers), e (the waiting room: --buyers-e arrive within
--arrive-e seconds for --places-e tickets; beside (a) run with the same
crowd, e.g. `--scenario a e --buyers-a 5000 --places-a 1000`, it is the
same crowd without the room). The floor runs whenever an app scenario does.

Every app scenario is then stated against the floor measured in the same
run, at the floor's concurrency nearest its own: request rate and server CPU
per request (app workers + PostgreSQL) as multiples of the `SELECT 1`
route's, reservations/s as a share of the db scenario's rate. The summary
lists the cost targets with the measured value and ✔/✘. The per-endpoint
CPU targets are the cost table's (`python -m tests.load.cost`). (b)'s
"5x today's purchases/s" needs today's figure: `--purchases-before`.

`--quick` runs every scenario with smaller crowds and a shorter pgbench, in
under 3 minutes on the project's 2-core machine; its ratios are comparable
with another --quick run's, not with a full run's.
"""
from __future__ import annotations

import argparse
import asyncio
import math
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

ALL = ("db", "floor", "rate", "a", "b", "c", "d", "e", "f")
APP_SCENARIOS = ("rate", "a", "b", "c", "d", "e", "f")
QUICK = dict(buyers_a=300, places_a=30, buyers_b=300, in_flight=100, buyers_c=120, watchers=300,
             rate_buyers=300, floor_requests=2000, db_seconds=3, db_units=50_000,
             buyers_e=500, places_e=100, arrive_e=5.0, cap_e=50,
             entries_f=100_000, buyers_f=300, places_f=100, watchers_f=300)


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
    if args.nginx and not args.room_pool:
        raise SystemExit("--nginx routes to two pools: add --room-pool")
    wanted = ALL if "all" in args.scenario else tuple(args.scenario)
    if any(w in APP_SCENARIOS for w in wanted) and "floor" not in wanted:
        wanted = ("floor", *wanted)  # every app figure is stated against it
    wanted = tuple(w for w in ALL if w in wanted)
    print(f"Ticketbooth rush-hour benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
          + (" (--quick)" if args.quick else ""))
    print(f"machine: {machine()}")
    print(f"app: gunicorn, {args.workers} gthread workers x {args.threads} threads, {args.instances} instance(s)"
          + (" and one more for the waiting room's URLs (nice 10)" if args.room_pool else "")
          + ("; nginx in front (deploy/nginx/ticketbooth.conf, workers enough for the crowd's connections)"
             if args.nginx else "")
          + (f", QUEUE_BUDGET_MS={args.queue_budget_ms} (the client stamps X-Request-Start)"
             if args.queue_budget_ms else "")
          + (f", WAITING_ROOM_SHOP_DELAY_MS={args.shop_delay_ms} (the room follows the shop's delay)"
             if args.shop_delay_ms else "") + ";"
          " floor: the same command line and counts; client: one asyncio process on the same machine", flush=True)
    started = time.perf_counter()
    database = start_database(os.environ.get("DATABASE_URL"))
    results: list[scenarios.Outcome] = []
    floors: list[scenarios.Outcome] = []
    try:
        env = {}
        if args.queue_budget_ms:
            env["QUEUE_BUDGET_MS"] = str(args.queue_budget_ms)
        if args.shop_delay_ms:
            env["WAITING_ROOM_SHOP_DELAY_MS"] = str(args.shop_delay_ms)
        if args.queue_budget_ms:
            from tests.load.client import Browser

            Browser.stamp_start = True  # the client plays the proxy that stamps X-Request-Start
        stack = Stack(database.url, workers=args.workers, threads=args.threads, instances=args.instances,
                      floor="floor" in wanted, room_pool=args.room_pool, env=env or None)
        migrate(database.url, stack.secret_key)
        if "db" in wanted:
            results.append(db_limit(database.url, units=args.db_units, seconds=args.db_seconds))
            print(results[-1].text, flush=True)
        stack_scenarios = [s for s in wanted if s != "db"]
        if stack_scenarios:
            with stack:
                if args.nginx:
                    from tests.load.harness import Nginx

                    pace = (args.join_rate, args.join_burst) if args.join_rate else None
                    # Every page of (e) may hold its connection to nginx between polls (--keep-alive-e).
                    stack.nginx = Nginx(stack, Path(tempfile.mkdtemp(prefix="ticketbooth-bench-nginx-")),
                                        join_pace=pace, connections=max(40_000, args.buyers_e + 20_000)).start()
                data = Data(database.url, stack.secret_key)
                pid = database.postmaster_pid
                for name in stack_scenarios:
                    outcomes = await asyncio.wait_for(_scenario(name, stack, data, pid, args), args.deadline)
                    for outcome in outcomes:
                        if name == "floor":
                            floors.append(outcome)
                        results.append(outcome)
                        print(outcome.text, flush=True)
                        if name != "floor" and "request_rate" in outcome.figures:
                            print("\n".join(f"  {line}" for line in _versus_floor(outcome, floors, results)),
                                  flush=True)
                        if outcome.failures:
                            print("  FAILED: " + "; ".join(outcome.failures), flush=True)
                data.dispose()
                errors = stack.server_errors()
                print(f"server log: {len(errors)} error line(s)" + "".join(f"\n  {e}" for e in errors[:5]))
        _summary(results, floors, args)
        print(f"run time {time.perf_counter() - started:.0f} s")
    finally:
        database.stop()
    return 1 if any(r.failures for r in results) else 0


async def _scenario(name: str, stack: Stack, data: Data, pid, args) -> list[scenarios.Outcome]:
    if name == "floor":
        out = []
        for in_flight in (10, 64):
            for route in ("text", "select1"):
                out.append(await scenarios.floor_rate(stack, pid, route=route, in_flight=in_flight,
                                                      requests=args.floor_requests))
        for route in ("text", "select1"):
            out.append(await scenarios.floor_burst(stack, pid, route=route, clients=args.buyers_a))
        return out
    if name == "rate":
        return [await scenarios.reserve_rate(stack, data, pid, in_flight=n, buyers=args.rate_buyers)
                for n in (10, 64)]
    if name == "a":
        return [await scenarios.hot_ga(stack, data, pid, buyers=args.buyers_a, places=args.places_a)]
    if name == "b":
        return [await scenarios.sustained(stack, data, pid, buyers=args.buyers_b, places=args.buyers_b * 2,
                                          in_flight=args.in_flight)]
    if name == "c":
        return [await scenarios.seat_rush(stack, data, pid, buyers=args.buyers_c)]
    if name == "d":
        from tests.load import watchers

        return [await watchers.seat_rush_with_watchers(stack, data, pid, buyers=args.buyers_c,
                                                       watchers=args.watchers)]
    if name == "e":
        from tests.load import waiting_room

        return [await waiting_room.waiting_room_rush(stack, data, pid, buyers=args.buyers_e, places=args.places_e,
                                                     arrive_within=args.arrive_e, rate=args.rate_e, cap=args.cap_e,
                                                     give_up_after=args.give_up_e,
                                                     patience=args.patience_e, crowds=args.crowds_e,
                                                     keep_alive=args.keep_alive_e)]
    if name == "f":
        from tests.load import waiting_room

        return [await waiting_room.waiting_room_million(stack, data, pid, entries=args.entries_f,
                                                        buyers=args.buyers_f, places=args.places_f,
                                                        watchers=args.watchers_f, rate=args.rate_e, cap=args.cap_e)]
    raise ValueError(name)


def _floor(floors: list[scenarios.Outcome], route: str, in_flight: float) -> scenarios.Outcome | None:
    """The floor run of this route at the concurrency nearest (in ratio) to a scenario's."""
    runs = [f for f in floors if f"{route} route" in f.title]
    if not runs:
        return None
    return min(runs, key=lambda f: abs(math.log(f.figures["in_flight"] / max(1, in_flight))))


def _db_rate(results: list[scenarios.Outcome]) -> float | None:
    rates = [v for r in results for k, v in r.figures.items() if k.startswith("tps_")]
    return max(rates) if rates else None


def _versus_floor(outcome: scenarios.Outcome, floors, results) -> list[str]:
    f = outcome.figures
    lines = []
    select1, text = _floor(floors, "select1", f["in_flight"]), _floor(floors, "text", f["in_flight"])
    if select1:
        s1 = select1.figures
        line = (f"vs the floor's SELECT 1 at {s1['in_flight']} in flight ({s1['request_rate']:.0f} req/s,"
                f" {s1['cpu_ms_per_request']:.2f} ms CPU/request): request rate {f['request_rate']:.0f}/s ="
                f" {f['request_rate'] / s1['request_rate']:.2f}x, server CPU {f['cpu_ms_per_request']:.2f} ms/request"
                f" = {f['cpu_ms_per_request'] / s1['cpu_ms_per_request']:.1f}x")
        if text:
            line += (f" (text route: {f['request_rate'] / text.figures['request_rate']:.2f}x rate,"
                     f" {f['cpu_ms_per_request'] / text.figures['cpu_ms_per_request']:.1f}x CPU)")
        lines.append(line)
    if "reserve_p99_ms" in f:
        for route in ("select1", "text"):
            burst = next((x for x in floors if f"{route} route" in x.title and "at once" in x.title), None)
            if burst:
                floor_p99 = burst.figures["p99_ms"]
                lines.append(f"reserve p99 {f['reserve_p99_ms']:.0f} ms = {f['reserve_p99_ms'] / floor_p99:.1f}x"
                             f" the floor's {route} p99 ({floor_p99:.0f} ms) for"
                             f" {burst.figures['in_flight']} requests at once")
    db = _db_rate(results)
    if f.get("reservations"):
        rate = f["reservations"] / f["wall"]
        share = f" = {rate / db * 100:.1f}% of the db scenario's {db:.0f}/s" if db else " (no db scenario in this run)"
        lines.append(f"reservations: {rate:.0f}/s over its wall time{share}")
    return lines


def _find(results, prefix: str) -> list[scenarios.Outcome]:
    return [r for r in results if r.title.startswith(prefix)]


def _summary(results: list[scenarios.Outcome], floors: list[scenarios.Outcome], args) -> None:
    print("== summary: the cost targets, measured in this run" + (" (--quick: smaller crowds)" if args.quick else ""))
    marks: list[tuple[str, str, bool | None]] = []  # (target, measured, met)
    db = _db_rate(results)

    def check(target: str, value: float | None, limit: float, *, at_least: bool, shown: str) -> None:
        if value is None or math.isnan(value):
            marks.append((target, "not measured in this run", None))
        else:
            marks.append((target, shown, value >= limit if at_least else value <= limit))

    for n in (10, 64):
        target = f"reserves at {n} in flight >= 40% of the floor's SELECT 1 rate"
        rate = next((r for r in _find(results, "reserve throughput") if r.figures["in_flight"] == n), None)
        s1 = next((f for f in floors if "select1 route" in f.title and f.figures["in_flight"] == n), None)
        if rate and s1:
            r, f1 = rate.figures, s1.figures
            share = r["request_rate"] / f1["request_rate"]
            check(target, share * 100, 40, at_least=True,
                  shown=f"{share * 100:.1f}% ({r['request_rate']:.0f}/s vs {f1['request_rate']:.0f}/s);"
                        f" CPU per reserve {r['cpu_ms_per_request'] / f1['cpu_ms_per_request']:.1f}x SELECT 1's")
        else:
            check(target, None, 0, at_least=True, shown="")
    five_xx = sum(int(r.figures.get("five_xx", 0)) for r in results)
    busy = sum(int(r.figures.get("busy", 0)) for r in results)
    marks.append(("zero 5xx at any concurrency (a 503 with Retry-After under QUEUE_BUDGET_MS is busy)",
                  f"{five_xx} 5xx" + (f", {busy} busy" if busy else ""), five_xx == 0))

    a = _find(results, "(a)")
    burst = next((f for f in floors if "select1 route" in f.title and "at once" in f.title), None)
    if a and burst:
        p99, floor_p99 = a[0].figures["reserve_p99_ms"], burst.figures["p99_ms"]
        check(f"(a) reserve p99 <= 3x bare Flask's (SELECT 1) p99, {burst.figures['in_flight']} at once",
              p99 / floor_p99, 3, at_least=False,
              shown=f"{p99 / floor_p99:.1f}x ({p99:.0f} ms vs {floor_p99:.0f} ms)")
        f = a[0].figures
        marks.append((f"(a) exactly {f['places']} sold, 0 5xx", f"{f['sold']} sold, {f['five_xx']} 5xx",
                      f["sold"] == f["places"] and f["five_xx"] == 0))
    else:
        check("(a) reserve p99 <= 3x bare Flask's p99", None, 0, at_least=False, shown="")

    b = _find(results, "(b)")
    target = "(b) reservations/s >= 25% of PostgreSQL's own grab rate"
    if b and db:
        f = b[0].figures
        check(target, f["reservations_per_s"] / db * 100, 25, at_least=True,
              shown=f"{f['reservations_per_s'] / db * 100:.1f}% ({f['reservations_per_s']:.0f}/s vs {db:.0f}/s)")
    else:
        check(target, None, 0, at_least=True, shown="")
    target = "(b) complete purchases/s >= 5x today's"
    if b and args.purchases_before:
        f = b[0].figures
        check(target, f["purchases_per_s"] / args.purchases_before, 5, at_least=True,
              shown=f"{f['purchases_per_s']:.1f}/s = {f['purchases_per_s'] / args.purchases_before:.1f}x"
                    f" the {args.purchases_before:g}/s given")
    elif b:
        marks.append((target, f"{b[0].figures['purchases_per_s']:.1f}/s (give --purchases-before N to compare)", None))
    else:
        check(target, None, 0, at_least=True, shown="")

    d = _find(results, "(d)")
    f = d[0].figures if d else {}
    check("(d) a sold seat seen on every open map within 2 poll periods (median)",
          f.get("sighting_p50_periods"), 2, at_least=False, shown=f"{f.get('sighting_p50_periods', 0):.2f} periods")
    check("(d) ... and in under 3 poll periods (p95)", f.get("sighting_p95_periods"), 3 - 1e-9, at_least=False,
          shown=f"{f.get('sighting_p95_periods', 0):.2f} periods")
    for letter in ("e", "f"):
        found = _find(results, f"({letter})")
        if not found:
            continue
        f = found[0].figures
        # With nginx in front, as it served them: the client's figure also holds its own event loop's lag.
        served = f.get("reserve_served_p99_ms")
        reserve = served if served is not None else f["reserve_p99_ms"]
        check(f"({letter}) an admitted buyer's reserve p99 < 500 ms", reserve, 500 - 1e-9,
              at_least=False, shown=f"{reserve:.0f} ms" + (f" as nginx served them; the client saw"
                                                          f" {f['reserve_p99_ms']:.0f} ms" if served is not None
                                                          else "")
                                    + f" (join p99 {f['join_p99_ms']:.0f} ms, now.json p99 {f['poll_p99_ms']:.0f} ms)")
        marks.append((f"({letter}) exactly {f['places']} sold, every arrival with a place, admitted in number"
                      f" order, 0 5xx (a 503 with Retry-After is busy, not failed)",
                      f"{f['sold']} sold, {f['in_room']:,} in the waiting room, {f['out_of_order']} out of order,"
                      f" {f['five_xx']} 5xx, {f['busy']} busy",
                      f["sold"] == f["places"] and not f["out_of_order"] and f["five_xx"] == 0))
        if "floor_polled_cpu_ms" in f:
            ratio = f["poll_alone_cpu_ms"] / f["floor_polled_cpu_ms"]
            marks.append((f"({letter}) a now.json poll with the line full costs at most the floor's text route",
                          f"{f['poll_alone_cpu_ms']:.3f} ms CPU per poll = {ratio:.2f}x the text route polled the"
                          f" same way ({f['floor_polled_cpu_ms']:.3f} ms)", ratio <= 1))
    rss = max((r.figures.get("peak_rss_mb", 0) for r in results), default=0)
    check("peak RSS per worker < 150 MB", rss or None, 150 - 1e-9, at_least=False, shown=f"{rss:.0f} MB")
    width = max(len(t) for t, _, _ in marks)
    for target, measured, met in marks:
        print(f"  {'✔' if met else '✘' if met is False else '·'} {target:<{width}}  {measured}")
    print("  · per-endpoint CPU targets (reserve <= 2x, seat-status 304 and waiting-list poll <= 1.5x, pages <= 3x,"
          " pay <= 4x, map <= 8x SELECT 1; waiting room join and poll <= 1.5x): see python -m tests.load.cost")
    for r in results:
        print(f"  {'ok    ' if r.ok else 'FAILED'} {r.title}" + (f": {'; '.join(r.failures)}" if r.failures else ""))


def _purchases_before(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    import re

    try:
        found = re.search(r"complete purchases/s >= 5x today's\s+([\d.]+)/s", Path(value).read_text())
    except OSError as error:
        raise argparse.ArgumentTypeError(f"not a number, and no file to read: {error}") from None
    if not found:
        raise argparse.ArgumentTypeError(f"{value} has no (b) purchases/s line in its summary")
    return float(found.group(1))


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
    parser.add_argument("--buyers-e", type=int, default=5000)
    parser.add_argument("--places-e", type=int, default=1000)
    parser.add_argument("--arrive-e", type=float, default=10.0, help="(e)'s arrivals spread over this many seconds")
    parser.add_argument("--rate-e", type=int, default=6000, help="(e)'s admissions per minute")
    parser.add_argument("--cap-e", type=int, default=300, help="(e)'s cap on buyers shopping at once")
    parser.add_argument("--room-pool", action="store_true",
                        help="(e), (f): the waiting room's URLs on a gunicorn instance of their own, at nice 10")
    parser.add_argument("--queue-budget-ms", type=int, default=0, metavar="MS",
                        help="QUEUE_BUDGET_MS for the app, the client stamping X-Request-Start as a proxy would")
    parser.add_argument("--shop-delay-ms", type=int, default=0, metavar="MS",
                        help="WAITING_ROOM_SHOP_DELAY_MS for the app: (e) and (f)'s rooms let fewer in while the"
                             " shop's requests queue longer than this (needs --nginx, or --queue-budget-ms, to"
                             " stamp X-Request-Start)")
    parser.add_argument("--give-up-e", type=float, default=240.0,
                        help="(e)'s buyers stop waiting this many seconds after the sale start")
    parser.add_argument("--patience-e", type=float, default=30.0,
                        help="how long (e)'s pages wait for an answer of the waiting room's (a browser's htmx and"
                             " fetch wait as long as it takes; nginx in front 300 s)")
    parser.add_argument("--nginx", action="store_true",
                        help="nginx in front (deploy/nginx/ticketbooth.conf: now.json from its cache, requests"
                             " routed by who asks); needs --room-pool; (e) only")
    parser.add_argument("--join-rate", type=int, default=0, metavar="N",
                        help="with --nginx: the site's pace for the crowd's joins, N a second (default: the site"
                             " file's); set it to what the room's processes serve")
    parser.add_argument("--join-burst", type=int, default=30000, metavar="N",
                        help="with --join-rate: how many joins may wait in nginx")
    parser.add_argument("--crowds-e", type=int, default=1, metavar="N",
                        help="(e)'s buyers driven by N client processes (one cannot keep 50,000 pages on time)")
    parser.add_argument("--keep-alive-e", action="store_true",
                        help="with --nginx: (e)'s waiting pages keep their connection between polls")
    parser.add_argument("--entries-f", type=int, default=1_000_000, help="(f)'s synthetic places in line")
    parser.add_argument("--buyers-f", type=int, default=2000, help="(f)'s real buyers, ahead of the synthetic places")
    parser.add_argument("--places-f", type=int, default=1000)
    parser.add_argument("--watchers-f", type=int, default=2000, help="(f)'s pages polling now.json every 5 s")
    parser.add_argument("--db-seconds", type=int, default=10)
    parser.add_argument("--db-units", type=int, default=200_000)
    parser.add_argument("--rate-buyers", type=int, default=1000, help="reserves per in-flight level (rate)")
    parser.add_argument("--floor-requests", type=int, default=5000, help="requests per floor rate run")
    parser.add_argument("--purchases-before", type=_purchases_before, metavar="N|FILE",
                        help="(b)'s complete purchases/s on the code before: a number, or a saved run's output")
    parser.add_argument("--deadline", type=float, default=600, help="seconds any one scenario may take")
    parser.add_argument("--quick", action="store_true",
                        help="smaller crowds and a shorter pgbench: every ratio in under 3 minutes")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)
    import resource

    # One socket per buyer: 1,000+ at once, 50,000 for the biggest crowds
    # (a root run may raise the hard limit too; gunicorn inherits it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (262144, max(hard, 262144)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536) if hard > 0 else 65536, hard))
    # The client is one process driving every buyer: on uvloop's event loop its own share of the machine's
    # CPU (a crowd of 50,000 polling) is about half asyncio's, and so is the lag it adds to what it measures.
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
