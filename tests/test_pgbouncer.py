"""The app behind PgBouncer in transaction mode, as the cluster profile runs it (deploy/cluster).

Transaction mode hands each transaction whichever server connection is free,
so nothing may rely on a connection's session: no startup options (PgBouncer
refuses them), no session-level SET, no session-level advisory lock held
across transactions, no server-side prepared statements (psycopg2 sends
none). Runs on a PostgreSQL of its own; skipped, saying why, without
Debian's `pgbouncer` package.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import TestConfig
from tests.factories import Factory
from tests.support import csrf_token, free_port, login
from webapp import create_app, embedded_pg
from webapp.extensions import db
from webapp.launcher import ROOT

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="PgBouncer is not installed (apt-get install pgbouncer)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="runs PgBouncer as the database's system user, which needs root"),
]

# statement_timeout far above lock_timeout: a lock wait that ends well before it was ended by lock_timeout,
# however slow a shared machine makes the rest of the request.
ROLE_SETTINGS = {"lock_timeout": "500ms", "statement_timeout": "1min", "idle_in_transaction_session_timeout": "1min"}


@pytest.fixture(scope="module")
def bouncer():
    """Its own PostgreSQL, two databases (one migrated, one empty), and PgBouncer in front in transaction mode."""
    workdir = Path(tempfile.mkdtemp(prefix="tickets-pgbouncer-", dir="/tmp"))
    server = embedded_pg.start(workdir / "data", throwaway=True)
    direct = embedded_pg.create_database(embedded_pg.url_of(server), "shop", drop_first=True)
    embedded_pg.create_database(embedded_pg.url_of(server), "empty", drop_first=True)
    socket_dir = parse_qs(urlparse(server.get_uri()).query)["host"][0]
    engine = create_engine(direct, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for database in ("shop", "empty"):
            for name, value in ROLE_SETTINGS.items():
                conn.execute(text(f"ALTER ROLE postgres IN DATABASE {database} SET {name} = '{value}'"))
    engine.dispose()
    port = free_port()
    conf = workdir / "pgbouncer.ini"
    conf.write_text(f"""[databases]
