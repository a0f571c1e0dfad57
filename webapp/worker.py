"""The loop every background worker runs (sweep, mail, webhooks): passes until told to stop."""
from __future__ import annotations

import logging
import signal
import time

from webapp.extensions import db


def run_passes(one_pass, *, once: bool, interval: float, failure: str, log: logging.Logger) -> None:
    """A worker loop: passes every `interval` seconds until SIGTERM or Ctrl-C.

    `one_pass()` returns True when more work is waiting (the next pass starts
    at once). A failed pass (the database away, say) is rolled back and
    logged, and the next one tries again; a signal ends the loop between
    passes, never in the middle of one.
    """
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        busy = False
        try:
            busy = one_pass()
        except Exception:
            db.session.rollback()
            log.exception(failure)
        if once or stopping:
            break
        deadline = time.monotonic() + (0 if busy else interval)
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
    db.session.remove()
