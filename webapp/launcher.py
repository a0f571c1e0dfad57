"""Start the whole stack: `python -m webapp.launcher dev|serve`.

`dev` is what `./run-app` runs: an embedded PostgreSQL (unless DATABASE_URL
is set), migrations, demo data, gunicorn with several workers, the expiry
sweep, the webhook worker, and a local SMTP catcher with the mail worker sending to it. Ctrl-C
(or SIGTERM) stops every piece and the embedded PostgreSQL with it.

`serve` is the container entrypoint: wait for the database, migrate, then
replace itself with gunicorn. The sweeper runs as its own container
(`flask sweep`), so any number of app containers can be started.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVDATA = ROOT / ".devdata"


def gunicorn_command(host: str, port: int, workers: int, threads: int, access_log: bool | None = None) -> list[str]:
    """gunicorn as the launcher runs it; its access log on when asked, or when ACCESS_LOG=1."""
    if access_log is None:
        access_log = os.environ.get("ACCESS_LOG") == "1"
    return [
        sys.executable, "-m", "gunicorn", "wsgi:app",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        # gthread: a slow card authorisation (seconds) must not block a whole worker.
        "--worker-class", "gthread", "--threads", str(threads),
        "--graceful-timeout", "10", "--timeout", "30",
        # Above deploy/nginx's upstream keepalive_timeout (1 s), so nginx, not gunicorn, closes an idle one.
        "--keep-alive", "2",
        # Above the app's own limits (webapp/parsing.py), which answer an API
        # client in problem details where gunicorn could only send HTML.
        # 8190 is the most gunicorn takes for the request line.
        "--limit-request-line", "8190", "--limit-request-field_size", "16384", "--limit-request-fields", "128",
        # No access log at all unless asked: even to /dev/null, gunicorn would build each line.
        *(["--access-logfile", "-"] if access_log else []),
        "--chdir", str(ROOT),
        "--no-control-socket",
        "--config", "python:webapp.gunicorn_conf",
    ]


def fresh_metrics_directory() -> str:
    """Where gunicorn's workers share their metrics (PROMETHEUS_MULTIPROC_DIR), emptied at each start.

    Files left from an earlier run would add its counts to this one's.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="tickets-metrics-")
    Path(path).mkdir(parents=True, exist_ok=True)
    for stale in Path(path).glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def wait_for_database(url: str, timeout: float = 60) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            print("waiting for the database…", flush=True)
            time.sleep(1)


# Any constant will do, as long as every app container uses the same one.
MIGRATION_LOCK_KEY = 0x7469636B  # "tick"


def migrate_and_seed(seed: bool) -> None:
    """Bring the schema to head (and seed), one container at a time.

    Several containers starting together on an empty database would each
    try to create the same tables; all but one crashed. An advisory lock,
    held on its own connection, makes the others wait and then find nothing
    left to do. It is transaction-scoped and held by keeping that
    connection's transaction open: behind PgBouncer in transaction mode a
    session-level lock would be taken on one server connection, "released"
    on another, and left held on the first for whichever client gets it next.
    """
    from flask_migrate import upgrade
    from sqlalchemy import text

    from webapp import create_app
    from webapp.extensions import db
    from webapp.services import demo

    app = create_app()
    with app.app_context():
        with db.engine.connect() as lock:
            # Waiting for another container's migration, and then staying
            # idle in this transaction while ours runs, are both expected.
            lock.execute(text("SET LOCAL lock_timeout = 0; SET LOCAL statement_timeout = 0;"
                              " SET LOCAL idle_in_transaction_session_timeout = 0"))
            lock.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                upgrade()
                if seed and not demo.has_data(db.session):
                    demo.seed(db.session)
                    db.session.commit()
                    print("Demo data created.", flush=True)
            finally:
                lock.rollback()  # ends the transaction, and with it the lock
        db.engine.dispose()


