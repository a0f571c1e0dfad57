"""Contract tests of the API from its own OpenAPI document (Schemathesis), against the live app, bounded in count.

The app serves on a real socket on 127.0.0.1 for the module; every
operation of the document gets generated requests (valid and invalid) with
an admin token over a small shop (a GA event, a seated event, an order), and
every answer must be a non-5xx that the document describes: its status, its
content type, its body's schema and its documented headers.
"""
from __future__ import annotations

import threading

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from config import TestConfig
from webapp import create_app
from webapp.api import spec
from webapp.services.people import api_tokens

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]

# The document needs no database: it is drawn from the routes and schemas alone.
_DOCUMENT = spec.build(create_app({"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://u@127.0.0.1:1/none"},
                                  config_class=TestConfig))
schema = schemathesis.openapi.from_dict(_DOCUMENT)


@pytest.fixture(scope="module")
def live_url(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def shop(factory, session):
    """A little of everything, so generated ids sometimes hit real rows (ids restart at 1 in every test)."""
    ga = factory.ga_event(20, tiers=2)
    factory.seated_event(2, 4)
    factory.order(ga, factory.user())
    admin = factory.user(is_admin=True)
    secret = api_tokens.create(session, user_id=admin.id, is_admin=True, name="contract", scope="admin").secret
    session.commit()
    return secret


def test_the_served_document_is_the_one_tested(client):
    assert client.get("/api/openapi.json").get_json() == _DOCUMENT


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_conforms_to_the_document(case, shop, live_url):
    case.call_and_validate(base_url=live_url, headers={"Authorization": f"Bearer {shop}"}, checks=CHECKS)
