"""The restore drill (deploy/backup/drill.py): sell, back up, sell more, restore to a moment in between.

A PostgreSQL 15 node of Debian's own with WAL archiving on, as the cluster's
nodes run it; the shop migrated and selling on it; a base backup with
pg_basebackup; more orders before and after a noted moment; then the drill
restores the backup, replays the archive to that moment in a fresh node, and
the counts and the invariant checker are compared. Skipped without
`postgresql-15` or root (PostgreSQL runs as the postgres user).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from config import TestConfig
from tests.factories import Factory
from tests.support import free_port
from webapp import create_app
from webapp.extensions import db
from webapp.models import Event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy" / "backup"))

import drill  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (drill.PG_BIN / "postgres").exists(),
                       reason="Debian's PostgreSQL 15 is not installed (apt-get install postgresql-15)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="runs PostgreSQL as the postgres user, which needs root"),
]


@pytest.fixture
def primary():
    """A primary archiving every WAL segment, the shop migrated on it."""
    work = Path(tempfile.mkdtemp(prefix="tickets-drill-", dir="/tmp"))
    work.chmod(0o755)
    shutil.chown(work, "postgres", "postgres")  # its logs and the base backup are written by postgres
    data, archive, sockets = work / "primary", work / "archive", work / "sockets"
    for folder in (data, archive, sockets):
        folder.mkdir()
        shutil.chown(folder, "postgres", "postgres")
    data.chmod(0o700)
    port = free_port()
    drill.as_postgres(str(drill.PG_BIN / "initdb"), "-D", str(data), "--auth-local=trust", "--auth-host=trust",
                      "-U", "postgres")
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sockets}'\n"
                   f"wal_level = replica\narchive_mode = on\n"
                   f"archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n")
    drill.as_postgres(str(drill.PG_BIN / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(work / "primary.log"))
    server = f"postgresql+psycopg2://postgres@127.0.0.1:{port}/"
    admin = create_engine(server + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE ticketbooth"))
    admin.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": server + "ticketbooth"}, config_class=TestConfig)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    try:
        yield app, server, work, port
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        for node in (data, work / "restored"):
            if (node / "postmaster.pid").exists():
                subprocess.run([drill.RUNUSER, "-u", "postgres", "--", str(drill.PG_BIN / "pg_ctl"), "stop",
                                "-m", "fast", "-D", str(node)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _sell(app, event_id: int, count: int) -> None:
    with app.app_context():
        factory = Factory(db.session)
        event = db.session.get(Event, event_id)
        for _ in range(count):
            factory.order(event)
        db.session.commit()
        db.session.remove()


def _orders(url: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM orders WHERE status = 'confirmed'")).scalar_one()
    engine.dispose()
    return count


def test_a_backup_restored_to_a_moment_holds_exactly_what_was_sold_by_then(primary):
    app, server, work, port = primary
    with app.app_context():
        event = Factory(db.session).ga_event(capacity=100, per_buyer_limit=100)
        event_id = event.id
        db.session.commit()
        db.session.remove()
    _sell(app, event_id, 5)
    base = work / "base"
    drill.as_postgres("pg_basebackup", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-D", str(base),
                      "-X", "stream", "-c", "fast")
    _sell(app, event_id, 4)
    engine = create_engine(server + "ticketbooth")
    with engine.connect() as conn:
        moment = conn.execute(text("SELECT now()::text")).scalar_one()
    time.sleep(1.0)
    _sell(app, event_id, 3)
    with engine.connect() as conn:
        # The segment holding the last sales is finished and archived: the drill has it all to replay.
        segment = conn.execute(text("SELECT pg_walfile_name(pg_current_wal_lsn())")).scalar_one()
        conn.execute(text("SELECT pg_switch_wal()"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            archived = conn.execute(text("SELECT last_archived_wal FROM pg_stat_archiver")).scalar()
            if archived and archived >= segment:
                break
            time.sleep(0.2)
    engine.dispose()
    assert _orders(server + "ticketbooth") == 12

    restored, restored_port = work / "restored", free_port()
    drill.restore(base, work / "archive", moment, restored, restored_port)
    url = f"postgresql+psycopg2://postgres@/ticketbooth?host={restored / 'sockets'}&port={restored_port}"
    assert _orders(url) == 9  # the 5 in the base backup and the 4 before the moment, none after
    found = drill.check(url)
    assert found == {event_id: []}
