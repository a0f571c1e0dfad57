"""The production stack for load runs, buyers to drive it, and what it measures.

`Stack` starts what `./run-app` starts in production shape: PostgreSQL (an
embedded one unless DATABASE_URL is given), the migrations, gunicorn with
the launcher's own command line, and the expiry sweep beside it. Nothing in
the app is switched off or stubbed for the benchmark; only the per-IP login
limit is raised, because every simulated buyer comes from 127.0.0.1.

`Stack(room_pool=True)` also starts a gunicorn instance of its own for the
waiting room's URLs (`stack.room`), as a proxy routing
`/events/<id>/waiting-room…` to its own app processes would, at a lower CPU
priority (nice 10): the crowd waiting then never queues in front of the
people already let in, nor takes the cores from them.

`Stack(floor=True)` also starts the floor: a bare Flask app
(tests/load/floor_app.py) under the very same gunicorn command line, against
the same PostgreSQL, so every figure can be stated as a multiple of the
cheapest request the stack can serve.

Used by the benchmark (`python -m tests.load.bench`), the cost table
(`python -m tests.load.cost`) and by the tests that run several app
instances against one database (tests/test_rush.py).
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy import create_engine, text

from tests.load.client import Browser, ClientError, Response
from webapp.launcher import ROOT, gunicorn_command, wait_until_healthy

CSRF_IN_PAGE = re.compile(r'"X-CSRFToken": "([^"]+)"')
HIDDEN_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key" type="hidden" value="([^"]+)"')
BENCH_PASSWORD = "rush-hour-benchmark"
# Every simulated buyer comes from loopback: a limit per address they never reach, so that with
# ADDRESS_LIMIT_ON_LOOPBACK=1 the reserve runs the whole rule (its lock and its count) and is never refused by it.
BENCH_PER_ADDRESS_LIMIT = 10_000
ROOM_POOL_NICENESS = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the database

@dataclass
class Database:
    url: str
    postmaster_pid: int | None
    _cleanup: object = None
    # The embedded server's log (pg_ctl -l); None for DATABASE_URL.
    log_path: Path | None = None

    def stop(self) -> None:
        if self._cleanup is not None:
            self._cleanup()


def start_database(external_url: str | None = None, *, keep_dir: Path | None = None) -> Database:
    """DATABASE_URL when given; otherwise an embedded PostgreSQL with production settings."""
    from config import normalise_database_url

    if external_url:
        url = normalise_database_url(external_url)
        return Database(url, _local_postmaster(url))
    from webapp import embedded_pg

    datadir = keep_dir or Path(tempfile.mkdtemp(prefix="ticketbooth-bench-pg-", dir="/tmp"))
    server = embedded_pg.start(datadir / "data")
    url = embedded_pg.create_database(embedded_pg.url_of(server), "tickets_bench", drop_first=True)

    def cleanup():
        server.cleanup()
        if keep_dir is None:
            shutil.rmtree(datadir, ignore_errors=True)

    pid_file = datadir / "data" / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    return Database(url, pid, cleanup, datadir / "data" / "log")


def _local_postmaster(url: str) -> int | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return psutil.Process(backend).ppid()
    except (psutil.Error, Exception):
        return None  # a remote server: its CPU is not ours to measure
    finally:
        engine.dispose()


def migrate(url: str, secret_key: str) -> None:
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret_key})
    with app.app_context():
        upgrade()
        db.engine.dispose()


# --------------------------------------------------------------------------- the app

@dataclass
class AppInstance:
    """One gunicorn master (one "host") with its workers."""

    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children()
        except psutil.Error:
            return []


FLOOR_APP = "tests.load.floor_app:app"


def floor_command(host: str, port: int, workers: int, threads: int) -> list[str]:
    """The launcher's gunicorn command line with only the WSGI app swapped for the floor's."""
    command = gunicorn_command(host, port, workers, threads)
    return [FLOOR_APP if part == "wsgi:app" else part for part in command]


class Stack:
    """gunicorn instance(s) + one sweep (+ the floor app), against one database."""

    def __init__(self, database_url: str, *, workers: int = 3, threads: int = 4, instances: int = 1,
                 env: dict[str, str] | None = None, log_dir: Path | None = None, sweep: bool = True,
                 floor: bool = False, room_pool: bool = False):
        self.database_url = database_url
        self.workers = workers
        self.threads = threads
        self.instances_wanted = instances
        self.with_sweep = sweep
        self.with_floor = floor
        self.floor: AppInstance | None = None
        self.with_room_pool = room_pool
        self.room: AppInstance | None = None
        # nginx in front (deploy/nginx), when a run starts one: its CPU counts as the server's.
        self.nginx: Nginx | None = None
        self.secret_key = secrets.token_urlsafe(32)
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="ticketbooth-bench-logs-"))
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url,
            SECRET_KEY=self.secret_key,
            FLASK_APP="wsgi.py",
            # Every simulated buyer comes from 127.0.0.1; behind a real load
            # balancer each has an address of their own.
            LOGIN_RATE_LIMIT="1000000 per minute",
            REGISTER_RATE_LIMIT="1000000 per minute",
            # A gthread worker needs at most one connection per thread.
            DB_POOL_SIZE=str(threads),
            DB_MAX_OVERFLOW="2",
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        )
        self.env.update(env or {})
        self.instances: list[AppInstance] = []
        self.sweep: subprocess.Popen | None = None

    def start(self) -> Stack:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.instances_wanted):
            port = free_port()
            log_path = self.log_dir / f"gunicorn-{i}.log"
            log = open(log_path, "ab")
            process = subprocess.Popen(
                gunicorn_command("127.0.0.1", port, self.workers, self.threads),
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
            self.instances.append(AppInstance(port, process, log_path))
        if self.with_room_pool:
            port = free_port()
            log_path = self.log_dir / "gunicorn-room.log"
            # Where the two share a host's cores, the shop's processes come
            # first: the crowd waiting yields the CPU to the people let in.
            # The crowd's connections wait in the listen queue as long as the machine lets it (somaxconn).
            command = [*gunicorn_command("127.0.0.1", port, self.workers, self.threads), "--backlog", "4096"]
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=open(log_path, "ab"),
                                       stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(ROOM_POOL_NICENESS))
            self.room = AppInstance(port, process, log_path)
        if self.with_floor:
            port = free_port()
            log_path = self.log_dir / "gunicorn-floor.log"
            process = subprocess.Popen(floor_command("127.0.0.1", port, self.workers, self.threads), cwd=ROOT,
                                       env=self.env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)
            self.floor = AppInstance(port, process, log_path)
        if self.with_sweep:
            sweep_log = open(self.log_dir / "sweep.log", "ab")
            self.sweep = subprocess.Popen([sys.executable, "-m", "flask", "sweep", "--interval", "2"],
                                          cwd=ROOT, env=self.env, stdout=sweep_log, stderr=subprocess.STDOUT)
        for instance in self.app_instances + ([self.floor] if self.floor else []):
            if not wait_until_healthy(instance.base + "/healthz", timeout=60):
                self.stop()
                raise RuntimeError(f"gunicorn did not become healthy; see {instance.log_path}")
        return self

    @property
    def app_instances(self) -> list[AppInstance]:
        """Every gunicorn instance of the app: the shop's, and the waiting room's own if there is one."""
        return self.instances + ([self.room] if self.room else [])

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        processes = ([i.process for i in self.app_instances] + ([self.floor.process] if self.floor else [])
                     + ([self.sweep] if self.sweep else []))
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def server_errors(self) -> list[str]:
        """Tracebacks and error lines the app logged (gunicorn and JSON logs)."""
        lines = []
        for instance in self.app_instances:
            for line in instance.log_path.read_text(errors="replace").splitlines():
                if '"level": "ERROR"' in line or "Traceback" in line or "[CRITICAL]" in line:
                    lines.append(line[:300])
        return lines


# --------------------------------------------------------------------------- nginx in front

NGINX_SITE = ROOT / "deploy" / "nginx" / "ticketbooth.conf"


def nginx_binary() -> str | None:
    """Debian's nginx, if installed."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


