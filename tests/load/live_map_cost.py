"""What live seat maps cost the server: N open maps polling the seat status.

Each open map sends a conditional GET (`If-None-Match` with its last ETag)
every POLL seconds, as the page's htmx poller does. Two phases:

- quiet: nothing is sold, every poll is answered 304 from one indexed sum;
- busy: another buyer reserves or releases a seat every 0.5 s, so nearly
  every poll finds a new version and gets the (small) list of taken seats.

It starts its own throwaway PostgreSQL, the demo data (a 1,000-seat hall) and
gunicorn (2 gthread workers x 4 threads) on 127.0.0.1, and reports requests/s,
answers, latency and the CPU used by gunicorn and by PostgreSQL, per 100
open maps. Bounded: `--maps` at most 500, `--seconds` at most 120 per phase.

    .venv/bin/python tests/load/live_map_cost.py --maps 100 --seconds 20
"""
from __future__ import annotations

import argparse
import http.client
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from webapp.launcher import gunicorn_command, wait_until_healthy  # noqa: E402  (after the path above)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: dict[int, int] = {}
        self.latencies: list[float] = []
        self.bytes_200: list[int] = []

    def add(self, status: int, seconds: float, size: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(seconds)
            if status == 200:
                self.bytes_200.append(size)


def open_map(port: int, path: str, poll: float, stop: threading.Event, tally: Tally, cookie: str) -> None:
    """One open seat map: a keep-alive connection polling with its ETag."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    etag = None
    time.sleep(random.uniform(0, poll))  # maps were opened at different moments
    while not stop.is_set():
        started = time.perf_counter()
        headers = {"HX-Request": "true", "Cookie": cookie}
        if etag:
            headers["If-None-Match"] = etag
        for attempt in (1, 2):
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                break
            except (OSError, http.client.HTTPException):
                # The server closed an idle keep-alive connection: reconnect
                # and send again, as a browser does.
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        else:
            tally.add(0, time.perf_counter() - started, 0)
            stop.wait(poll)
            continue
        tally.add(response.status, time.perf_counter() - started, len(body))
        etag = response.getheader("ETag") or etag
        stop.wait(max(0.0, poll - (time.perf_counter() - started)))
    conn.close()


def log_in(port: int, email: str, password: str) -> str:
    """The session cookie of a logged-in buyer (the maps then show "held by you")."""
    import re
    from urllib.parse import urlencode

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/login")
    page = conn.getresponse()
    html = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    conn.request("POST", "/login", body=urlencode({"email": email, "password": password, "csrf_token": token}),
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 303, answer.status
    conn.close()
    return answer.getheader("Set-Cookie").split(";")[0]


def cpu_snapshot(roots: list[psutil.Process]) -> dict[int, float]:
    """CPU seconds so far of each process under these roots (pooled connections
    may be opened at any time, so the tree is listed anew each time)."""
    seen: dict[int, float] = {}
    for root in roots:
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in tree:
            try:
                t = p.cpu_times()
                seen[p.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return seen


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def server_processes(web: subprocess.Popen, datadir: Path) -> tuple[list[psutil.Process], list[psutil.Process]]:
    pg = [p for p in psutil.process_iter(["name", "cmdline"])
          if p.info["name"] == "postgres" and any(str(datadir) in part for part in p.info["cmdline"] or [])]
    return [psutil.Process(web.pid)], pg[:1]


def churn(database_url: str, event_id: int, stop: threading.Event, every: float) -> int:
    """Another buyer taking and giving back a seat, every `every` seconds."""
    from sqlalchemy import select

    from tests.support import reserve_seats
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Unit, User
    from webapp.services.selling import inventory

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "load", "LOG_LEVEL": "WARNING"})
    changes = 0
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "buyer@example.com"))
        seats = db.session.scalars(select(Unit.id).where(Unit.event_id == event_id).order_by(Unit.id)).all()
        hold = None
        while not stop.wait(every):
            if hold is None:
                hold = reserve_seats(db.session, user_id=user.id, event_id=event_id,
                                     unit_ids=random.sample(seats, 2))
            else:
                inventory.release_hold_by_id(db.session, hold_id=hold.id, user_id=user.id)
                hold = None
            db.session.commit()
            changes += 1
        db.session.remove()
    return changes


def phase(name: str, port: int, path: str, maps: int, poll: float, seconds: float, procs, cookie: str,
          churn_args=None) -> dict:
    web_procs, pg_procs = procs
    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=open_map, args=(port, path, poll, stop, tally, cookie), daemon=True)
               for _ in range(maps)]
    for t in threads:
        t.start()
    time.sleep(poll + 1)  # every map has made its first (full) request
    with tally.lock:
        tally.statuses.clear(), tally.latencies.clear(), tally.bytes_200.clear()
    changes_box: list[int] = []
    churner = None
    if churn_args:
        churner = threading.Thread(target=lambda: changes_box.append(churn(*churn_args, stop, 0.5)), daemon=True)
        churner.start()
    web0, pg0, t0 = cpu_snapshot(web_procs), cpu_snapshot(pg_procs), time.perf_counter()
    time.sleep(seconds)
    web1, pg1, t1 = cpu_snapshot(web_procs), cpu_snapshot(pg_procs), time.perf_counter()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    if churner:
        churner.join(timeout=15)
    wall = t1 - t0
    total = sum(tally.statuses.values())
    lat = sorted(tally.latencies)
    per100 = 100 / maps
    return dict(
        name=name, maps=maps, wall=wall, requests=total, rps=total / wall,
        statuses=dict(sorted(tally.statuses.items())),
        p50_ms=statistics.median(lat) * 1000 if lat else float("nan"),
        p95_ms=lat[int(len(lat) * 0.95) - 1] * 1000 if lat else float("nan"),
        web_cpu=cpu_used(web0, web1) / wall, pg_cpu=cpu_used(pg0, pg1) / wall,
        web_cpu_per100=cpu_used(web0, web1) / wall * per100, pg_cpu_per100=cpu_used(pg0, pg1) / wall * per100,
        bytes_200=statistics.mean(tally.bytes_200) if tally.bytes_200 else 0,
        changes=changes_box[0] if changes_box else 0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=100)
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between polls (the page uses 2)")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    maps, seconds = min(args.maps, 500), min(args.seconds, 120)

    from config import normalise_database_url
    from webapp import embedded_pg

    work = Path(tempfile.mkdtemp(prefix="live-map-cost-", dir="/tmp"))
    server = embedded_pg.start(work / "pg", throwaway=True)
    database_url = embedded_pg.create_database(embedded_pg.url_of(server), "tickets")
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY="live-map-cost", FLASK_APP="wsgi.py",
               RATELIMIT_ENABLED="0", LOG_LEVEL="WARNING")
    os.environ.update(DATABASE_URL=database_url, SECRET_KEY="live-map-cost")
    subprocess.run([sys.executable, "-c", "from webapp.launcher import migrate_and_seed; migrate_and_seed(True)"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    web = subprocess.Popen(gunicorn_command("127.0.0.1", port, workers=2, threads=4), cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=30):
            print("gunicorn did not start", file=sys.stderr)
            return 1
        from sqlalchemy import create_engine, text

        engine = create_engine(normalise_database_url(database_url))
        with engine.connect() as conn:
            event_id, seats = conn.execute(text(
                "SELECT e.id, count(u.id) FROM events e JOIN units u ON u.event_id = e.id"
                " WHERE u.seat_number IS NOT NULL GROUP BY e.id ORDER BY count(u.id) DESC LIMIT 1")).one()
        engine.dispose()
        path = f"/events/{event_id}/seat-status"
        procs = server_processes(web, work / "pg")
        from webapp.services.demo import DEMO_BUYER

        cookie = log_in(port, DEMO_BUYER[0], DEMO_BUYER[1])
        print(f"{maps} open maps of a {seats}-seat hall, polling every {args.poll:g} s, {seconds:g} s per phase;"
              f" as a logged-in buyer; gunicorn 2 gthread workers x 4 threads; {psutil.cpu_count()} cores\n")
        results = [
            phase("quiet (nothing changes)", port, path, maps, args.poll, seconds, procs, cookie),
            phase("busy (a seat taken or freed every 0.5 s)", port, path, maps, args.poll, seconds, procs, cookie,
                  churn_args=(database_url, event_id)),
        ]
        print(f"load average during the run: {os.getloadavg()[0]:.2f} (other work on the machine counts too)")
        for r in results:
            print(f"{r['name']}:")
            print(f"  {r['requests']} requests in {r['wall']:.1f} s = {r['rps']:.1f} req/s; answers {r['statuses']}"
                  + (f"; {r['changes']} inventory changes" if r["changes"] else ""))
            print(f"  latency p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms;"
                  f" mean 200 body {r['bytes_200']:.0f} bytes")
            print(f"  CPU: gunicorn {r['web_cpu'] * 100:.1f}% of a core, PostgreSQL {r['pg_cpu'] * 100:.1f}%"
                  f" -> per 100 open maps: gunicorn {r['web_cpu_per100'] * 100:.1f}%,"
                  f" PostgreSQL {r['pg_cpu_per100'] * 100:.1f}% of a core")
        return 0
    finally:
        web.terminate()
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
