"""The client address the limits per address count, as the app trusts it.

`request.remote_addr` is the address `PROXY_FIX_HOPS` lets through: the
client's when exactly that many proxies set X-Forwarded-For, the nearest
proxy's when the setting is too low (then every buyer shares one address),
and whatever a client claims when it is too high. A loopback address is not
counted by the event's limit per address unless `ADDRESS_LIMIT_ON_LOOPBACK`
is set: it is a proxy on the same host with the setting left at 0, or a
test or benchmark, never a buyer.
"""
from __future__ import annotations

import ipaddress

from flask import current_app, request


def for_address_limits() -> str | None:
    """The address the event's limit per address counts for this request; None when it counts none."""
    raw = request.remote_addr
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if address.is_loopback and not current_app.config["ADDRESS_LIMIT_ON_LOOPBACK"]:
        return None
    return str(address)