class Nginx:
    """deploy/nginx/ticketbooth.conf in front of a Stack with its room pool, as the site file says.

    Rendered by deploy/cluster/cluster.py (the upstreams' ports, the cache's
    folder, the plain and TLS addresses and a self-signed certificate put in,
    the shared locations written into both servers); worker processes enough for a crowd's connections (each
    proxied request holds two) within the open-files limit of one process.
    """

    def __init__(self, stack: Stack, directory: Path, *, connections: int = 40_000,
                 join_pace: tuple[int, int] | None = None):
        # A process may hold at most the machine's hard open-files limit (20,000 here, not raisable), and a
        # proxied request holds two: the crowd's connections are spread over enough workers to hold them.
        if stack.room is None:
            raise ValueError("nginx routes to two pools: start the Stack with room_pool=True")
        self.stack = stack
        self.directory = directory
        self.connections = connections
        # (joins a second, how many may wait): the site file's pace for the crowd's joins, else its own.
        self.join_pace = join_pace
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        limit = (hard if hard != resource.RLIM_INFINITY else 1 << 20) - 1024
        self.workers = max(1, -(-2 * connections // limit))
        self.per_worker = -(-2 * connections // self.workers)
        self.port, self.tls_port = free_port(), free_port()
        self.certificate: Path | None = None
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        sys.path.insert(0, str(ROOT / "deploy" / "cluster"))
        import cluster  # deploy/cluster/cluster.py: one rendering of the site for the cluster, the tests and this

        (d / "tls").mkdir(exist_ok=True)
        self.certificate, key = cluster.self_signed_certificate(d / "tls", "127.0.0.1")
        site = cluster.nginx_site(shop=[f"127.0.0.1:{self.stack.instances[0].port}"],
                                  room=[f"127.0.0.1:{self.stack.room.port}"],
                                  listen=f"127.0.0.1:{self.port} backlog=8192 reuseport",
                                  tls_listen=f"127.0.0.1:{self.tls_port}",
                                  certificate=str(self.certificate), key=str(key), cache_dir=str(d / "cache"))
        if self.join_pace is not None:
            rate, burst = self.join_pace
            site = site.replace("rate=200r/s;", f"rate={rate}r/s;").replace("burst=30000;", f"burst={burst};")
        (d / "site.conf").write_text(site)
        (d / "nginx.conf").write_text(f"""
            user root;
            worker_processes {self.workers};
            worker_rlimit_nofile {self.per_worker + 1024};
            pid {d}/nginx.pid;
            error_log {d}/error.log;
            events {{ worker_connections {self.per_worker}; }}
            http {{
                # The reserves only, as nginx served them: from the request's first byte to the answer's
                # last, so a figure the load generator's own lag (one process driving a crowd) is not in.
                map "$request_method $uri" $ticketbooth_bench_reserve {{
                    "~^POST /events/[0-9]+/reserve$" 1;
                    default 0;
                }}
                log_format ticketbooth_bench_timing "$status $request_time";
                access_log {d}/reserves.log ticketbooth_bench_timing if=$ticketbooth_bench_reserve;
                client_body_temp_path {d}/body;
                proxy_temp_path {d}/proxy;
                fastcgi_temp_path {d}/fastcgi;
                uwsgi_temp_path {d}/uwsgi;
                scgi_temp_path {d}/scgi;
                include {d}/site.conf;
            }}""")
        self.process = subprocess.Popen([binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-g", "daemon off;"],
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not (d / "nginx.pid").exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {self.process.stderr.read().decode()}")
            time.sleep(0.05)
        return self

    def reserve_times(self) -> list[tuple[int, float]]:
        """(status, ms) of every reserve nginx served, as it timed them (first byte in to last byte out)."""
        log = self.directory / "reserves.log"
        if not log.exists():
            return []
        times = []
        for line in log.read_text().splitlines():
            status, seconds = line.split()
            times.append((int(status), float(seconds) * 1000))
        return times

    def pids(self) -> list[int]:
        """The master and its worker (for the CPU they use)."""
        if self.process is None:
            return []
        try:
            master = psutil.Process(self.process.pid)
            return [master.pid, *(c.pid for c in master.children())]
        except psutil.Error:
            return []

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# --------------------------------------------------------------------------- data

class Data:
    """Direct database access for preparing a run and checking it afterwards."""

    def __init__(self, database_url: str, secret_key: str):
        from webapp import create_app

        # Never serves requests. The limiter is one object per process and
        # init_app reconfigures it, so this app must not switch it on for the
        # test apps sharing the process.
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": secret_key,
                               "DB_POOL_SIZE": 2, "DB_MAX_OVERFLOW": 2, "RATELIMIT_ENABLED": False})

    @contextmanager
    def session(self):
        from webapp.extensions import db

        with self.app.app_context():
            try:
                yield db.session
            finally:
                db.session.remove()

    def create_buyers(self, n: int, prefix: str) -> list[int]:
        """N accounts in one statement, sharing one precomputed password hash."""
        from webapp.services.people import accounts

        password_hash = accounts.hash_password(BENCH_PASSWORD)
        with self.session() as s:
            ids = s.execute(
                text(
                    "INSERT INTO users (email, password_hash, name, is_admin)"
                    " SELECT :p || '-' || g || '@example.com', :h, 'Buyer ' || g, false"
                    " FROM generate_series(1, :n) AS g RETURNING id"
                ),
                {"p": prefix, "h": password_hash, "n": n},
            ).scalars().all()
            s.commit()
        return sorted(ids)

    def api_tokens(self, user_ids: list[int]) -> list[str]:
        """A personal API token (buyer scope) for each user, made by the account page's service."""
        from webapp.services.people import api_tokens

        with self.session() as s:
            secrets = [api_tokens.create(s, user_id=u, is_admin=False, name="bench", scope="buyer").secret
                       for u in user_ids]
            s.commit()
        return secrets

    def session_cookie(self, user_id: int) -> str:
        """The signed cookie the login form would set for this user.

        Minted with the app's own session serializer and secret, exactly the
        state a browser holds after logging in before the on-sale opens
        (logging 5,000 buyers in through Argon2 first would only measure
        Argon2). A sample of buyers logs in through the real form instead.
        """
        from webapp.extensions import db
        from webapp.models import User

        with self.app.test_request_context():
            from flask import session

            from webapp import session_user

            session_user.remember(db.session.get(User, user_id))
            state = dict(session, _user_id=str(user_id), _fresh=True, _id=secrets.token_hex(64))
            db.session.remove()
        return self.app.session_interface.get_signing_serializer(self.app).dumps(state)

    def minted_sessions(self, user_ids: list[int]) -> list[tuple[str, str]]:
        """(session cookie, CSRF token) per user, as a browser holds them after logging in and loading a page.

        Minted with the app's own session serializer and Flask-WTF, without
        a request or a query: a crowd of 50,000 need not load 50,000 pages
        before the on-sale to be ready for it (see `session_cookie`).
        """
        from types import SimpleNamespace

        from flask import session
        from flask_wtf.csrf import generate_csrf

        from webapp import session_user

        minted = []
        with self.app.test_request_context():
            serializer = self.app.session_interface.get_signing_serializer(self.app)
            for user_id in user_ids:
                session.clear()
                session_user.remember(SimpleNamespace(id=user_id, name=f"Buyer {user_id}", is_admin=False,
                                                      session_version=0))
                token = generate_csrf()
                state = dict(session, _user_id=str(user_id), _fresh=True, _id=secrets.token_hex(64))
                minted.append((serializer.dumps(state), token))
        return minted

    def ga_event(self, capacity: int, *, per_order_limit: int = 8, title: str = "Rush GA",
                 hold_minutes: int = 10) -> tuple[int, int]:
        from datetime import datetime, timedelta, timezone

        from webapp.models import EventStatus
        from webapp.services.selling import events

        with self.session() as s:
            event = events.create_event(
                s, title=title, venue="Bench Arena", status=EventStatus.ON_SALE, hold_minutes=hold_minutes,
                per_order_limit=per_order_limit, starts_at=datetime.now(timezone.utc) + timedelta(days=30),
                per_address_limit=BENCH_PER_ADDRESS_LIMIT,
            )
            tier = events.add_general_tier(s, event, name="Standing", price_minor=4500, capacity=capacity)
            s.commit()
            return event.id, tier.id

    def waiting_room(self, event_id: int, *, starts_in: float = -1, rate: int | None = None,
                     cap: int | None = None, paused: bool = False) -> None:
        """Turn the event's waiting room on: sale start `starts_in` seconds from now (negative: started)."""
        from datetime import datetime, timedelta, timezone

        from webapp.models import Event
        from webapp.services.waiting import waiting_room

        with self.session() as s:
            event = s.get(Event, event_id)
            waiting_room.configure(s, event, enabled=True,
                                   sale_starts_at=datetime.now(timezone.utc) + timedelta(seconds=starts_in),
                                   admit_per_minute=rate, max_shoppers=cap)
            if paused:
                waiting_room.control(s, event, paused=True)
            s.commit()

    def waiting_room_control(self, event_id: int, *, paused: bool) -> None:
        """Pause or resume admission, as the admin's button does."""
        from webapp.models import Event
        from webapp.services.waiting import waiting_room

        with self.session() as s:
            waiting_room.control(s, s.get(Event, event_id), paused=paused)
            s.commit()

    def waiting_room_gauge(self, event_id: int) -> tuple[int | None, int, float]:
        """(the room's window, people shopping, the worst shop delay reported now in ms): the outflow's state."""
        from webapp.services.waiting.waiting_room import outflow

        with self.session() as s:
            row = s.execute(text("SELECT outflow_window, (SELECT count(*) FROM waiting_room_entries"
                                 " WHERE event_id = :e AND status = 'admitted') FROM waiting_rooms"
                                 " WHERE event_id = :e"), {"e": event_id}).one()
            return row[0], row[1], outflow.worst_delay_ms(s)

    def waiting_room_marks(self, event_id: int) -> tuple[int, int]:
        """(numbers given, numbered places still waiting), from the room's marks."""
        with self.session() as s:
            row = s.execute(text("SELECT issued, issued - served - left_count FROM waiting_rooms"
                                 " WHERE event_id = :e"), {"e": event_id}).one()
            return row[0], row[1]

    def seated_event(self, rows: int, seats_per_row: int, *, title: str = "Rush Seats",
                     hold_minutes: int = 10) -> int:
        from datetime import datetime, timedelta, timezone

        from webapp.models import EventStatus
        from webapp.services.selling import events

        with self.session() as s:
            event = events.create_event(
                s, title=title, venue="Bench Hall", status=EventStatus.ON_SALE, hold_minutes=hold_minutes,
                per_order_limit=8, starts_at=datetime.now(timezone.utc) + timedelta(days=30),
                per_address_limit=BENCH_PER_ADDRESS_LIMIT,
            )
            tier = events.add_seated_tier(s, event, name="Stalls", price_minor=6000)
            events.generate_section(s, event, events.SectionSpec("Stalls", rows, seats_per_row, 0, 0,
                                                                 ((0, rows - 1, tier),)))
            s.commit()
            return event.id

    def stadium(self, sections: int, rows: int = 40, seats_per_row: int = 50, *, title: str = "Bench Stadium",
                hold_minutes: int = 10) -> int:
        """A big venue as the admin's generator lays it out: `sections` blocks of rows x seats, ten to a line."""
        from datetime import datetime, timedelta, timezone

        from webapp.models import EventStatus
        from webapp.services.selling import events

        with self.session() as s:
            event = events.create_event(
                s, title=title, venue="Bench Stadium", status=EventStatus.ON_SALE, hold_minutes=hold_minutes,
                per_order_limit=8, starts_at=datetime.now(timezone.utc) + timedelta(days=30),
            )
            tier = events.add_seated_tier(s, event, name="Stands", price_minor=6000)
            events.generate_sections(s, event, [
                events.SectionSpec(f"Block {i + 1}", rows, seats_per_row, (i % 10) * (seats_per_row + 3),
                                   (i // 10) * (rows + 3), ((0, rows - 1, tier),))
                for i in range(sections)])
            s.commit()
            return event.id

    def seats_by_row(self, event_id: int) -> list[list[int]]:
        with self.session() as s:
            rows = s.execute(
                text("SELECT pos_y, id FROM units WHERE event_id = :e ORDER BY pos_y, pos_x"), {"e": event_id}
            ).all()
        grouped: dict[int, list[int]] = defaultdict(list)
        for y, unit_id in rows:
            grouped[y].append(unit_id)
        return [grouped[y] for y in sorted(grouped)]

    def waiting_room_places(self, event_id: int) -> list[tuple[int, int, object]]:
        """The waiting room's places in number order (places never numbered last, in line order):
        (id, line_key, admitted at or None)."""
        with self.session() as s:
            return [tuple(r) for r in s.execute(text(
                "SELECT id, line_key, admitted_at FROM waiting_room_entries WHERE event_id = :e"
                " ORDER BY number NULLS LAST, line_key, id"), {"e": event_id}).all()]

    def numbers_out_of_line_order(self, event_id: int) -> int:
        """Numbers given against the order of the places' keys (the draw, then arrival)."""
        with self.session() as s:
            return s.execute(text(
                "SELECT count(*) FROM (SELECT number, lag(number) OVER (ORDER BY line_key, id) AS before"
                " FROM waiting_room_entries WHERE event_id = :e AND number IS NOT NULL) o"
                " WHERE number < before"), {"e": event_id}).scalar_one()

    def fill_waiting_room(self, event_id: int, n: int, *, numbered: bool) -> None:
        """N synthetic places (anonymous, nobody behind them) at the back, in one INSERT ... SELECT.

        `numbered`: given their numbers at once, as a room long since
        started has them; otherwise they arrive now, and the admission
        passes number them as they would real arrivals.
        """
        with self.session() as s:
            # A million rows take longer than the app's statement timeout allows a request.
            s.execute(text("SET LOCAL statement_timeout = 0"))
            issued = s.execute(text("SELECT issued FROM waiting_rooms WHERE event_id = :e FOR UPDATE"),
                               {"e": event_id}).scalar_one()
            s.execute(text(
                "INSERT INTO waiting_room_entries (event_id, anon_token, line_key, number)"
                " SELECT :e, 'synthetic-' || :e || '-' || (:i + g),"
                "        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint + g,"
                "        CASE WHEN :numbered THEN :i + g END"
                " FROM generate_series(1, :n) AS g"), {"e": event_id, "n": n, "i": issued, "numbered": numbered})
            if numbered:
                s.execute(text("UPDATE waiting_rooms SET issued = issued + :n WHERE event_id = :e"),
                          {"e": event_id, "n": n})
            s.commit()
            s.execute(text("ANALYZE waiting_room_entries"))
            s.commit()

    def verdict(self, event_id: int) -> list[str]:
        from webapp.services.invariants import check_event

        with self.session() as s:
            return check_event(s, event_id)

    def unit_counts(self, event_id: int) -> Counter:
        with self.session() as s:
            return Counter(dict(s.execute(
                text("SELECT status, count(*) FROM units WHERE event_id = :e GROUP BY status"), {"e": event_id}
            ).all()))

    def order_count(self, event_id: int) -> int:
        with self.session() as s:
            return s.execute(text("SELECT count(*) FROM orders WHERE event_id = :e AND status = 'confirmed'"),
                             {"e": event_id}).scalar_one()

    def dispose(self) -> None:
        from webapp.extensions import db

        with self.app.app_context():
            db.engine.dispose()


def minted_browsers(stack_bases: list[tuple[str, int]], sessions: list[tuple[str, str]]) -> list[Browser]:
    """One browser per minted (session cookie, CSRF token), spread over the instances round-robin."""
    browsers = []
    for i, (cookie, token) in enumerate(sessions):
        host, port = stack_bases[i % len(stack_bases)]
        browser = Browser(host, port)
        browser.cookies["session"] = cookie
        browser.csrf = token
        browsers.append(browser)
    return browsers


async def open_browsers(stack_bases: list[tuple[str, int]], cookies: list[str], *, event_path: str,
                        login_sample: list[str] = (), concurrency: int = 50) -> list[Browser]:
    """One browser per buyer, each holding its session and the event page's CSRF token.

    Buyers are spread over the instances round-robin (a load balancer). The
    first `login_sample` buyers log in through the real form; the others
    arrive with their session cookie. Every buyer loads the event page, as a
    browser does before the on-sale, and takes the CSRF token from it.
    """
    gate = asyncio.Semaphore(concurrency)
    browsers: list[Browser] = []
    for i, cookie in enumerate(cookies):
        host, port = stack_bases[i % len(stack_bases)]
        browser = Browser(host, port)
        if i >= len(login_sample):
            browser.cookies["session"] = cookie
        browsers.append(browser)

    async def prepare(i: int, browser: Browser) -> None:
        async with gate:
            if i < len(login_sample):
                page = await browser.get("/login")
                token = HIDDEN_CSRF.search(page.text).group(1)
                answer = await browser.post("/login", {"email": login_sample[i], "password": BENCH_PASSWORD,
                                                       "csrf_token": token}, htmx=False)
                if answer.status != 303:
                    raise RuntimeError(f"login failed with {answer.status}: {answer.text[:200]}")
            page = await browser.get(event_path)
            if page.status != 200:
                raise RuntimeError(f"event page answered {page.status}")
            browser.csrf = CSRF_IN_PAGE.search(page.text).group(1)

    await asyncio.gather(*(prepare(i, b) for i, b in enumerate(browsers)))
    return browsers


# --------------------------------------------------------------------------- measuring

def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


@dataclass
class Recorder:
    """Latency per step, status codes per step, outcomes."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    outcomes: Counter = field(default_factory=Counter)
    # When each answer came (perf_counter), beside its latency: for a scenario's timeline.
    answered_at: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def record(self, step: str, response: Response) -> Response:
        self.latencies[step].append(response.elapsed)
        self.answered_at[step].append(time.perf_counter())
        self.statuses[step][response.status] += 1
        return response

    async def call(self, step: str, coro) -> Response | None:
        try:
            return self.record(step, await coro)
        except ClientError as error:
            self.statuses[step][error.kind] += 1
            return None

    def five_xx(self) -> int:
        return sum(n for c in self.statuses.values() for s, n in c.items() if isinstance(s, int) and s >= 500)

    def no_answer(self) -> int:
        return sum(n for c in self.statuses.values() for s, n in c.items() if not isinstance(s, int))


class ResourceMonitor:
    """Peak RSS per gunicorn worker and CPU seconds per group, sampled in a thread."""

    def __init__(self, stack: Stack, postmaster_pid: int | None, interval: float = 0.2,
                 instances: list[AppInstance] | None = None):
        self.stack = stack
        # The app's instances by default; [stack.floor] to measure the floor.
        self.instances = stack.app_instances if instances is None else instances
        self.with_nginx = instances is None  # nginx serves the app, not the floor
        self.postmaster_pid = postmaster_pid
        self.interval = interval
        self.peak_rss: dict[int, int] = {}
        self._cpu_start: dict[str, float] = {}
        self._cpu_last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._client_start = 0.0
        self.wall = 0.0

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {"app": [], "sweep": [], "postgres": [], "nginx": []}
        if self.stack.nginx is not None and self.with_nginx:
            for pid in self.stack.nginx.pids():
                try:
                    groups["nginx"].append(psutil.Process(pid))
                except psutil.Error:
                    pass
        for instance in self.instances:
            try:
                groups["app"].append(psutil.Process(instance.process.pid))
            except psutil.Error:
                pass
            groups["app"].extend(instance.workers())
        if self.stack.sweep is not None:
            try:
                groups["sweep"].append(psutil.Process(self.stack.sweep.pid))
            except psutil.Error:
                pass
        if self.postmaster_pid:
            try:
                master = psutil.Process(self.postmaster_pid)
                groups["postgres"] = [master, *master.children()]
            except psutil.Error:
                pass
        return groups

    def _sample(self) -> None:
        worker_pids = {w.pid for i in self.instances for w in i.workers()}
        for group, processes in self._groups().items():
            for process in processes:
                try:
                    self._cpu_last[process.pid] = (group, process_cpu(process.pid))
                    if process.pid in worker_pids:
                        rss = process.memory_info().rss
                        self.peak_rss[process.pid] = max(self.peak_rss.get(process.pid, 0), rss)
                except psutil.Error:
                    pass

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> ResourceMonitor:
        self._sample()
        self._cpu_first = dict(self._cpu_last)
        self._client_start = _own_cpu()
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall = time.perf_counter() - self._started
        self.client_cpu = _own_cpu() - self._client_start

    def cpu_seconds(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for pid, (group, seconds) in self._cpu_last.items():
            before = self._cpu_first.get(pid, (group, 0.0))[1]
            totals[group] += seconds - before
        totals["client"] = self.client_cpu
        return dict(totals)

    def server_cpu(self) -> float:
        """Seconds of CPU spent serving: the app's (or floor's) processes, PostgreSQL and nginx in front if any."""
        cpu = self.cpu_seconds()
        return cpu.get("app", 0.0) + cpu.get("postgres", 0.0) + cpu.get("nginx", 0.0)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, all its threads included.

    The same figure psutil's cpu_times() gives, but psutil reads it from
    /proc/<pid>/stat in 10 ms clock ticks: too coarse for requests that cost
    about a millisecond. The scheduler keeps it in nanoseconds per thread
    (/proc/<pid>/task/<tid>/schedstat), which is what this sums; elsewhere it
    falls back to psutil.
    """
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended
        return total / 1e9
    except OSError:
        pass
    try:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


class CpuMeter:
    """CPU used by one gunicorn instance's workers and by every PostgreSQL process, between two readings."""

    def __init__(self, instance: AppInstance, postmaster_pid: int | None):
        self.instance = instance
        self.postmaster_pid = postmaster_pid

    def _postgres_pids(self) -> list[int]:
        if not self.postmaster_pid:
            return []
        try:
            master = psutil.Process(self.postmaster_pid)
            return [master.pid, *(c.pid for c in master.children())]
        except psutil.Error:
            return []

    def read(self) -> dict[int, tuple[str, float]]:
        seen = {w.pid: ("app", process_cpu(w.pid)) for w in self.instance.workers()}
        seen.update({pid: ("postgres", process_cpu(pid)) for pid in self._postgres_pids()})
        return seen

    @staticmethod
    def used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
        """Seconds per group; a process born in between counts from zero."""
        totals = {"app": 0.0, "postgres": 0.0}
        for pid, (group, seconds) in after.items():
            totals[group] += seconds - before.get(pid, (group, 0.0))[1]
        return totals



def load_figures(recorder: Recorder, monitor: ResourceMonitor, in_flight: int) -> dict[str, float]:
    """What the benchmark compares with the floor: requests/s and server CPU per request."""
    requests = sum(len(v) for v in recorder.latencies.values())
    return {
        "requests": requests, "wall": monitor.wall, "in_flight": in_flight,
        "request_rate": requests / monitor.wall if monitor.wall else float("nan"),
        "cpu_ms_per_request": monitor.server_cpu() / requests * 1000 if requests else float("nan"),
        "server_cpu_s": monitor.server_cpu(), "five_xx": recorder.five_xx(),
    }


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def report(title: str, recorder: Recorder, monitor: ResourceMonitor, *, extra: list[str] = (),
           verdict: list[str] | None = None, primary: str | None = None) -> str:
    lines = [f"== {title}", f"wall time {monitor.wall:.2f} s"]
    for step, values in recorder.latencies.items():
        rate = len(values) / monitor.wall if monitor.wall else 0
        lines.append(
            f"  {step:<14} n={len(values):>6}  {rate:8.1f}/s  p50 {percentile(values, 50) * 1000:7.1f} ms"
            f"  p95 {percentile(values, 95) * 1000:7.1f} ms  p99 {percentile(values, 99) * 1000:7.1f} ms"
            f"  max {max(values) * 1000:7.1f} ms"
        )
    for step, counts in recorder.statuses.items():
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
        lines.append(f"  status {step:<8} {shown}")
    if recorder.outcomes:
        lines.append("  outcomes       " + ", ".join(f"{k}: {v}" for k, v in sorted(recorder.outcomes.items())))
    lines.extend(f"  {line}" for line in extra)
    rss = sorted(monitor.peak_rss.values())
    if rss:
        lines.append(f"  peak RSS per worker: max {rss[-1] / 2**20:.0f} MB, median "
                     f"{statistics.median(rss) / 2**20:.0f} MB ({len(rss)} workers)")
    cpu = monitor.cpu_seconds()
    cores = psutil.cpu_count() or 1
    lines.append("  CPU seconds: " + ", ".join(
        f"{k} {v:.1f} ({v / monitor.wall / cores * 100:.0f}% of {cores} cores)" for k, v in cpu.items()
    ))
    lines.append(f"  5xx: {recorder.five_xx()}, no answer: {recorder.no_answer()}")
    if verdict is not None:
        lines.append("  invariants: " + ("OK (no violation)" if not verdict else f"{len(verdict)} VIOLATION(S)"))
        lines.extend(f"    - {v}" for v in verdict[:10])
    return "\n".join(lines)
