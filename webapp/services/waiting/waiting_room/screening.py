"""Before a join takes a place: a proof of work, a limit per client address, a genuine place cookie.

A place costs a client one request, so a script could take thousands. Each
room's organiser sets three rules (`settings.configure`):

- **A proof of work** (ALTCHA): the join form's widget fetches a challenge
  (`challenge_for`), the browser tries counters until one derives a key
  with the challenge's prefix, and the join carries the solution. The
  challenge is signed with a key derived from SECRET_KEY and says its event
  and its end; the server picked the counter (uniformly below the room's
  difficulty, so a join costs difficulty/2 tries on average) and signed the
  key it derives, so checking a solution is two HMACs and no database
  (`_solution`). Each try is `ROUNDS` of PBKDF2, which the browser's
  WebCrypto runs natively: a script gains little over a phone. A solution
  makes one place: its salt is spent, in Redis when REDIS_URL is set, else
  in an unlogged table, until the challenge's own end (`_spend`).
- **Places per client address per minute**, counted by Flask-Limiter's
  storage (Redis with REDIS_URL, as the app's other limits), only for joins
  that passed the other checks.
- **What a flagged client meets**: a client over that limit, with a failed
  or reused solution, or with a forged place cookie is told why (a 4xx), or,
  if the organiser chose it, answered as if it had joined and kept in an
  endless wait (as Cloudflare's "infinite queue"): a place cookie naming no
  place, whose token only this server can tell apart (`is_endless`), and a
  normal-looking page whose position is always behind everyone waiting
  (`endless_standing`). It has no row, so the pass never admits it, and a
  flood of them costs no place in the room.

Every flag is counted per room and reason for the admin's panel, in
`waiting_room_flags`: eight rows per reason, one picked at random per
write, so a flood of refusals does not queue on one row.

A missing solution (no JavaScript) or one that simply ran out is not
cheating: it is refused with the reason and never flagged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass, replace

import altcha
from flask import current_app
from limits import RateLimitItemPerMinute
from sqlalchemy import text

from webapp.services.errors import BookingError, ChallengeNotPassed, InvalidRequest, PlacesLimitReached
from webapp.services.waiting.waiting_room.passes import Place, new_anon_token, read_place
from webapp.services.waiting.waiting_room.positions import Standing

log = logging.getLogger(__name__)

ALGORITHM = "PBKDF2/SHA-256"
# PBKDF2 rounds per try: about a millisecond in a browser, native speed there as in a script.
ROUNDS = 1000
# How long a challenge may be solved and used: the bound on the spent-salt store too.
CHALLENGE_SECONDS = 300
# The most a payload may weigh: a real one is well under a kilobyte.
MAX_PAYLOAD = 4000
SHARDS = 8


def _key(purpose: str) -> str:
    secret = current_app.config["SECRET_KEY"]
    return hmac.new(secret.encode(), f"waiting-room {purpose}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Rules:
    """A room's rules against abuse (the columns of `waiting_rooms` that `settings.configure` sets)."""

    difficulty: int
    places_per_address: int | None
    wait_forever: bool


_RULES = text("""
    SELECT r.challenge_difficulty, r.places_per_address, r.flagged_wait_forever
    FROM waiting_rooms r JOIN events e ON e.id = r.event_id AND e.status <> 'draft'
    WHERE r.event_id = :e AND r.enabled
""")


def rules(event_id: int) -> Rules | None:
    """The room's rules against abuse, or None while the event has no room that is on (one primary-key read)."""
    from webapp.database import single_statement

    with single_statement() as connection:
        row = connection.execute(_RULES, {"e": event_id}).first()
    return None if row is None else Rules(row.challenge_difficulty, row.places_per_address, row.flagged_wait_forever)


def challenge_for(event_id: int, difficulty: int) -> dict:
    """A fresh challenge for the join form's widget: signed, for this event, solvable for CHALLENGE_SECONDS.

    Difficulty 0 (no proof of work) still gets a challenge, of one try, so
    the form is the same whatever the organiser chose.
    """
    challenge = altcha.create_challenge(
        ALGORITHM, ROUNDS, counter=secrets.randbelow(max(1, difficulty)),
        expires_at=int(time.time()) + CHALLENGE_SECONDS, data={"event": event_id},
        hmac_secret=_key("challenge"), hmac_key_secret=_key("challenge key"))
    return challenge.to_dict()


