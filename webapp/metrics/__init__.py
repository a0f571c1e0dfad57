"""Prometheus metrics: what each request, reserve and gateway call did, and `/metrics` to scrape them.

Counters and histograms are recorded as things happen, in memory (one
process), or, when `PROMETHEUS_MULTIPROC_DIR` is set (gunicorn, set by the
launcher), in that directory's memory-mapped files, which the scrape sums
over every worker. Figures that need a query (live holds, tickets sold, the
waiting room's line, the outboxes' backlog, database connections) are read
only when Prometheus scrapes (`exposition.py`), never per request.

`/metrics` answers only with `Authorization: Bearer <METRICS_TOKEN>`; with
no token configured it does not exist (404).
"""
from __future__ import annotations

import hmac
import os
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram
from sqlalchemy import event

from webapp import logs
from webapp.extensions import db, limiter

bp = Blueprint("metrics", __name__)

# Seconds; the floor request is about a millisecond, a slow card four seconds.
_LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("tickets_http_requests", "Requests answered, by route (Flask endpoint), method and status",
                   ("route", "method", "status"))
LATENCY = Histogram("tickets_http_request_duration_seconds", "Time to answer a request, by route",
                    ("route",), buckets=_LATENCY_BUCKETS)
RESERVES = Counter("tickets_reserves", "Reserve attempts (pages and API): won, or the refusal's reason",
                   ("outcome",))
GATEWAY_CALLS = Counter("tickets_payment_gateway_calls", "Calls of the payment gateway, by call and outcome",
                        ("call", "outcome"))
GATEWAY_LATENCY = Histogram("tickets_payment_gateway_duration_seconds", "Time the payment gateway took, by call",
                            ("call",), buckets=_LATENCY_BUCKETS)
POOL_IN_USE = Gauge("tickets_db_pool_connections_in_use", "Pooled connections checked out, over live workers",
                    multiprocess_mode="livesum")
POOL_CAPACITY = Gauge("tickets_db_pool_connections_max", "Pool size plus overflow, over live workers",
                      multiprocess_mode="livesum")
POOL_TIMEOUTS = Counter("tickets_db_pool_timeouts", "Requests that found every pooled connection taken")

# The routes that reserve: their answers are counted as reserves too.
RESERVE_ENDPOINTS = frozenset({"shop.reserve", "shop.reserve_best", "api.reserve"})
UNMATCHED = "(unmatched)"
_NOT_TIMED = frozenset({"static", "metrics.scrape"})


def note_refusal(error: Exception) -> None:
    """Why this request's reserve was refused, for the reserve counter."""
    g.reserve_refusal = type(error).__name__


def register(app: Flask) -> None:
    """Count every request, reserve and gateway call of `app`, and serve `/metrics`."""
    app.register_blueprint(bp)
    _watch_the_pool(app)

    @app.after_request
    def count_request(response: Response) -> Response:
        endpoint = request.endpoint or UNMATCHED
        if endpoint in _NOT_TIMED:
            return response
        status = response.status_code
        REQUESTS.labels(endpoint, request.method, str(status)).inc()
        elapsed = logs.elapsed_seconds()
        if elapsed is not None:
            LATENCY.labels(endpoint).observe(elapsed)
        if endpoint in RESERVE_ENDPOINTS and request.method == "POST":
            refusal = g.get("reserve_refusal")
            RESERVES.labels(refusal or ("won" if status < 400 else f"http_{status}")).inc()
        return response


def _watch_the_pool(app: Flask) -> None:
    """Connections in use, kept by the pool's own events: no query, two gauge updates per checkout."""
    with app.app_context():
        engine = db.engine
        pool = engine.pool
        if getattr(pool, "_tickets_watched", False):
            return
        pool._tickets_watched = True  # type: ignore[attr-defined]
        POOL_CAPACITY.inc(app.config["DB_POOL_SIZE"] + app.config["DB_MAX_OVERFLOW"])
        event.listen(engine, "checkout", lambda *args: POOL_IN_USE.inc())
        event.listen(engine, "checkin", lambda *args: POOL_IN_USE.dec())


class MeteredGateway:
    """The app's payment gateway, with each call counted and timed; otherwise the gateway itself."""

    CALLS = ("authorise", "capture", "void", "retrieve", "refund")

    def __init__(self, gateway):
        self.gateway = gateway

    def __getattr__(self, name: str):
        target = getattr(self.gateway, name)
        if name not in self.CALLS:
            return target

        def metered(*args, **kwargs):
            started = time.perf_counter()
            outcome = "error"
            try:
                result = target(*args, **kwargs)
                outcome = "no_record" if result is None else (getattr(result, "status", None) or "ok")
                return result
            finally:
                GATEWAY_CALLS.labels(name, outcome).inc()
                GATEWAY_LATENCY.labels(name).observe(time.perf_counter() - started)

        return metered


def meter_gateway(app: Flask) -> None:
    """Wrap the gateway `gateways.init_app` installed, once."""
    current = app.extensions["payment_gateway"]
    if not isinstance(current, MeteredGateway):
        app.extensions["payment_gateway"] = MeteredGateway(current)


def _authorised() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or ""
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@bp.get("/metrics")
@limiter.exempt
def scrape():
    if not _authorised():
        return Response("A bearer token is needed.\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'},
                        mimetype="text/plain")
    from webapp.metrics import exposition

    body = exposition.render(multiprocess_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