* = host={socket_dir} port=5432
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/userlist.txt
pool_mode = transaction
default_pool_size = 8
max_client_conn = 200
logfile = {workdir}/pgbouncer.log
""")
    (workdir / "userlist.txt").write_text('"postgres" ""\n')
    os.chmod(workdir, 0o755)
    for path in (conf, workdir / "userlist.txt"):
        os.chmod(path, 0o644)
    (workdir / "pgbouncer.log").touch()
    # As the server's own system user, who may open its socket (PgBouncer refuses to run as root).
    owner = server.system_user or "postgres"
    shutil.chown(workdir / "pgbouncer.log", owner)
    proc = subprocess.Popen(["runuser", "-u", owner, "--", PGBOUNCER, str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bounced = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            probe = create_engine(bounced + "shop")
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
            probe.dispose()
            break
        except Exception:
            time.sleep(0.2)
    try:
        yield {"direct": direct, "shop": bounced + "shop", "empty": bounced + "empty", "log": workdir / "pgbouncer.log"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def _app(url: str, **settings):
    return create_app({"SQLALCHEMY_DATABASE_URI": url, "DB_STARTUP_OPTIONS": False, "LOG_LEVEL": "ERROR",
                       **settings}, config_class=TestConfig)


def _migrate(url: str, count: int) -> list[subprocess.CompletedProcess]:
    """`count` launchers migrating the database at `url` at once, as containers starting together do."""
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="pgbouncer-test", DB_STARTUP_OPTIONS="0",
               LOG_LEVEL="WARNING")
    script = "from webapp.launcher import migrate_and_seed; migrate_and_seed(False)"
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(count)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=180), p.stdout.read()) for p in procs]


def test_startup_options_are_refused_by_pgbouncer_so_the_app_can_do_without(bouncer):
    with_options = _app(bouncer["shop"], DB_STARTUP_OPTIONS=True)
    assert with_options.test_client().get("/healthz").status_code == 503
    assert "unsupported startup parameter" in bouncer["log"].read_text()
    with with_options.app_context():
        db.engine.dispose()


def test_migrations_through_pgbouncer_run_once_and_leave_no_lock_behind(bouncer):
    results = _migrate(bouncer["empty"], 3)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stdout[-600:] for r in results]
    direct = create_engine(make_url(bouncer["direct"]).set(database="empty"), isolation_level="AUTOCOMMIT")
    with direct.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        # A session-level lock taken through the pooler stays held on a server connection it handed back.
        assert conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar_one() == 0
    direct.dispose()


def test_the_shop_sells_through_pgbouncer_with_the_roles_timeouts(bouncer):
    assert all(r.returncode == 0 for r in _migrate(bouncer["shop"], 1))
    app = _app(bouncer["shop"])
    with app.app_context():
        # The timeouts the app sends at connect elsewhere are the role's here, on whichever server connection.
        for name, value in ROLE_SETTINGS.items():
            assert db.session.execute(text(f"SHOW {name}")).scalar_one() == value
        db.session.rollback()
        factory = Factory(db.session)
        event = factory.seated_event(rows=1, seats_per_row=4)
        seat, contested = factory.seat_ids(event)[:2]
        event_id, email, rival_email = event.id, factory.user().email, factory.user().email
        db.session.commit()
        db.session.remove()
    client = app.test_client()
    login(client, email)
    token = csrf_token(client, f"/events/{event_id}")
    reserved = client.post(f"/events/{event_id}/reserve", data={"seat": str(seat)}, headers={"X-CSRFToken": token})
    assert reserved.status_code == 303, reserved.get_data(as_text=True)[:300]
    hold_id = int(reserved.headers["Location"].rstrip("/").split("/")[-1])
    paid = client.post(f"/holds/{hold_id}/pay", headers={"X-CSRFToken": csrf_token(client, f"/holds/{hold_id}")},
                       data={"name": "Ada Bouncer", "number": "4242 4242 4242 4242", "expiry": "12/39",
                             "cvc": "123", "idempotency_key": "bouncer-key-" + "k" * 20})
    assert paid.status_code == 303, paid.get_data(as_text=True)[:300]
    assert "/orders/" in paid.headers["Location"]

    # A lock wait ends at the role's lock_timeout and becomes a 503, as with startup options.
    blocker = create_engine(bouncer["direct"]).connect()
    txn = blocker.begin()
    blocker.execute(text("SELECT id FROM units WHERE id = :u FOR UPDATE"), {"u": contested})
    rival = app.test_client()
    login(rival, rival_email)
    started = time.monotonic()
    try:
        waited = rival.post(f"/events/{event_id}/reserve", data={"seat": str(contested)},
                            headers={"X-CSRFToken": csrf_token(rival, f"/events/{event_id}")})
    finally:
        txn.rollback()
        blocker.close()
    assert waited.status_code == 503 and waited.headers["Retry-After"] == "2"
    # Ended by the role's lock_timeout (0.5 s), not its statement_timeout (60 s): the margin is wide so that
    # a busy machine cannot blur the two.
    assert time.monotonic() - started < 30
    with app.app_context():
        db.engine.dispose()


def test_concurrent_buyers_through_pgbouncer_share_few_server_connections(bouncer):
    """Forty threads, a pool of eight server connections: every request answered, none a 500."""
    app = _app(bouncer["shop"], DB_POOL_SIZE=40, DB_MAX_OVERFLOW=0)
    client_statuses: list[int] = []

    def ask():
        client = app.test_client()
        for _ in range(5):
            client_statuses.append(client.get("/").status_code)

    threads = [threading.Thread(target=ask) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client_statuses.count(200) == 200, sorted(set(client_statuses))
    with app.app_context():
        db.engine.dispose()
