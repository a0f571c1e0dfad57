"""Who writes unit rows: only `webapp/services/selling/inventory.py` may.

Two checks use this. `tests/test_architecture.py` reads the source; the
root conftest watches every SQL statement of the test run
(`before_cursor_execute`) and, for each one that writes `units`, finds the
innermost project frame that issued it: an ORM flush, raw SQL or a bulk
insert from any other module of `webapp/` is reported. Test code itself
(bulk setup in `tests/`) may write units; it is not the app.
"""
from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
OWNER = ROOT / "webapp" / "services" / "selling" / "inventory.py"
APP = ROOT / "webapp"
TESTS = ROOT / "tests"
# What writes unit rows in SQL, as raw text or as SQLAlchemy renders ORM writes.
UNIT_WRITE = re.compile(r"^\s*(UPDATE\s+units\b|INSERT\s+INTO\s+units\b|DELETE\s+FROM\s+units\b)", re.I)


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

    def start(self) -> None:
        if not self._installed:
            event.listen(Engine, "before_cursor_execute", self._check)
            self._installed = True
        self.take()

    def take(self) -> list[str]:
        with self._lock:
            found, self._found = self._found, []
        return found

    def _check(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not UNIT_WRITE.match(statement):
            return
        writer = writer_of_this_statement()
        if writer is None or writer == OWNER or writer.is_relative_to(TESTS):
            return
        with self._lock:
            self._found.append(f"{writer.relative_to(ROOT)}: {statement.split(chr(10))[0][:120]}")


GUARD = Guard()
