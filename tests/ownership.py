"""Who writes unit rows: only the package `webapp/services/selling/inventory/` may.

Two checks use this. `tests/test_architecture.py` reads the source; the
root conftest watches every SQL statement of the test run
(`before_cursor_execute`) and, for each one that writes `units`, finds the
innermost project frame that issued it: an ORM flush, raw SQL or a bulk
insert from any other module of `webapp/` is reported. Test code itself
(bulk setup in `tests/`) may write units; it is not the app.

A statement may also write units (or the holds that own them) through a SQL
function: the reserve functions and the ones they call. Both checks learn
those from the migrated database (`sql_writers`), so a function added by a
later migration is watched without anyone listing it here.
"""
from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine

ROOT = Path(__file__).resolve().parent.parent
OWNER = ROOT / "webapp" / "services" / "selling" / "inventory"
APP = ROOT / "webapp"
TESTS = ROOT / "tests"
# What writes unit rows in SQL, as raw text or as SQLAlchemy renders ORM writes.
UNIT_WRITE = re.compile(r"^\s*(UPDATE\s+units\b|INSERT\s+INTO\s+units\b|DELETE\s+FROM\s+units\b)", re.I)
# What, in a SQL function's body, writes units or holds.
_BODY_WRITES = re.compile(r"\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+(units|holds)\b", re.I)
_FUNCTIONS = text(
    "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname = current_schema()"
)


def owned_by_inventory(path: Path) -> bool:
    return path.is_relative_to(OWNER)


def sql_writers(connection: Connection) -> set[str]:
    """The database's own functions that write units or holds, directly or by calling one that does."""
    bodies: dict[str, str] = {}
    for name, body in connection.execute(_FUNCTIONS).all():
        bodies[name] = bodies.get(name, "") + "\n" + (body or "")  # overloads share a name
    writers = {name for name, body in bodies.items() if _BODY_WRITES.search(body)}
    while True:
        calls = {name for name, body in bodies.items() if name not in writers
                 and any(re.search(rf"\b{w}\s*\(", body) for w in writers)}
        if not calls:
            return writers
        writers |= calls


def calls_of(names: set[str]) -> re.Pattern | None:
    """A statement (or a line of source) that calls one of these SQL functions."""
    if not names:
        return None
    return re.compile(r"\b(" + "|".join(sorted(names)) + r")\b", re.I)


def writer_of_this_statement() -> Path | None:
    """The innermost frame of the app or the tests on the current stack."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path != Path(__file__).resolve() and (path.is_relative_to(APP) or path.is_relative_to(TESTS)):
            return path
        frame = frame.f_back
    return None


class Guard:
    """Collects unit writes made from outside inventory, from every thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: list[str] = []
        self._installed = False
        self._sql_writers: re.Pattern | None = None

    def start(self) -> None:
        if not self._installed:
            event.listen(Engine, "before_cursor_execute", self._check)
            self._installed = True
        self.take()

    def learn_sql_writers(self, engine: Engine) -> set[str]:
        """Watch calls of the database's functions that write units or holds, once it is migrated."""
        with engine.connect() as connection:
            names = sql_writers(connection)
        self._sql_writers = calls_of(names)
        return names

    def take(self) -> list[str]:
        with self._lock:
            found, self._found = self._found, []
        return found

    def _writes(self, statement: str) -> bool:
        return bool(UNIT_WRITE.match(statement) or (self._sql_writers and self._sql_writers.search(statement)))

    def _check(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not self._writes(statement):
            return
        writer = writer_of_this_statement()
        if writer is None or owned_by_inventory(writer) or writer.is_relative_to(TESTS):
            return
        with self._lock:
            self._found.append(f"{writer.relative_to(ROOT)}: {statement.split(chr(10))[0][:120]}")


GUARD = Guard()
