"""The templates' helpers: the same output as Flask's own, only cheaper."""
from __future__ import annotations

import pytest
from flask import url_for


def test_the_templates_url_for_keeps_each_address_for_its_request_root_host_and_values(app):
    """Every address the templates' `url_for` gives equals Flask's for the same request, however the
    request differs (script root, host, scheme), and the ones it cannot key (external, anchored,
    relative, a bool value) are Flask's own."""
    kept = app.jinja_env.globals["url_for"]
    calls = [
        ("shop.waiting_room_status", {"event_id": 7}),
        ("shop.waiting_room_status", {"event_id": 8}),
        ("auth.login_get", {"next": "/events/7?x=1"}),
        ("auth.login_get", {"next": None}),
        ("static", {"filename": "app.css"}),
        ("shop.event_page", {"event_id": 7, "utm": "mail"}),
        ("shop.event_page", {"event_id": 7, "flag": True}),
        ("shop.event_page", {"event_id": 7, "flag": 1}),
        ("shop.event_page", {"event_id": 7, "_external": True}),
        ("shop.event_page", {"event_id": 7, "_anchor": "tickets"}),
        (".waiting_room_page", {"event_id": 7}),
    ]
    requests = [
        {"path": "/events/7/waiting-room"},
        {"path": "/events/7/waiting-room", "base_url": "http://localhost/shop/"},
        {"path": "/events/7/waiting-room", "base_url": "http://tickets.test/shop/"},
        {"path": "/events/7/waiting-room", "base_url": "https://other.example/"},
        {"path": "/"},
    ]
    for request in requests * 2:  # the second time round, from what was kept
        with app.test_request_context(**request):
            for endpoint, values in calls:
                assert kept(endpoint, **values) == url_for(endpoint, **values), (request, endpoint, values)
    with app.test_request_context("/events/7/waiting-room", base_url="http://tickets.test/shop/"):
        assert kept("shop.waiting_room_status", event_id=7) == "/shop/events/7/waiting-room/status"
    with app.app_context():  # no request: Flask's own answer (here, without SERVER_NAME, its refusal)
        with pytest.raises(RuntimeError, match="SERVER_NAME"):
            kept("shop.event_page", event_id=7)