@dataclass(frozen=True)
class _Solved:
    salt: str
    expires_at: int


def _solution(payload: str | None, event_id: int) -> _Solved | BookingError | None:
    """A solved challenge of this event, or the refusal to give (None: it was forged, tampered with,
    or for another event, which flags the client)."""
    if not payload:
        return ChallengeNotPassed(
            "Taking a place here needs a short check that your browser does by itself: please allow JavaScript"
            " for this site, reload the page and try again.")
    if len(payload) > MAX_PAYLOAD:
        return None
    try:
        result = altcha.verify_solution(payload, _key("challenge"), hmac_key_secret=_key("challenge key"))
        parameters = altcha.Payload.from_base64(payload).challenge.parameters if result.verified else None
    except (ValueError, TypeError, KeyError, RecursionError):
        return None
    if result.expired:
        return ChallengeNotPassed("The check took too long and ran out. Please try again.")
    if parameters is None or not isinstance(parameters.data, dict) or parameters.data.get("event") != event_id:
        return None
    return _Solved(parameters.salt, int(parameters.expires_at or 0))


_SPEND = text("""
    INSERT INTO waiting_room_spent_challenges (salt, expires_at) VALUES (:s, to_timestamp(:x))
    ON CONFLICT DO NOTHING RETURNING true
""")
_FORGET_SPENT = text("DELETE FROM waiting_room_spent_challenges WHERE expires_at < now()")


def _redis():
    """The Redis the rate limits use, when REDIS_URL gives one: spent salts go there too."""
    uri = current_app.config.get("RATELIMIT_STORAGE_URI") or ""
    if not uri.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = current_app.extensions.get("waiting_room_redis")
    if client is None:
        import redis

        client = current_app.extensions["waiting_room_redis"] = redis.Redis.from_url(uri)
    return client


def _spend(solved: _Solved) -> bool:
    """Mark a solution used; False when it was used already. Kept only until its challenge's end."""
    client = _redis()
    if client is not None:
        import redis

        try:
            return bool(client.set(f"waiting-room:spent:{solved.salt}", 1, nx=True, exat=solved.expires_at))
        except redis.RedisError:
            # Redis away: the table keeps the solutions spent meanwhile (one spent in Redis just before
            # could be used once more: a proof of work, not a payment).
            log.warning("waiting_room.spent_store_unavailable", exc_info=True)
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        return bool(connection.execute(_SPEND, {"s": solved.salt, "x": solved.expires_at}).scalar())


def forget_spent_challenges(session) -> int:
    """The sweep's share: drop the spent salts whose challenges have ended (they can no longer be used)."""
    return session.execute(_FORGET_SPENT).rowcount


def _over_limit(event_id: int, per_minute: int, address: str | None) -> int:
    """Seconds until this address may take a place again, once this one counted; 0 when it may now."""
    from webapp.extensions import limiter

    if not limiter.enabled:
        return 0
    item = RateLimitItemPerMinute(per_minute)
    key = ("waiting-room-places", str(event_id), address or "unknown")
    try:
        if limiter.limiter.hit(item, *key):
            return 0
        reset = limiter.limiter.get_window_stats(item, *key).reset_time
    except Exception:  # the limits' store away: the limit is a guard, never a reason to turn buyers away
        log.warning("waiting_room.limit_store_unavailable", exc_info=True)
        return 0
    return max(1, math.ceil(reset - time.time()))


_FLAG = text("""
    WITH counted AS (
        INSERT INTO waiting_room_flags (event_id, reason, shard, count)
        SELECT :e, reason, :shard, 1 FROM unnest(CAST(:reasons AS varchar[])) reason
        ON CONFLICT (event_id, reason, shard) DO UPDATE SET count = waiting_room_flags.count + 1
    )
    SELECT CASE WHEN :endless THEN nextval(pg_get_serial_sequence('waiting_room_entries', 'id')) END
""")


