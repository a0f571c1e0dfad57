"""Declaring an API operation: its route, its token check, and what the OpenAPI document says of it.

One declaration per operation: `operation(...)` adds the Flask route, wraps
the view in the token check, and records the operation's schemas and answers
for `spec.py`. The check runs inside the view (not in `before_request`), so
the stale-connection retry of `webapp/database.py` covers it too.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, current_app, g, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError
from werkzeug.exceptions import UnsupportedMediaType

from webapp import organiser_guard
from webapp.database import single_statement
from webapp.extensions import csrf, limiter
from webapp.services.errors import BookingError, InvalidRequest, NotFound
from webapp.services.people import api_tokens
from webapp.services.people.api_tokens import Caller


class TokenRefused(BookingError):
    status_code = 401
    default_message = _l("Send a personal API token as “Authorization: Bearer …”; "
                       "make one on your account page (API tokens).")


class InvalidFields(BookingError):
    """A JSON body or query that does not fit the operation's schema."""

    status_code = 400

    def __init__(self, errors: dict, message: str = "Some fields are missing or not valid."):
        super().__init__(message)
        self.problem_extensions = {"errors": errors}


@dataclass
class Operation:
    view: Callable
    method: str
    summary: str
    tag: str
    description: str = ""
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    # status -> (description, schema class, media type)
    responses: dict[int, tuple[str, type[Schema] | None, str]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    headers: tuple[dict[str, Any], ...] = ()
    admin: bool = False


OPERATIONS: list[Operation] = []


def caller() -> Caller:
    """Who this API request acts for (set by the token check)."""
    return g.api_caller


def _authenticate(admin: bool) -> Caller:
    scheme, _space, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise TokenRefused()
    with single_statement() as connection:
        found = api_tokens.authenticate(connection, secret)
    if found is None:
        raise TokenRefused(_("This API token is not valid, or it was revoked."))
    if admin and not found.admin:
        # As on the pages: admin resources do not exist for anyone else.
        raise NotFound(_("Not found."))
    return found


def operation(blueprint: Blueprint, rule: str, method: str, *, summary: str, tag: str,
              responses: dict[int, tuple[str, type[Schema] | None] | tuple[str, type[Schema] | None, str]],
              description: str = "", body: type[Schema] | None = None, query: type[Schema] | None = None,
              errors: tuple[int, ...] = (), headers: tuple[dict[str, Any], ...] = (), admin: bool = False):
    def register(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(**kwargs: Any):
            g.api_caller = found = _authenticate(admin)
            if admin:
                # The one guard of the admin API: the token's organiser and role, and every id in the URL.
                organiser_guard.admit(user_id=found.user_id, is_admin=found.is_admin, wanted=found.organiser_id,
                                      endpoint=view.__name__, arguments=kwargs, member_role=found.role)
            return view(**kwargs)

        blueprint.add_url_rule(rule, endpoint=view.__name__, view_func=guarded, methods=[method])
        full = {status: (answer + ("application/json",))[:3] for status, answer in responses.items()}
        OPERATIONS.append(Operation(guarded, method, summary, tag, description or (view.__doc__ or "").strip(),
                                    body, query, full, errors, headers, admin))
        return view

    return register


# Far deeper than any body here needs (a layout's ranges are three levels) and
# far below the interpreter's recursion limit, where the decoder gives up.
MAX_JSON_DEPTH = 32


def _nested_deeper_than(value: Any, limit: int) -> bool:
    # A loop, not recursion: the point is to stay off the interpreter's stack.
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False


def _decoded_json() -> Any:
    """The body as a JSON value (None when it is not JSON); nesting past MAX_JSON_DEPTH is a 400."""
    too_deep = InvalidRequest(f"The JSON is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays "
                              "and objects.")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # Thousands of levels: the decoder ran out of stack before our check could run.
        raise too_deep from None
    if _nested_deeper_than(data, MAX_JSON_DEPTH):
        raise too_deep
    return data


def json_body(schema: type[Schema]) -> dict:
    """The request's JSON object, loaded through `schema` (unknown fields refused)."""
    if not request.is_json:
        raise UnsupportedMediaType(_("Send the body as JSON (Content-Type: application/json)."))
    data = _decoded_json()
    if not isinstance(data, dict):
        raise InvalidRequest(_("The body must be a JSON object."))
    try:
        return schema(unknown=RAISE).load(data)
    except ValidationError as invalid:
        raise InvalidFields(invalid.normalized_messages()) from None


def query_args(schema: type[Schema]) -> dict:
    try:
        return schema(unknown=EXCLUDE).load(request.args.to_dict())
    except ValidationError as invalid:
        raise InvalidFields(invalid.normalized_messages()) from None


def _rate_key() -> str:
    # The token's digest, never the token: limiter keys end up in Redis.
    scheme, _space, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return "api:" + api_tokens.digest(secret.strip())[:32]
    return f"api-ip:{request.remote_addr}"


def _rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def register_hooks(bp: Blueprint, *nested: Blueprint) -> None:
    # Tokens, not cookies: nothing a browser sends on its own authenticates
    # here, so cross-site request forgery has nothing to forge.
    for blueprint in (bp, *nested):
        csrf.exempt(blueprint)
    limiter.limit(_rate_limit, key_func=_rate_key)(bp)

    @bp.after_request
    def api_headers(response):
        response.headers.setdefault("Cache-Control", "no-store")
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="ticketbooth"'
        origins = current_app.config.get("API_CORS_ORIGINS") or ()
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            # Off unless configured: only listed origins may read answers.
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Idempotency-Key, If-None-Match")
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE"
            response.headers["Access-Control-Expose-Headers"] = (
                "ETag, Location, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset")
            response.vary.add("Origin")
        return response
