"""gunicorn's hooks (`--config python:webapp.gunicorn_conf`): a dead worker's live gauges stop counting.

Counters and histograms of a worker that exited stay in the metrics
directory and keep counting (they happened); its "live" gauges, such as its
pool's connections in use, must not.
"""
from __future__ import annotations

import os


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
