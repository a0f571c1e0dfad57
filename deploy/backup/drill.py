"""The restore drill: a base backup and the WAL archive, replayed to a point in time in a fresh node, then checked.

    sudo .venv/bin/python deploy/backup/drill.py --base /backups/base/2026-12-07 \\
        --archive /backups/wal --target-time '2026-12-07 04:10:00+00' --dir /tmp/restored --port 25999

Backups are PostgreSQL's own: `pg_basebackup` (a copy of the data folder,
taken from the running primary or standby) plus `archive_command`, which
copies every finished WAL segment to the archive (deploy/cluster/patroni.yml).
Together they restore to any moment after the base backup. The drill makes a
new data folder from the base backup, has it replay the archive up to
--target-time (`recovery_target_time`, then promote), starts it on --port as
the postgres user, and runs the invariant checker on every event. It leaves
the node running (--stop stops it at the end) and prints what it found;
exits 1 if the checker found a violation.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def as_postgres(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([RUNUSER, "-u", "postgres", "--", *argv], check=True, capture_output=True, text=True,
                          **kwargs)


def restore(base: Path, archive: Path, target_time: str, data_dir: Path, port: int) -> None:
    """A fresh node from `base`, recovered from `archive` to `target_time`, started and promoted."""
    if data_dir.exists():
        raise SystemExit(f"{data_dir} exists: the drill restores into a fresh folder")
    shutil.copytree(base, data_dir)
    for leftover in ("postmaster.pid", "standby.signal"):
        (data_dir / leftover).unlink(missing_ok=True)
    sockets = data_dir / "sockets"
    sockets.mkdir()
    with open(data_dir / "postgresql.auto.conf", "a") as conf:
        conf.write(f"""
# The restore drill
restore_command = 'cp {archive}/%f %p'
recovery_target_time = '{target_time}'
recovery_target_action = 'promote'
port = {port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sockets}'
archive_mode = off
hba_file = '{data_dir}/pg_hba.conf'
ident_file = '{data_dir}/pg_ident.conf'
""")
    # A drill node takes local connections only, trusted: it is checked, not served.
    (data_dir / "pg_hba.conf").write_text("local all all trust\n")
    (data_dir / "recovery.signal").touch()
    subprocess.run(["chown", "-R", "postgres:postgres", str(data_dir)], check=True)
    data_dir.chmod(0o700)
    as_postgres(str(PG_BIN / "pg_ctl"), "start", "-w", "-t", "120", "-D", str(data_dir), "-l",
                str(data_dir / "restore.log"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        answer = subprocess.run([RUNUSER, "-u", "postgres", "--", "psql", "-h", str(sockets), "-p", str(port),
                                 "-d", "postgres", "-Atc", "SELECT pg_is_in_recovery()"],
                                capture_output=True, text=True)
        if answer.stdout.strip() == "f":
            return
        time.sleep(0.5)
    raise SystemExit(f"the restored node did not finish recovery; see {data_dir / 'restore.log'}")


def stop(data_dir: Path) -> None:
    as_postgres(str(PG_BIN / "pg_ctl"), "stop", "-m", "fast", "-D", str(data_dir))


def check(url: str) -> dict[int, list[str]]:
    """The invariant checker on every event of the restored database: violations by event (none: empty lists)."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    from config import TestConfig, normalise_database_url
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Event
    from webapp.services.invariants import check_event

    app = create_app({"SQLALCHEMY_DATABASE_URI": normalise_database_url(url)}, config_class=TestConfig)
    with app.app_context():
        found = {event_id: check_event(db.session, event_id)
                 for event_id in db.session.scalars(select(Event.id).order_by(Event.id))}
        db.session.remove()
        db.engine.dispose()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="a pg_basebackup folder (plain format)")
    parser.add_argument("--archive", type=Path, required=True, help="the WAL archive folder")
    parser.add_argument("--target-time", required=True, help="e.g. '2026-12-07 04:10:00+00'")
    parser.add_argument("--dir", type=Path, required=True, help="the new node's data folder (must not exist)")
    parser.add_argument("--port", type=int, default=25999)
    parser.add_argument("--database", default="ticketbooth")
    parser.add_argument("--stop", action="store_true", help="stop the restored node when done")
    args = parser.parse_args(argv)
    restore(args.base, args.archive, args.target_time, args.dir, args.port)
    try:
        found = check(f"postgresql://postgres@/{args.database}?host={args.dir / 'sockets'}&port={args.port}")
    finally:
        if args.stop:
            stop(args.dir)
    for event_id, problems in found.items():
        print(f"event {event_id}: {'ok' if not problems else '; '.join(problems)}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
