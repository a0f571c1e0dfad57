"""The floor: a bare Flask app, the cheapest requests this stack can serve.

It runs under the project's own gunicorn command line (the launcher's,
with only the WSGI app swapped: see `harness.floor_command`), with the same
workers and threads, against the same PostgreSQL. Two routes:

- `GET /text`: a short text, no database;
- `GET /select1`: `SELECT 1` on a pooled psycopg2 connection (a pool per
  worker, sized to its threads; autocommit, so it is one round trip).

Every figure of the benchmark and the cost table is stated as a multiple of
these, measured in the same run. Started by `Stack(floor=True)`; it reads
DATABASE_URL and DB_POOL_SIZE from the environment the stack gives it.
"""
from __future__ import annotations

import os
import threading

import psycopg2.pool
from flask import Flask

app = Flask(__name__)

_pool: psycopg2.pool.ThreadedConnectionPool | None = None
_pool_lock = threading.Lock()


def _dsn() -> str:
    url = os.environ["DATABASE_URL"]
    for prefix in ("postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def pool() -> psycopg2.pool.ThreadedConnectionPool:
    # Made on first use, in the worker: connections must not cross a fork.
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                size = int(os.environ.get("DB_POOL_SIZE", "4"))
                # minconn = maxconn: psycopg2's pool closes a returned
                # connection once it holds minconn, so a smaller minconn
                # would mean a new connection (and backend) per request.
                _pool = psycopg2.pool.ThreadedConnectionPool(size, size, dsn=_dsn(), application_name="floor")
    return _pool


@app.get("/text")
def text():
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/select1")
def select1():
    conn = pool().getconn()
    try:
        if not conn.autocommit:
            conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            value = cur.fetchone()[0]
    finally:
        pool().putconn(conn)
    return f"{value}\n", 200, {"Content-Type": "text/plain; charset=utf-8"}


@app.get("/healthz")
def healthz():
    return "ok\n"
