"""What `/metrics` answers: the recorded counters, plus figures read from the database at scrape time.

The database figures are the shop's state rather than its traffic, so they
are read once per scrape (every 15 s or so), on indexes, for events on sale
only: a scrape's cost does not grow with the number of past events.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db

log = logging.getLogger(__name__)

# One statement, one round trip; each part walks an index (partial where one exists).
_STATE = text("""
    SELECT 'holds' AS what, h.event_id, count(*) AS n FROM holds h
      WHERE h.status = 'active' AND h.expires_at > now() GROUP BY h.event_id
    UNION ALL
    SELECT 'sold', u.event_id, count(*) FROM units u JOIN events e ON e.id = u.event_id
      WHERE e.status = 'on_sale' AND u.status = 'sold' GROUP BY u.event_id
    UNION ALL
    SELECT 'capacity', u.event_id, count(*) FROM units u JOIN events e ON e.id = u.event_id
      WHERE e.status = 'on_sale' GROUP BY u.event_id
    UNION ALL
    SELECT 'mail', NULL, count(*) FROM outbox_messages WHERE sent_at IS NULL AND failed_at IS NULL
    UNION ALL
    SELECT 'webhooks', NULL, count(*) FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL
""")
_ROOMS = text("""
    SELECT r.event_id, greatest(0, r.issued - r.served - r.left_count) AS waiting, r.admitted_total,
           coalesce(r.admit_rate, 0) AS admit_rate
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id WHERE r.enabled AND e.status = 'on_sale'
""")
_CONNECTIONS = text("""
    SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
    WHERE backend_type = 'client backend' GROUP BY 1
    UNION ALL SELECT 'max', setting::int FROM pg_settings WHERE name = 'max_connections'
""")


class ShopState(Collector):
    """The database's figures, read when collected."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("tickets_metrics_database_up", "1 when this scrape could read the database")
        try:
            with db.engine.connect() as connection:
                connection.execute(text("SET LOCAL statement_timeout = '2s'"))
                state = connection.execute(_STATE).all()
                rooms = connection.execute(_ROOMS).all()
                connections = connection.execute(_CONNECTIONS).all()
                connection.rollback()
        except SQLAlchemyError as error:
            log.warning("metrics.database_unreadable", extra={"error": str(error).splitlines()[0][:200]})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _state_families(state)
        yield from _room_families(rooms)
        yield from _connection_families(connections)


def _state_families(rows) -> Iterator[Metric]:
    families = {
        "holds": GaugeMetricFamily("tickets_live_holds", "Holds active and not yet run out, per event",
                                   labels=["event_id"]),
        "sold": GaugeMetricFamily("tickets_sold", "Units sold, per event on sale", labels=["event_id"]),
        "capacity": GaugeMetricFamily("tickets_capacity", "Units in all, per event on sale", labels=["event_id"]),
    }
    backlog = GaugeMetricFamily("tickets_outbox_backlog", "Messages not yet delivered (nor given up on)",
                                labels=["outbox"])
    for what, event_id, n in rows:
        if what in families:
            families[what].add_metric([str(event_id)], n)
        else:
            backlog.add_metric([what], n)
    yield from families.values()
    yield backlog


def _room_families(rows) -> Iterator[Metric]:
    line = GaugeMetricFamily("tickets_waiting_room_line", "People waiting in the room, per event",
                             labels=["event_id"])
    admitted = CounterMetricFamily("tickets_waiting_room_admitted", "People let in from the room, per event",
                                   labels=["event_id"])
    rate = GaugeMetricFamily("tickets_waiting_room_admit_rate_per_minute",
                             "Admissions per minute, as the room measures them", labels=["event_id"])
    for event_id, waiting, admitted_total, admit_rate in rows:
        line.add_metric([str(event_id)], waiting)
        admitted.add_metric([str(event_id)], admitted_total)
        rate.add_metric([str(event_id)], admit_rate)
    yield from (line, admitted, rate)


def _connection_families(rows) -> Iterator[Metric]:
    connections = GaugeMetricFamily("tickets_db_server_connections",
                                    "PostgreSQL client connections by state; 'max' is max_connections",
                                    labels=["state"])
    for state, n in rows:
        connections.add_metric([state], n)
    yield connections


def render(*, multiprocess_dir: str | None) -> bytes:
    """The text format Prometheus reads: every worker's recorded metrics, then the database's."""
    if multiprocess_dir:
        recorded = CollectorRegistry()
        MultiProcessCollector(recorded, path=multiprocess_dir)
    else:
        recorded = REGISTRY
    state = CollectorRegistry()
    state.register(ShopState())
    return generate_latest(recorded) + generate_latest(state)
