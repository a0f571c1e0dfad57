"""The text of the database's SQL functions, for migrations to load.

`sql/<name>.sql` is function <name> as a database migrated to head has it;
`sql/history/<name>.<revision>.sql` is an older version, frozen, named after
the revision that created it. How to change a function: migrations/README.

Not a migration: Alembic reads only `versions/`. The files are read when a
migration runs, not when Alembic imports it to walk the chain.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

SQL = Path(__file__).resolve().parent / "sql"
HISTORY = SQL / "history"

_DEFINES = re.compile(r"^CREATE OR REPLACE FUNCTION (\w+)\(", re.M)


def current(name: str, digest: str) -> str:
    """Function `name` as at head, for the newest migration that defines it.

    `digest`: the first 12 hex digits of the file's SHA-256 when that
    migration was written. A file edited without a new migration would reach
    new databases and never the ones already at head; this refuses it, so
    the edit is made the way migrations/README says (freeze, point, edit,
    load from a new migration).
    """
    text = _read(SQL / f"{name}.sql", name)
    found = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    if found != digest:
        raise ValueError(
            f"migrations/sql/{name}.sql changed (digest {found}, the migration loading it expects {digest}):"
            " freeze its old text under migrations/sql/history/, point the older migration at that copy, and"
            " load the new text from a new migration (see migrations/README)")
    return text


def frozen(name: str, revision: str) -> str:
    """Function `name` as `revision` created it, for that migration and for a newer one's downgrade."""
    return _read(HISTORY / f"{name}.{revision}.sql", name)


def _read(path: Path, name: str) -> str:
    text = path.read_text(encoding="utf-8")
    # A file named after one function but creating another (or two) would
    # leave the database and the files out of step without any error.
    defined = _DEFINES.findall(text)
    if defined != [name]:
        raise ValueError(f"{path} must create or replace {name} and nothing else; it defines {defined}")
    return text
