"""A limit on wrong discount and access codes, per account and per client address.

Codes are short secrets a script could guess, so every place a buyer types
or sends one (the hold page's discount box, the event page's access box, an
access link, and the same three in the API) runs the attempt through
`attempt`: while the account or the address has tried too many codes that
could not be used, it is refused at once with `TooManyWrongCodes` (429 with
Retry-After) and the code is not even looked at, so nothing changes; a code
that is refused counts one against both. Right codes count nothing.

The counts live in Flask-Limiter's storage, as the login limit's do: Redis
with `REDIS_URL`, so every worker of every host counts the same attempts
(per process without it). Checking and counting are two steps, so requests
in flight at the same instant may each get past a full count once; the
general rate limits bound how many that can be.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TypeVar

from flask import current_app, request
from limits import RateLimitItem, parse

from webapp.extensions import limiter
from webapp.services.errors import AccessCodeNeeded, TooManyWrongCodes
from webapp.services.selling.codes import CodeRefused

log = logging.getLogger(__name__)
T = TypeVar("T")


def _rules(user_id: int | None) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    rules = [(parse(current_app.config["WRONG_CODE_PER_ADDRESS_RATE_LIMIT"]),
              ("wrong-codes", "address", request.remote_addr or "unknown"))]
    if user_id is not None:
        rules.append((parse(current_app.config["WRONG_CODE_RATE_LIMIT"]), ("wrong-codes", "user", str(user_id))))
    return rules


def _wait(rules) -> int:
    """Seconds until every rule allows another try; 0 when they do now."""
    wait = 0.0
    for item, key in rules:
        if not limiter.limiter.test(item, *key):
            wait = max(wait, limiter.limiter.get_window_stats(item, *key).reset_time - time.time())
    return max(1, math.ceil(wait)) if wait else 0


def attempt(try_code: Callable[[], T], *, user_id: int | None, wrong: tuple[type[Exception], ...] = (CodeRefused,)
            ) -> T:
    """Run one code attempt under the limits; `wrong`: the refusals that count as a wrong code."""
    if not limiter.enabled:
        return try_code()
    rules = _rules(user_id)
    try:
        wait = _wait(rules)
    except Exception:  # the limits' store away: the limit is a guard, never a reason to turn buyers away
        log.warning("wrong_codes.store_unavailable", exc_info=True)
        return try_code()
    if wait:
        log.info("wrong_codes.limited", extra={"user_id": user_id, "wait": wait})
        raise TooManyWrongCodes(wait)
    try:
        return try_code()
    except wrong:
        try:
            for item, key in rules:
                limiter.limiter.hit(item, *key)
        except Exception:
            log.warning("wrong_codes.store_unavailable", exc_info=True)
        raise


# A reserve that names access codes and is refused for want of one: a guess that missed.
RESERVE_WRONG = (AccessCodeNeeded,)