def _flag(event_id: int, reason: str, *, endless: bool) -> int | None:
    """Count a flagged client; for the endless wait, an entry id no place will ever have (the places' own
    sequence, so the cookie looks like any other)."""
    from webapp.database import single_statement

    reasons = [reason, "endless"] if endless else [reason]
    log.info("waiting_room.flagged", extra={"event_id": event_id, "reason": reason, "endless": endless})
    with single_statement(writes=True) as connection:
        return connection.execute(_FLAG, {"e": event_id, "shard": secrets.randbelow(SHARDS), "reasons": reasons,
                                          "endless": endless}).scalar()


def _mark(head: str) -> str:
    digest = hmac.new(_key("endless wait").encode(), head.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:8]


def _endless_token() -> str:
    """A visitor token like any other (`new_anon_token`: 32 URL-safe characters) that this server can tell apart."""
    head = new_anon_token()[:24]
    return head + _mark(head)


def is_endless(place: Place | None) -> bool:
    """Whether a place cookie is a flagged client's endless wait."""
    token = place.anon_token if place is not None else ""
    return len(token) == 32 and hmac.compare_digest(token[24:], _mark(token[:24]))


@dataclass(frozen=True)
class Screening:
    """What becomes of a join: it goes ahead (neither set), it is refused, or it waits without end."""

    refusal: BookingError | None = None
    endless_place: Place | None = None
    # The refusal is for a forged place cookie: the answer clears it, so the next try starts clean.
    forget_place: bool = False


def screen_join(event_id: int, *, payload: str | None, address: str | None, place_cookie: str | None) -> Screening:
    """The checks a join passes before it takes a place (see the module docstring); the caller acts on the verdict.

    Order: the cookie (no cost), the solution (HMACs), then the limit,
    which counts only joins that passed both, then the solution is spent.
    """
    room = rules(event_id)
    if room is None:
        return Screening()  # no room that is on: the join's own road says so
    place = read_place(place_cookie)
    if is_endless(place):
        return Screening(endless_place=place)  # flagged already: still waiting, counted once
    reason: str | None = None
    refusal: BookingError | None = None
    if place_cookie and place is None:
        reason = "forged_cookie"
        refusal = InvalidRequest("Your waiting-room cookie for this event was not valid, so it was cleared."
                                 " Please take your place again.")
    elif room.difficulty:
        solved = _solution(payload, event_id)
        if isinstance(solved, BookingError):
            return Screening(refusal=solved)
        if solved is None or not _spend(solved):
            reason, refusal = "failed_challenge", ChallengeNotPassed()
    if reason is None and room.places_per_address:
        wait = _over_limit(event_id, room.places_per_address, address)
        if wait:
            reason, refusal = "over_limit", PlacesLimitReached(wait)
    if reason is None:
        return Screening()
    entry_id = _flag(event_id, reason, endless=room.wait_forever)
    if room.wait_forever and entry_id is not None:
        return Screening(endless_place=Place(entry_id, _endless_token()))
    return Screening(refusal=refusal, forget_place=reason == "forged_cookie")


def endless_standing(stand: Standing, place: Place) -> Standing:
    """A flagged client's page: as a place that has just joined, behind everyone waiting, whatever the time.

    A few places more than the room's waiting count (the same few for the
    same cookie), so it moves as the room does but never reaches the front.
    """
    behind = 1 + int.from_bytes(hashlib.sha256(place.anon_token.encode()).digest()[:2], "big") % 40
    ahead = max(0, stand.issued - stand.served - stand.left) + behind
    wait_seconds = stand.pace.seconds_for(ahead)
    return replace(stand, entry_id=place.entry_id, status="waiting", user_id=None, anon_token=place.anon_token,
                   mail_to=None,
                   pass_until=None, number=(stand.issued + behind + 1) if stand.started else None, ahead=ahead,
                   wait_seconds=wait_seconds,
                   wait_minutes=math.ceil(wait_seconds / 60) if stand.pace.per_minute else None)
