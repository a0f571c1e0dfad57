"""Peak memory of the attendee export, measured on a real PostgreSQL.

    .venv/bin/python -m tests.measure_export [--tickets 50000]

Starts a throwaway PostgreSQL, sells the tickets in bulk, then runs
`flask export-attendees` in a child process for an event with no tickets and
for the full one, and reports each child's peak resident memory (ru_maxrss).
The difference is what the export itself costs.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child_peak_rss(cmd: list[str], env: dict) -> tuple[float, float]:
    """Run cmd; its peak RSS in MB (Linux reports kB) and wall time in seconds."""
    started = time.perf_counter()
    pid = subprocess.Popen(cmd, cwd=ROOT, env=env).pid
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed with status {status}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=50_000)
    args = parser.parse_args()

    from flask_migrate import upgrade

    from config import TestConfig
    from tests.factories import Factory
    from tests.support import sell_in_bulk
    from webapp import create_app, embedded_pg
    from webapp.extensions import db

    workdir = Path(tempfile.mkdtemp(prefix="export-measure-", dir="/tmp"))
    server = embedded_pg.start(workdir / "data", throwaway=True)
    try:
        url = embedded_pg.create_database(embedded_pg.url_of(server), "export_measure", drop_first=True)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url}, config_class=TestConfig)
        with app.app_context():
            upgrade()
            factory = Factory(db.session)
            empty = factory.ga_event(capacity=10, title="Nothing sold")
            full = factory.ga_event(capacity=args.tickets, title="Sold out", price_minor=2500)
            sell_in_bulk(db.session, full, factory.tier(full))
            ids = (empty.id, full.id)
            db.session.remove()
            db.engine.dispose()

        env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="measure", FLASK_APP="wsgi.py", LOG_LEVEL="WARNING")
        out = workdir / "attendees.csv"
        base, _ = child_peak_rss([sys.executable, "-m", "flask", "export-attendees", str(ids[0]), "-o", str(out)], env)
        peak, seconds = child_peak_rss(
            [sys.executable, "-m", "flask", "export-attendees", str(ids[1]), "-o", str(out)], env)
        lines = sum(1 for _ in out.open(encoding="utf-8")) - 1
        print(f"{lines:,} tickets, {out.stat().st_size / 1e6:.1f} MB CSV in {seconds:.1f}s;"
              f" peak RSS {peak:.1f} MB (same command on an event with no tickets: {base:.1f} MB,"
              f" so the export itself adds {peak - base:.1f} MB)")
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
