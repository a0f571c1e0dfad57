"""How many the room lets out: what its rules allow, and never more than the shop can serve in time.

A room's rules (admissions per minute, people shopping at once) are the
organiser's ceiling, chosen before anyone knows how the on-sale will go.
If the shop falls behind (a cap set too high, buyers quicker than
expected, another event's rush on the same servers), every admission adds
to a queue that everyone already let in waits in: the people the room
promised a turn would wait longest. So the room follows the shop, as TCP
follows a network and as the big waiting rooms follow their origin.

The shop's delay. Behind a proxy that stamps `X-Request-Start` (deploy/nginx
does), each app process measures how long the shop's requests waited in
the server's queue before a worker took them: the queue is where too many
buyers show first, whatever the cause. Every second, while that mean delay
is worth reporting, the process writes it to its row of `shop_delays`
(webapp/overload.py's `ShopDelay`); the crowd's own requests (the waiting
room's join, status and page) are not counted, they queue by design.

The window (`waiting_rooms.outflow_window`): the most people shopping at
once this room allows now, below its rules' cap. It starts at FIRST_WINDOW
when the sale starts. Then, while people wait, a pass may change it, but
only HOLD_SECONDS after its last change (`outflow_changed_at`): a change
shows in the shop's delay only once the people it let in (or kept out)
have noticed, which takes a page's poll or two, and a controller that
acts on the effect of its own last move before it shows either overshoots
to the cap or cuts to nothing. Over the target delay it halves what is in
use (never below MIN_WINDOW); under half the target, with the window in
use by people who reached the shop (whose page collected its pass: those
still on their way load nothing yet, and a window grown while they are
would let them all arrive at once), it grows by a quarter (by MIN_WINDOW
at least), up to the cap: a
cut must be quick, a rise gentle, as in TCP; each rise lets a burst in at
once, and by half at a time those bursts were what queued. A pass reads the worst delay any
process reported in the last REPORT_SECONDS; no report reads as no delay.
Switched off (`WAITING_ROOM_SHOP_DELAY_MS` = 0) the window is not kept and
the rules alone decide, as before.

Services flush; the caller commits. `report` commits on its own (an
autocommitted upsert of one row).
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import text
from sqlalchemy.orm import Session

# The window when the sale starts: the first pass lets this many in at most, then it grows by half a pass.
FIRST_WINDOW = 20
# However slow the shop, this many may shop at once: the room never stops.
MIN_WINDOW = 5
# The least time between two changes of the window: about two of a page's polls near the front.
HOLD_SECONDS = 4.0
# A pass reads the reports this fresh: a process that stopped reporting (healthy again, or gone) counts no more.
REPORT_SECONDS = 3
# Rows of processes gone this long are deleted by the sweep.
FORGET_SECONDS = 600

_REPORT = text("""
    INSERT INTO shop_delays (source, delay_ms, measured_at) VALUES (:s, :d, now())
    ON CONFLICT (source) DO UPDATE SET delay_ms = EXCLUDED.delay_ms, measured_at = EXCLUDED.measured_at
""")
_WORST = text("""
    SELECT coalesce(max(delay_ms), 0) FROM shop_delays
    WHERE measured_at > now() - make_interval(secs => :fresh)
""")
_FORGET = text("DELETE FROM shop_delays WHERE measured_at < now() - make_interval(secs => :old)")


def target_ms() -> int:
    """The shop's queueing delay the room keeps under (0: the room does not follow the shop)."""
    return int(current_app.config.get("WAITING_ROOM_SHOP_DELAY_MS") or 0)


def report(source: str, delay_ms: float) -> None:
    """This process's mean queueing delay of the last second (one row per process, overwritten)."""
    from webapp.database import single_statement

    with single_statement(writes=True) as connection:
        connection.execute(_REPORT, {"s": source[:100], "d": round(delay_ms, 1)})


def worst_delay_ms(session: Session) -> float:
    """The worst delay any process reported in the last REPORT_SECONDS (0 when none did)."""
    return float(session.execute(_WORST, {"fresh": REPORT_SECONDS}).scalar_one())


def forget_gone(session: Session) -> None:
    """Drop the rows of processes that stopped reporting long ago (restarts leave one each)."""
    session.execute(_FORGET, {"old": FORGET_SECONDS})


def next_window(window: int, *, delay_ms: float, target: int, in_use: int, arrived: int, cap: int | None) -> int:
    """The window after a pass that saw `delay_ms` with `in_use` people let in, `arrived` of them in the shop
    (see the module docstring)."""
    if delay_ms > target:
        return max(MIN_WINDOW, min(window, in_use) // 2)
    if delay_ms < target / 2 and arrived * 2 >= window:
        grown = window + max(MIN_WINDOW, window // 4)
        return min(cap, grown) if cap else grown
    return window