def wait_until_healthy(url: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


def _secret_key() -> str:
    path = DEVDATA / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def dev(args: argparse.Namespace) -> int:
    from config import normalise_database_url
    from webapp import embedded_pg

    DEVDATA.mkdir(exist_ok=True)
    # A normal exit on SIGTERM lets pgserver stop its PostgreSQL. SIGINT is
    # set explicitly: a shell starting us in the background may ignore it.
    embedded_pg.exit_on_sigterm()
    signal.signal(signal.SIGHUP, signal.getsignal(signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = normalise_database_url(os.environ["DATABASE_URL"])
        print("Using DATABASE_URL.", flush=True)
    else:
        server = embedded_pg.start(DEVDATA / "pg")
        os.environ["DATABASE_URL"] = embedded_pg.create_database(embedded_pg.url_of(server), "tickets")
        print(f"Embedded PostgreSQL running in {DEVDATA / 'pg'}.", flush=True)
    os.environ.setdefault("SECRET_KEY", _secret_key())
    os.environ.setdefault("FLASK_APP", "wsgi.py")
    # Mail goes to a local catcher beside the web port; the admin area lists it.
    from webapp import devenv

    smtp_port = int(os.environ.get("DEV_SMTP_PORT", args.port + 25))
    for key, value in devenv.mail_settings(smtp_port).items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PUBLIC_URL", f"http://{args.host}:{args.port}")
    fake_stripe_port = int(os.environ.get("DEV_STRIPE_PORT", args.port + 420))
    if args.stripe:
        os.environ.update(devenv.fake_stripe_settings(fake_stripe_port))
    wait_for_database(os.environ["DATABASE_URL"])
    migrate_and_seed(seed=not args.no_seed)

    # Rate limits must be counted where every worker sees them: a private Redis, unless one is given.
    redis_server = None
    if not os.environ.get("REDIS_URL"):
        started = devenv.start_redis(DEVDATA / "redis")
        if started is None:
            warn_limits_per_process(args.workers, "no redis-server could be started (apt-get install redis-server)")
        else:
            redis_server, os.environ["REDIS_URL"] = started
            print(f"Rate limits are counted in a private Redis at {os.environ['REDIS_URL']}.", flush=True)
    # Every process started here (web, sweep, workers) records into one directory.
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(DEVDATA / "metrics"))
    fresh_metrics_directory()
    # First, so that it is listening by the time the app is: it takes a few seconds to import.
    fake_stripe = ([("fake stripe", subprocess.Popen([sys.executable, "-m", "webapp.fakestripe", "--port",
                                                      str(fake_stripe_port)], cwd=ROOT))] if args.stripe else [])
    children = {
        **dict(fake_stripe),
        "web": subprocess.Popen(gunicorn_command(args.host, args.port, args.workers, args.threads), cwd=ROOT),
        "sweep": subprocess.Popen([sys.executable, "-m", "flask", "sweep", "--interval", "2"], cwd=ROOT),
        "smtp catcher": subprocess.Popen([sys.executable, "-m", "webapp.mailcatcher", "--port", str(smtp_port),
                                          "--dir", os.environ["DEV_MAIL_DIR"]], cwd=ROOT),
        "mail worker": subprocess.Popen([sys.executable, "-m", "flask", "deliver-mail", "--interval", "1"],
                                        cwd=ROOT),
        "webhook worker": subprocess.Popen([sys.executable, "-m", "flask", "deliver-webhooks", "--interval", "1"],
                                           cwd=ROOT),
    }
    status = 0
    try:
        base = f"http://{args.host}:{args.port}"
        if args.stripe:
            devenv.register_fake_stripe_webhook(fake_stripe_port, base + "/stripe/webhook")
        if not wait_until_healthy(base + "/healthz"):
            print("The app did not become healthy in time.", file=sys.stderr, flush=True)
            status = 1
        else:
            from webapp.services.demo import DEMO_ADMIN, DEMO_BUYER

            payments = (f"  Payments go to a fake Stripe (localstripe) on 127.0.0.1:{fake_stripe_port}\n"
                        if args.stripe else "")
            print(
                f"\n  Ticketbooth is ready at {base}\n"
                f"  Demo buyer: {DEMO_BUYER[0]} / {DEMO_BUYER[1]}\n"
                f"  Demo admin: {DEMO_ADMIN[0]} / {DEMO_ADMIN[1]}\n"
                f"  Mail is caught on 127.0.0.1:{smtp_port}: {base}/admin/dev/mail\n"
                f"{payments}"
                f"  Ctrl-C stops everything.\n",
                flush=True,
            )
            while status == 0:
                for name, child in [*children.items(), *([("redis", redis_server)] if redis_server else [])]:
                    if child.poll() is not None:
                        print(f"{name} exited with {child.returncode}; stopping.", file=sys.stderr, flush=True)
                        status = child.returncode or 1
                time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        print("\nStopping…", flush=True)
    finally:
        stop(children.values())
        # Last: the web workers count rate limits in it until they have stopped.
        stop([redis_server] if redis_server else [])
    return status


def stop(processes) -> None:
    processes = list(processes)
    for child in processes:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in processes:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def warn_limits_per_process(workers: int, reason: str) -> None:
    """Without Redis each gunicorn worker keeps its own rate-limit counters: say so where it is seen."""
    if os.environ.get("RATELIMIT_ENABLED", "1") != "1":
        return
    print(f"WARNING: {reason}, so each of the {workers} web worker processes counts rate limits on its own: "
          f"logins, sign-ups, reserving and the API get up to {workers} times their limits (and more with more "
          "hosts). Set REDIS_URL to count them together.", file=sys.stderr, flush=True)


def serve(args: argparse.Namespace) -> int:
    from config import database_url_from_env

    url = database_url_from_env()
    if not url:
        print("DATABASE_URL must be set.", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = url
    # Production serves over HTTPS: the session cookie only travels on it.
    os.environ.setdefault("SESSION_COOKIE_SECURE", "1")
    wait_for_database(url, timeout=args.db_timeout)
    migrate_and_seed(seed=os.environ.get("SEED_DEMO") == "1")
    if not os.environ.get("REDIS_URL"):
        warn_limits_per_process(args.workers, "REDIS_URL is not set")
    fresh_metrics_directory()
    command = gunicorn_command(args.host, args.port, args.workers, args.threads)
    os.execv(command[0], command)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.launcher")
    sub = parser.add_subparsers(dest="mode", required=True)
    for name in ("dev", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1" if name == "dev" else "0.0.0.0"))
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        p.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", 3)))
        p.add_argument("--threads", type=int, default=int(os.environ.get("WEB_THREADS", 4)))
        if name == "dev":
            p.add_argument("--no-seed", action="store_true", help="Skip the demo data.")
            p.add_argument("--stripe", action="store_true",
                           help="Pay through the Stripe gateway, against a local fake Stripe (localstripe).")
        else:
            p.add_argument("--db-timeout", type=float, default=60)
    args = parser.parse_args(argv)
    return dev(args) if args.mode == "dev" else serve(args)


if __name__ == "__main__":
    sys.exit(main())
