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
HSTS = "max-age=31536000; includeSubDomains"
# Tickets, orders and holds are personal and change: no shared or disk cache may keep them.
NO_STORE_BLUEPRINTS = {"account", "checkout"}


def _headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for old browsers
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.blueprint in NO_STORE_BLUEPRINTS and "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


def register(app: Flask) -> None:
    # Behind a TLS-terminating proxy, ProxyFix (PROXY_FIX_HOPS, set up in the
    # app factory) makes its X-Forwarded-Proto say whether the buyer used HTTPS.
    app.after_request(_headers)
