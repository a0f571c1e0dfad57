"""The OpenAPI 3.1 document, generated from the declared operations and their marshmallow schemas.

apispec turns each schema into a JSON Schema component (3.1 is JSON Schema
2020-12, so nullable fields become `["…", "null"]` unions) and we add one
path item per operation from the app's URL map, so every route that exists
is documented and nothing else is.
"""
from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from webapp.api import schemas
from webapp.api.problems import MEDIA_TYPE
from webapp.api.routing import OPERATIONS, Operation

_ARG = re.compile(r"<(?:int:)?([a-z_]+)>")
# Every operation can answer these: bad input, no or bad token, a request too large, too many requests,
# the database away.
COMMON_ERRORS = (400, 401, 413, 414, 415, 429, 431, 503)
# Werkzeug's router answers 405, not 404, for an id past the integer range on
# a path that has other methods (its matcher's doing, for pages too).
PATH_ERRORS = (404, 405)
ERROR_TEXT = {400: "Bad input: the errors member names the fields", 401: "No token, or a revoked or unknown one",
              402: "Payment declined (the hold stays)", 404: "Not found (or not yours)", 405: "Method not allowed",
              409: "Refused: the detail says why, in the pages' words", 410: "The hold ran out",
              413: "Body too large", 414: "Path and query too long", 415: "The body is not JSON",
              429: "Rate limited: see Retry-After", 431: "A header too large, or too many headers",
              503: "The database is away or busy: see Retry-After"}


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647}} for name in _ARG.findall(rule)]


def _content(schema, media_type: str) -> dict[str, Any]:
    if schema is None:
        return {media_type: {"schema": {"type": "string"}}} if media_type != "application/json" else {}
    return {media_type: {"schema": schema}}


def _operation(op: Operation, rule: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (text, schema, media_type) in op.responses.items():
        answer: dict[str, Any] = {"description": text}
        if content := _content(schema, media_type):
            answer["content"] = content
        responses[str(status)] = answer
    # A path with an id can always be a 404 (no such thing, or not yours).
    for status in sorted({*COMMON_ERRORS, *op.errors, *(PATH_ERRORS if _ARG.search(rule) else ())}):
        answer = {"description": ERROR_TEXT.get(status, "Error"),
                  "content": {MEDIA_TYPE: {"schema": schemas.Problem}}}
        if status in (429, 503):
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        responses[str(status)] = answer
    parameters: list[Any] = _path_parameters(rule) + list(op.headers)
    if op.query is not None:
        parameters.append({"in": "query", "schema": op.query})
    doc: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": op.view.__name__,
                           "parameters": parameters, "responses": responses}
    if op.description:
        doc["description"] = op.description
    if op.body is not None:
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": op.body}}}
    if op.admin:
        doc["description"] = (doc.get("description", "") + "\n\nNeeds an admin token.").strip()
    return doc


def build(app: Flask) -> dict[str, Any]:
    spec = APISpec(
        title="Ticketbooth API", version="1", openapi_version="3.1.0", plugins=[MarshmallowPlugin()],
        info={"description": "Events, seats, holds, payment, orders and the waiting list for buyers; events, "
                             "sales, orders and the door for admins. Authenticate with a personal token from "
                             "your account page, sent as “Authorization: Bearer tb_…”. Errors are RFC 9457 problem "
                             "details."},
        servers=[{"url": "/"}],
        security=[{"bearer": []}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                                "description": "a personal API token (tb_…)"})
    by_view = {op.view: op for op in OPERATIONS}
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        op = by_view.get(app.view_functions.get(rule.endpoint))
        if op is None:
            continue
        path = _ARG.sub(r"{\1}", rule.rule)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, rule.rule)
    # Buyers' resources first, then the admin's.
    for path in sorted(paths, key=lambda p: (p.startswith("/api/v1/admin/"), p)):
        spec.path(path=path, operations=paths[path])
    return spec.to_dict()


def document(app: Flask) -> dict[str, Any]:
    """Built once per app (the routes do not change while it runs)."""
    if "api_spec" not in app.extensions:
        app.extensions["api_spec"] = build(app)
    return app.extensions["api_spec"]
