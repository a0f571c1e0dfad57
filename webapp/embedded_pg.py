"""A throwaway PostgreSQL for development and tests, via `pgserver`.

pgserver ships PostgreSQL binaries in a wheel and runs them as an
unprivileged user (PostgreSQL refuses root), on a Unix socket only. The
server stops when the last process that opened it exits normally, so
long-running holders turn SIGTERM into a normal exit (see `exit_on_sigterm`).
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import pgserver
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import normalise_database_url

# Enough connections for several workers x threads, the sweep, tests that
# race 200 connections, and the load benchmark.
SETTINGS = {"max_connections": "500", "shared_buffers": "256MB"}
# Throwaway data: durability buys nothing in tests, and costs fsyncs.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def start(datadir: Path, *, throwaway: bool = False, settings: dict[str, str] | None = None
          ) -> pgserver.PostgresServer:
    """Start (or join) the server in `datadir` with our settings (and `settings`) applied."""
    datadir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(datadir, cleanup_mode="stop")
    wanted = dict(SETTINGS, **(FAST_SETTINGS if throwaway else {}), **(settings or {}))
    engine = create_engine(url_of(server), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        current = {k: conn.execute(text(f"SHOW {k}")).scalar_one() for k in wanted}
        stale = {k: v for k, v in wanted.items() if current[k] != v}
        for key, value in stale.items():
            conn.execute(text(f"ALTER SYSTEM SET {key} = '{value}'"))
    engine.dispose()
    if stale:
        # max_connections needs a restart: stop our handle, start afresh.
        server.cleanup()
        server = pgserver.get_server(datadir, cleanup_mode="stop")
    return server


def stop_for_a_while(server: pgserver.PostgresServer) -> None:
    """Shut the server down as an operator's restart would (fast: sessions are cut)."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def start_again(server: pgserver.PostgresServer) -> None:
    """Start a server stopped by `stop_for_a_while`, on the same socket; returns once it takes connections."""
    server.ensure_postgres_running()


def url_of(server: pgserver.PostgresServer, database: str = "postgres") -> str:
    return normalise_database_url(server.get_uri(database))


def create_database(server_url: str, name: str, *, drop_first: bool = False) -> str:
    """Create database `name` on the server; returns its URL."""
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if drop_first:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit so the server's cleanup runs."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
