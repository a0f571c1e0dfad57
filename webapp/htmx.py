"""One URL, two renderings: the full page, or the partial htmx swaps in."""
from __future__ import annotations

from typing import Any

from flask import make_response, render_template, request
from werkzeug.wrappers import Response


def is_partial_request() -> bool:
    """An htmx request that wants a fragment.

    Boosted navigation wants the page, and so does a history restore: after a
    cache miss htmx swaps the answer in as the whole body.
    """
    headers = request.headers
    return (headers.get("HX-Request") == "true" and headers.get("HX-Boosted") != "true"
            and headers.get("HX-History-Restore-Request") != "true")


def render(page: str, partial: str, status: int = 200, **context: Any) -> Response:
    """Render the partial for htmx, the page (which includes it) otherwise."""
    template = partial if is_partial_request() else page
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def redirect_to(url: str) -> Response:
    """Navigate the whole page: HX-Redirect for htmx, a 303 otherwise."""
    if request.headers.get("HX-Request") == "true":
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    response = make_response("", 303)
    response.headers["Location"] = url
    return response
