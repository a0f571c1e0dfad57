"""A request that waited in the server's queue longer than its budget is answered 503 + Retry-After."""
from __future__ import annotations

import time

import pytest

from config import TestConfig
from webapp import create_app
from webapp.overload import queued_seconds


@pytest.mark.parametrize("header, expected", [
    ("t=1767000000.5", 2.0), ("t=1767000000500", 2.0), ("t=1767000000500000", 2.0), ("1767000000.5", 2.0),
    ("t=1767000010", 0.0),  # from the future: no wait
    ("", None), ("t=abc", None), ("t=-5", None), (None, None),
])
def test_the_header_in_every_form_a_proxy_writes(header, expected):
    assert queued_seconds(header, 1767000002.5) == expected


def test_over_budget_is_503_with_retry_after_and_within_budget_is_served(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "QUEUE_BUDGET_MS": 500}, config_class=TestConfig)
    client = app.test_client()
    late = client.get("/healthz", headers={"X-Request-Start": f"t={time.time() - 2:.3f}"})
    assert late.status_code == 503 and late.headers["Retry-After"] == "2"
    assert "busy" in late.get_data(as_text=True)
    partial = client.get("/", headers={"X-Request-Start": f"t={int((time.time() - 2) * 1e6)}", "HX-Request": "true"})
    assert partial.status_code == 503 and partial.headers["HX-Retarget"] == "#flash"
    on_time = client.get("/healthz", headers={"X-Request-Start": f"t={time.time() - 0.1:.3f}"})
    assert on_time.status_code == 200
    assert client.get("/healthz").status_code == 200  # no header: not measured
