"""gunicorn's hooks (`--config python:webapp.gunicorn_conf`): a dead worker's live gauges stop counting;
the access log (ACCESS_LOG=1) holds no secret.

Counters and histograms of a worker that exited stay in the metrics
directory and keep counting (they happened); its "live" gauges, such as its
pool's connections in use, must not.
"""
from __future__ import annotations

import os
import sys

from gunicorn.glogging import Logger

from webapp.logs import path_for_logs


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class AccessLogger(Logger):
    """gunicorn's access lines without the secrets a URL can carry: a link's token in its path (logged as
    its rule, `/password/reset/<token>`, as the app's own access line does), the query string (an access
    code) and the referrer (the page before may have been such a link)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        app = getattr(sys.modules.get("wsgi"), "app", None)
        path = path_for_logs(app, atoms["m"], environ.get("PATH_INFO", "")) if app is not None else "-"
        atoms.update({"r": f"{atoms['m']} {path} {atoms['H']}", "U": path, "q": "", "f": "-"})
        return atoms


logger_class = AccessLogger
