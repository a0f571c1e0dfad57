"""The waiting room's signed cookies: a buyer's pass, and an anonymous visitor's place.

An admitted, logged-in buyer gets a pass: the admission's id, account id
and event id, and its end, signed with SECRET_KEY (itsdangerous). Views
check the signature and the binding without the database, which is why
this lives apart from the engine: checking a pass costs no statement. The
reserve's SQL function checks the admission row itself, by the database
clock, in the statement it runs anyway (migration 0008). A hold made under
a pass extends it to the hold's end.

Every place has a place cookie: it names the entry, the random token of a
visitor without an account (empty for an account's place), and the place's
number once the admission pass gave it one. With the number in a signed
cookie, the waiting room page can show the position from the room's shared
state alone (now.json, see positions), and nobody can claim another number.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

PASS_SALT = "waiting-room-pass"
PLACE_SALT = "waiting-room-place"


def _signer(salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)


def pass_cookie_name(event_id: int) -> str:
    return f"tb_pass_{event_id}"


def place_cookie_name(event_id: int) -> str:
    return f"tb_place_{event_id}"


def make_pass(*, admission_id: int, user_id: int, event_id: int, until: datetime) -> str:
    """A pass for one admission, bound to its account and event, valid until `until` (the database's)."""
    return _signer(PASS_SALT).dumps({"a": admission_id, "u": user_id, "e": event_id, "x": int(until.timestamp())})


@dataclass(frozen=True)
class PassCheck:
    admission_id: int | None
    problem: str | None


def check_pass(token: str | None, *, user_id: int | None, event_id: int) -> PassCheck:
    """The pass's verdict without the database: signature, account, event, time.

    The time is the end the database gave at admission, read on this host's
    clock; the reserve statement checks the admission again by the
    database's own clock, so a host whose clock is off grants nothing.
    """
    if not token:
        return PassCheck(None, "You need a pass from the waiting room to buy tickets for this event.")
    try:
        data = _signer(PASS_SALT).loads(token)
    except BadSignature:
        return PassCheck(None, "This pass is not valid. Please take your place in the waiting room.")
    if not isinstance(data, dict) or data.get("e") != event_id:
        return PassCheck(None, "This pass is for another event.")
    if user_id is None:
        return PassCheck(None, "Please log in to use your pass.")
    if data.get("u") != user_id:
        return PassCheck(None, "This pass belongs to another account.")
    if not isinstance(data.get("x"), int) or data["x"] <= time.time():
        return PassCheck(None, "Your pass has expired. You can take a new place in the waiting room.")
    return PassCheck(int(data["a"]), None)


def pass_end(token: str) -> int:
    """When a pass already checked by `check_pass` ends (epoch seconds)."""
    return int(_signer(PASS_SALT).loads(token)["x"])


def new_anon_token() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Place:
    """What a signed place cookie says: the entry, a visitor's token ("" for an account), the number if given."""

    entry_id: int
    anon_token: str
    number: int | None = None


def make_place(*, entry_id: int, anon_token: str, number: int | None = None) -> str:
    data: dict = {"n": entry_id, "t": anon_token}
    if number is not None:
        data["k"] = number
    return _signer(PLACE_SALT).dumps(data)


def read_place(value: str | None) -> Place | None:
    """The place a signed place cookie names, or None."""
    if not value:
        return None
    try:
        data = _signer(PLACE_SALT).loads(value)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("n"), int) or not isinstance(data.get("t"), str):
        return None
    number = data.get("k")
    return Place(data["n"], data["t"], number if isinstance(number, int) else None)
