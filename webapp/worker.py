"""The loop every background worker runs (sweep, mail, webhooks): passes until told to stop."""
from __future__ import annotations

import logging
import signal
import threading
import time

from webapp.extensions import db

# Set by SIGTERM or Ctrl-C: a long pass may look at it and stop early, leaving its work for the next.
_stopping = threading.Event()


def stop_requested() -> bool:
    return _stopping.is_set()


def run_passes(one_pass, *, once: bool, interval: float, failure: str, log: logging.Logger) -> None:
    """A worker loop: passes every `interval` seconds until SIGTERM or Ctrl-C.

    `one_pass()` returns True when more work is waiting (the next pass starts
    at once). A failed pass (the database away, say) is rolled back and
    logged, and the next one tries again; a signal ends the loop between
    passes. A pass that can stop cleanly in its middle asks `stop_requested()`
    (the mail worker does, between messages: a batch of fifty confirmations
    to render and send outlasts a service manager's stop timeout).
    """
    _stopping.clear()

    def stop(signum, frame):
        _stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        busy = False
        try:
            busy = one_pass()
        except Exception:
            db.session.rollback()
            log.exception(failure)
        if once or _stopping.is_set():
            break
        deadline = time.monotonic() + (0 if busy else interval)
        while not _stopping.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
    db.session.remove()
