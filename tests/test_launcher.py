"""The start-up script that the container runs (and ./run-app wraps), exercised outside Docker."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

import psutil
import pytest
from sqlalchemy import create_engine, text

from tests.support import free_port
from webapp.launcher import ROOT, wait_until_healthy

pytestmark = pytest.mark.slow


def start(mode: str, url: str, port: int, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url.replace("postgresql+psycopg2://", "postgresql://"),
               SECRET_KEY="launcher-test-secret", LOG_LEVEL="WARNING")
    return subprocess.Popen(
        [sys.executable, "-m", "webapp.launcher", mode, "--port", str(port), "--workers", "1", "--threads", "2",
         *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def stop(proc: subprocess.Popen, sig: int) -> str:
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=30)
    return output


def test_entrypoint_migrates_an_empty_database_then_serves(empty_database):
    port = free_port()
    proc = start("serve", empty_database, port)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)
        engine = create_engine(empty_database)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 0  # no demo data in production
        engine.dispose()
    finally:
        stop(proc, signal.SIGTERM)
    assert proc.returncode == 0


def test_dev_stack_seeds_demo_data_and_stops_cleanly_on_ctrl_c(empty_database):
    port = free_port()
    proc = start("dev", empty_database, port)
    try:
        assert wait_until_healthy(f"http://127.0.0.1:{port}/healthz", timeout=60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
        assert "Vienna Philharmonic" in page and "Riverside Summer Festival" in page
    finally:
        output = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, output
    assert "Demo buyer: buyer@example.com" in output
    # Every child (gunicorn master and workers, the sweep) is gone.
    bind = f"127.0.0.1:{port}"
    leftover = [p.pid for p in psutil.process_iter(["cmdline"]) if bind in " ".join(p.info["cmdline"] or [])]
    assert leftover == []
