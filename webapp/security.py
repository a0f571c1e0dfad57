"""Headers every response carries: what the browser may run, frame and send on.

The policy allows scripts and styles from our own origin only. No page has an
inline `<script>`, `on…=` handler or `hx-on`, and htmx runs with `allowEval`
off and its indicator `<style>` turned off (app.css has those rules), so
`script-src 'self'` holds with no exception. Style *attributes* stay allowed:
templates colour tiers and place seats with `style="--tier: …"`, which cannot
run code.
"""
from __future__ import annotations

from flask import Flask, request

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data: https:",  # event images are admin-given https:// addresses
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


def policy_with_stripe(js_origin: str, api_origin: str) -> str:
    """The policy of a page with Stripe's card element: its script, its frames, and its API from the browser."""
    return CONTENT_SECURITY_POLICY.replace("script-src 'self'", f"script-src 'self' {js_origin}") + "; " + "; ".join((
        f"frame-src {js_origin} https://hooks.stripe.com",
        f"connect-src 'self' {api_origin} {js_origin}",
    ))


HSTS = "max-age=31536000; includeSubDomains"
# Tickets, orders and holds are personal and change: no shared or disk cache may keep them.
NO_STORE_BLUEPRINTS = {"account", "checkout"}


_EVERY_RESPONSE = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for old browsers
    ("Referrer-Policy", "same-origin"),
)
_OVER_HTTPS = (*_EVERY_RESPONSE, ("Strict-Transport-Security", HSTS))


def every_response_headers(secure: bool) -> tuple[tuple[str, str], ...]:
    """The headers every response carries, for an answer written outside Flask (the waiting room's now.json)."""
    return _OVER_HTTPS if secure else _EVERY_RESPONSE


def _headers(response):
    headers = response.headers
    # One pass over the response's headers, not a case-folding search per
    # header: this runs on every response, the 304s of open maps included.
    present = {name.lower() for name, _ in headers}
    wanted = _OVER_HTTPS if request.is_secure else _EVERY_RESPONSE
    headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    if request.blueprint in NO_STORE_BLUEPRINTS and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


def register(app: Flask) -> None:
    # Behind a TLS-terminating proxy, ProxyFix (PROXY_FIX_HOPS, set up in the
    # app factory) makes its X-Forwarded-Proto say whether the buyer used HTTPS.
    app.after_request(_headers)
