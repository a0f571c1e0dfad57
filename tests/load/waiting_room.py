"""The waiting room's scenarios: (e) a crowd arriving for a hot on-sale, (f) the same with a million in line.

Each buyer does what the waiting room page does in a browser: join (the
answer is the room's status, swapped in place), and while waiting poll the room's shared now.json (a conditional GET,
at the page's pace: every few seconds near the front, up to 30 s far back),
working its position out from its own number; it asks for its own status
only when its number comes up, the sale starts (the countdown's ask, spread
over 2 s; a page already drawn, within 10 s) or it has no number yet (every
2 s). A page waiting for the start with a place reads its number, once the
room says the sale started, from the draw's published numbers (a public file
per thousand places, cached by nginx), every 2 s until it is there. The
room's state changes it shows itself, from the blocks of the status it
holds: a pause and its end, sold out (the waiting list's link in the page:
told, the buyer is done) or back from it, open to everyone or switched off
(the way to the tickets).
When its turn comes it reserves one ticket and pays.

Afterwards the database must show exactly the tickets sold, every arrival
with a place, admissions in number order (and numbers in line order: the
draw, then arrival), and no answer a 5xx.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import re
import secrets
import time
from collections import Counter

from tests.load.client import Browser
from tests.load.harness import (
    Data,
    Recorder,
    ResourceMonitor,
    Stack,
    load_figures,
    minted_browsers,
    percentile,
    report,
)
from tests.load.scenarios import Outcome, _bases, _with_busy_retry, purchase
from webapp.services.waiting.waiting_room import MAX_POLL_SECONDS, estimate_position

ATTRIBUTE = {name: re.compile(rf'data-{name}="([^"]*)"')
             for name in ("number", "state", "poll-seconds", "seconds-left", "now-url", "status-url", "draw-url",
                          "place")}
# How often and how many times a page tries the draw's numbers before asking for its status (waiting_room.js).
DRAW_RETRY_SECONDS, DRAW_TRIES = 2, 15


PAUSE = ("paused", "admitting")
# The block of the status partial the page shows for each state of the room (waiting_room.js: BLOCK).
BLOCK = {"admitting": "waiting-room-waiting", "paused": "waiting-room-waiting", "sold_out": "waiting-room-sold-out",
         "open": "waiting-room-open", "off": "waiting-room-open"}
BLOCKS = re.compile(r'<div id="(waiting-room-(?:waiting|sold-out|open))"( hidden)?>')
TOLD = {"sold out": "told sold out, offered the waiting list", "open": "told the room is open, offered the tickets"}
JOIN_RETRIES = 30


def _attribute(html: str, name: str) -> str | None:
    found = ATTRIBUTE[name].search(html)
    return found.group(1) if found else None


def _blocks(html: str) -> dict[str, bool]:
    """The status's blocks the page holds, and whether each is shown (not `hidden`)."""
    return {found.group(1): not found.group(2) for found in BLOCKS.finditer(html)}


def _told(html: str, event_id: int, block: str) -> str:
    """What a page showing `block` told its buyer: "sold out" with the waiting list's link, "open" with the
    tickets' link; else what it failed to offer."""
    if block == BLOCK["sold_out"]:
        return "sold out" if f'href="/events/{event_id}/waitlist"' in html else "sold out, no waiting list offered"
    return "open" if f'href="/events/{event_id}"' in html else "open, no way to the tickets offered"


async def _ask(rec: Recorder, browser: Browser, step: str, path: str, **kw):
    answer = await rec.call(step, browser.get(path, **kw))
    if not browser.keep_alive:
        await browser.close()  # an idle keep-alive outlives no poll period (gunicorn's keepalive: 2 s)
    return answer


async def wait_for_turn(rec: Recorder, browser: Browser, event_id: int, deadline: float,
                        html: str | None = None, shop: Browser | None = None) -> str:
    """One buyer in the waiting room, as its page behaves; "turn", "sold out", "open", "failed" or "gave up".

    Told sold out (or open) without the waiting list's link (or the tickets'), the verdict says what was missing.

    `html`: the waiting room's status the join answered with (else the page is loaded first).
    `shop`: the same browser as routed to the shop's processes: when its number comes up, the page asks
    for its pass with `?turn=<number>`, which the proxy (deploy/nginx) sends there, as this client does.
    """
    if html is None:
        page = await _ask(rec, browser, "page", f"/events/{event_id}/waiting-room")
        if page is None or page.status != 200:
            return "failed"
        html = page.text
    now_tag = None
    known = 0  # the number read from the draw's published numbers
    while time.perf_counter() < deadline:
        if "It is your turn" in html:
            return "turn"
        shown = [block for block, visible in _blocks(html).items() if visible and block != BLOCK["admitting"]]
        if shown:
            return _told(html, event_id, shown[0])
        status_url = _attribute(html, "status-url")
        if status_url is None:
            return "failed"
        left = _attribute(html, "seconds-left") if not known else None
        number = known or int(_attribute(html, "number") or 0)
        turn = False  # its number came up (not the room's state changing)
        draw_url = _attribute(html, "draw-url")
        if left is not None and draw_url:
            # The page follows the room's state past the countdown's end, then finds its number in the draw's.
            await asyncio.sleep(int(left) + random.uniform(0, 2))
            known = await _number_from_draw(rec, browser, html, draw_url, deadline)
            if known:
                continue
        elif left is not None:
            # The countdown asks at zero, spread over two seconds.
            await asyncio.sleep(int(left) + random.uniform(0, 2))
        elif not number:
            await asyncio.sleep(2)  # the number is on its way: this place asks about itself
        else:
            period = float(_attribute(html, "poll-seconds") or 5)
            state = _attribute(html, "state")
            now: dict | None = None
            while time.perf_counter() < deadline:
                await asyncio.sleep(period)
                answer = await _ask(rec, browser, "now.json", _attribute(html, "now-url") or "",
                                    headers={"If-None-Match": now_tag} if now_tag else None)
                if answer is None or answer.status not in (200, 304):
                    continue
                if answer.status == 200:
                    now_tag, now = answer.headers.get("etag"), json.loads(answer.body)
                if now is None:
                    continue
                if now["served"] >= number and now["state"] not in ("open", "off"):
                    turn = True
                    break
                block = BLOCK.get(now["state"])
                if block is not None and block in _blocks(html):
                    # The page shows it from the blocks it holds, asking nothing: told, the buyer is done.
                    if block != BLOCK["admitting"]:
                        return _told(html, event_id, block)
                    state = now["state"]
                elif now["state"] != state and not (now["state"] in PAUSE and state in PAUSE):
                    await asyncio.sleep(random.uniform(0, 10))
                    break
                ahead = estimate_position(number, served=now["served"], issued=now["issued"], left=now["left"]) - 1
                minutes = ahead * now["minutes_per_1000"] / 1000 if now["minutes_per_1000"] else None
                base = float(_attribute(html, "poll-seconds") or 5)
                period = base if minutes is None else min(MAX_POLL_SECONDS, max(base, minutes * 60 / 5))
        if turn:
            answer = await _ask(rec, shop or browser, "turn", f"{status_url}?turn={number}", htmx=True)
        else:
            answer = await _ask(rec, browser, "status", status_url, htmx=True)
        if answer is None or answer.status != 200:
            await asyncio.sleep(2)
            continue
        html = answer.text
    return "gave up"


async def _number_from_draw(rec: Recorder, browser: Browser, html: str, draw_url: str, deadline: float) -> int:
    """The place's number from the draw's published numbers once now.json says the sale started (0: not found)."""
    place = _attribute(html, "place")
    while time.perf_counter() < deadline:
        answer = await _ask(rec, browser, "now.json", _attribute(html, "now-url") or "")
        if answer is not None and answer.status == 200 and json.loads(answer.body)["state"] != "before":
            break
        await asyncio.sleep(1)
    for _ in range(DRAW_TRIES):
        answer = await _ask(rec, browser, "draw.json", draw_url)
        if answer is not None and answer.status == 200:
            number = json.loads(answer.body)["numbers"].get(place)
            if number:
                return int(number)
        await asyncio.sleep(DRAW_RETRY_SECONDS)
    return 0


async def _buy_one(rec: Recorder, browser: Browser, event_id: int, tier_id: int) -> None:
    answer = await _with_busy_retry(rec, "reserve", lambda: browser.post(f"/events/{event_id}/reserve",
                                                                         {f"qty-{tier_id}": 1}))
    if answer is not None and answer.status == 204 and "hx-redirect" in answer.headers:
        rec.outcomes["admitted, reserved"] += 1
        if await purchase(rec, browser, answer.headers["hx-redirect"]):
            rec.outcomes["bought"] += 1
    elif answer is not None and answer.status == 409 and "sold out" in answer.text:
        rec.outcomes["admitted, found it sold out"] += 1
    else:
        rec.outcomes[f"admitted, reserve answered {answer.status if answer else 'nothing'}"] += 1
    await browser.close()


def _buyers(stack: Stack, data: Data, n: int, tag: str, *, keep: bool = False) -> list[tuple[Browser, Browser]]:
    """Each buyer's browser as (the tab in the waiting room, the tab in the shop).

    The same browser, cookies and all; with a pool of its own for the
    waiting room (`Stack(room_pool=True)`), its requests go there; with
    nginx in front (`stack.nginx`), both go to nginx, which routes them.
    """
    user_ids = data.create_buyers(n, f"{tag}-{secrets.token_hex(3)}")
    browsers = []
    bases = [("127.0.0.1", stack.nginx.port)] if stack.nginx is not None else _bases(stack)
    for shop in minted_browsers(bases, data.minted_sessions(user_ids)):
        room = shop
        if stack.nginx is not None:
            # nginx routes; with `keep`, the page's tab keeps its connection between polls, as a browser does.
            room = Browser("127.0.0.1", stack.nginx.port, cookies=shop.cookies, csrf=shop.csrf, keep_alive=keep)
        elif stack.room is not None:
            room = Browser("127.0.0.1", stack.room.port, cookies=shop.cookies, csrf=shop.csrf)
        browsers.append((room, shop))
    return browsers


def _checks(data: Data, event_id: int, *, places: int, arrivals: int, rec: Recorder) -> tuple[list[str], dict]:
    units = data.unit_counts(event_id)
    verdict = data.verdict(event_id)
    entries = data.waiting_room_places(event_id)
    out_of_order = admitted_out_of_room_order(entries)
    misnumbered = data.numbers_out_of_line_order(event_id)
    failures = []
    sold = units.get("sold", 0)
    if sold != places:
        failures.append(f"{sold} sold, expected exactly {places}")
    if len(entries) < arrivals:
        failures.append(f"{len(entries)} places in the waiting room for {arrivals} arrivals")
    if out_of_order:
        failures.append(f"{out_of_order} admissions out of number order")
    if _failed_5xx(rec):
        failures.append(f"{_failed_5xx(rec)} responses were 5xx other than 503 (busy, with Retry-After)")
    if rec.outcomes["gave up"]:
        failures.append(f"{rec.outcomes['gave up']} buyers never heard the end")
    for untold in ("sold out, no waiting list offered", "open, no way to the tickets offered"):
        if rec.outcomes[untold]:
            failures.append(f"{rec.outcomes[untold]} buyers' pages: {untold}")
    if verdict:
        failures.append("invariant violations")
    return failures, {"units": units, "verdict": verdict, "entries": entries, "out_of_order": out_of_order,
                      "misnumbered": misnumbered, "sold": sold}


def _busy(rec: Recorder) -> int:
    """503s: the app's answer to a request that queued past QUEUE_BUDGET_MS (with Retry-After), not a failure."""
    return sum(c.get(503, 0) for c in rec.statuses.values())


def _failed_5xx(rec: Recorder) -> int:
    return rec.five_xx() - _busy(rec)


def _served_p99(served: list[tuple[int, float]]) -> float | None:
    """The p99 of the reserves as nginx served them (None: no nginx in front)."""
    return percentile([ms / 1000 for _, ms in served], 99) * 1000 if served else None


def _lines(rec: Recorder, found: dict, served: list[tuple[int, float]]) -> list[str]:
    now = rec.statuses.get("now.json", Counter())
    p99 = {step: percentile(rec.latencies.get(step, []), 99) * 1000 for step in ("join", "now.json", "reserve")}
    entries = found["entries"]
    early = sum(1 for _, key, _ in entries if key < 0)
    return [
        f"units: {dict(found['units'])}; places in the waiting room: {len(entries):,} ({early:,} drawn before the"
        f" start, {len(entries) - early:,} by arrival after it); admitted:"
        f" {sum(1 for _, _, a in entries if a is not None):,}",
        f"admission order = number order: {'yes' if not found['out_of_order'] else 'NO'}"
        f" ({found['out_of_order']} out of order); numbers given against line order (the draw, then"
        f" arrival, by the database's clock): {found['misnumbered']}",
        f"join p99 {p99['join']:.0f} ms; now.json polls {sum(now.values()):,} ({now.get(304, 0):,} 304s),"
        f" p99 {p99['now.json']:.0f} ms; own-status asks {sum(rec.statuses.get('status', Counter()).values()):,};"
        f" admitted buyers' reserve p99 {p99['reserve']:.0f} ms (target < 500 ms)",
        f"told busy (503 with Retry-After: queued past QUEUE_BUDGET_MS, tried again): {_busy(rec):,}",
        *([f"the reserves as nginx served them (first byte in to last byte out, without the load generator's own"
           f" lag): {len(served):,}, p50 {percentile([ms / 1000 for _, ms in served], 50) * 1000:.0f} ms,"
           f" p99 {_served_p99(served):.0f} ms, max {max(ms for _, ms in served):.0f} ms"] if served else []),
    ]


def _figures(rec: Recorder, monitor: ResourceMonitor, found: dict, *, places: int, arrivals: int,
             served: list[tuple[int, float]]) -> dict:
    p99 = {step: percentile(rec.latencies.get(step, []), 99) * 1000 for step in ("join", "now.json", "reserve")}
    return {"join_p99_ms": p99["join"], "poll_p99_ms": p99["now.json"], "reserve_p99_ms": p99["reserve"],
            "reserve_served_p99_ms": _served_p99(served),
            "sold": found["sold"], "places": places, "in_room": len(found["entries"]),
            "out_of_order": found["out_of_order"], "misnumbered": found["misnumbered"],
            "peak_rss_mb": max(monitor.peak_rss.values(), default=0) / 2**20,
            **load_figures(rec, monitor, arrivals), "five_xx": _failed_5xx(rec), "busy": _busy(rec)}


# --------------------------------------------------------------------------- (e)

async def _arrival(rec: Recorder, tabs: tuple[Browser, Browser], arrive_at: float, *, event_id: int, tier_id: int,
                   deadline: float, patience: float) -> None:
    """One buyer: arrives at `arrive_at` (perf_counter), joins, waits for its turn, buys one ticket."""
    room, shop = tabs
    await asyncio.sleep(max(0.0, arrive_at - time.perf_counter()))
    # Told the waiting room is busy, a buyer keeps trying a while (each try a second or two apart).
    room.timeout = patience
    joined = await _with_busy_retry(rec, "join", lambda: room.post(f"/events/{event_id}/waiting-room/join", {}),
                                    retries=JOIN_RETRIES)
    if not room.keep_alive:
        await room.close()
    if joined is None or joined.status != 200:
        rec.outcomes[f"join failed ({joined.status if joined else 'no answer'})"] += 1
        return
    verdict = await wait_for_turn(rec, room, event_id, deadline, joined.text, shop=shop)
    if verdict == "turn":
        await _buy_one(rec, shop, event_id, tier_id)
    else:
        rec.outcomes[TOLD.get(verdict, verdict)] += 1


async def _lag_samples(into: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """How late a 0.1 s sleep wakes in this process's event loop, once a second: (perf_counter, lag)."""
    while not stop.is_set():
        asked = time.perf_counter()
        await asyncio.sleep(0.1)
        into.append((time.perf_counter(), time.perf_counter() - asked - 0.1))
        await asyncio.sleep(0.9)


def _crowd(share: list[tuple[tuple[Browser, Browser], float]], kw: dict, answer, number: int) -> None:
    """A share of the buyers, in a process of its own (forked): its figures go back through `answer`.

    Each crowd connects from a loopback address of its own (127.0.1.<number>): its pages' kept
    connections then have a range of local ports of their own.
    """
    Browser.source = f"127.0.1.{number + 1}"

    async def run() -> tuple[Recorder, list[tuple[float, float]]]:
        _limit_sockets()
        rec, lags, stop = Recorder(), [], asyncio.Event()
        sampling = asyncio.create_task(_lag_samples(lags, stop))
        await asyncio.gather(*(_arrival(rec, tabs, at, **kw) for tabs, at in share))
        stop.set()
        await sampling
        return rec, lags

    try:
        import uvloop
        rec, lags = uvloop.run(run())
    except ImportError:
        rec, lags = asyncio.run(run())
    cpu = os.times()
    answer.send(({"latencies": dict(rec.latencies), "statuses": dict(rec.statuses), "outcomes": rec.outcomes,
                  "answered_at": dict(rec.answered_at)}, cpu.user + cpu.system, lags))
    answer.close()


async def _in_processes(rec: Recorder, share: list[tuple[tuple[Browser, Browser], float]], kw: dict,
                        crowds: int) -> tuple[float, list[tuple[float, float]]]:
    """The buyers split over `crowds` processes; their figures merged into `rec`. (their CPU s, their lags)"""
    context = multiprocessing.get_context("fork")
    pipes, processes = [], []
    for i in range(crowds):
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_crowd, args=(share[i::crowds], kw, send, i), daemon=True)
        process.start()
        send.close()
        pipes.append(receive)
        processes.append(process)
    answers = await asyncio.gather(*(asyncio.to_thread(pipe.recv) for pipe in pipes))
    for process in processes:
        await asyncio.to_thread(process.join)
    cpu, lags = 0.0, []
    for figures, seconds, samples in answers:
        for step, values in figures["latencies"].items():
            rec.latencies[step].extend(values)
        for step, values in figures["answered_at"].items():
            rec.answered_at[step].extend(values)
        for step, counts in figures["statuses"].items():
            rec.statuses[step].update(counts)
        rec.outcomes.update(figures["outcomes"])
        cpu += seconds
        lags.extend(samples)
    return cpu, lags


async def waiting_room_rush(stack: Stack, data: Data, postmaster_pid: int | None, *, buyers: int = 5000,
                            places: int = 1000, arrive_within: float = 10.0, rate: int = 6000, cap: int = 300,
                            give_up_after: float = 240.0, patience: float = 30.0, crowds: int = 1,
                            keep_alive: bool = False) -> Outcome:
    """(a)'s crowd with the waiting room on: everyone gets a place, in a fair order, and the admitted buy fast.

    The sale starts halfway through the arrivals: the first half is drawn
    in random order at the start, the rest are numbered by arrival.
    `patience`: how long a page waits for an answer from the waiting room's
    processes (its join, its asks, its polls): htmx and fetch set no limit,
    a browser waits until the server answers; nginx in front, 300 s.
    `crowds`: how many client processes drive the buyers (one process
    cannot keep 50,000 pages polling on time: it measures its own lag).
    `keep_alive`: with nginx in front, each page keeps its connection
    between polls (at 50,000 the joins then failed: see docs/performance.md).
    """
    title = (f"(e) waiting room: {buyers:,} buyers arrive within {arrive_within:g} s for {places:,} tickets"
             f" (admit {rate}/min, at most {cap} shopping)" + _pool_note(stack)
             + (f"; the buyers driven by {crowds} client processes" if crowds > 1 else ""))
    event_id, tier_id = data.ga_event(places, title="Rush Waiting Room")
    browsers = _buyers(stack, data, buyers, "wr", keep=keep_alive)
    _limit_sockets()
    rec = Recorder()
    rng = random.Random(10)
    arrivals = sorted(rng.uniform(0, arrive_within) for _ in browsers)
    rng.shuffle(browsers)

    with ResourceMonitor(stack, postmaster_pid) as monitor:
        data.waiting_room(event_id, starts_in=arrive_within / 2, rate=rate, cap=cap)
        began = time.perf_counter()
        kw = {"event_id": event_id, "tier_id": tier_id, "deadline": began + give_up_after, "patience": patience}
        share = [(tabs, began + at) for tabs, at in zip(browsers, arrivals, strict=True)]
        watching = Timeline(data, event_id, began)
        gauges = asyncio.create_task(watching.run())
        crowd_cpu = 0.0
        if crowds > 1:
            crowd_cpu, watching.crowd_lags = await _in_processes(rec, share, kw, crowds)
        else:
            await asyncio.gather(*(_arrival(rec, tabs, at, **kw) for tabs, at in share))
        watching.stop = True
        await gauges
    monitor.client_cpu += crowd_cpu
    await asyncio.gather(*(b.close() for tabs in browsers for b in tabs))
    failures, found = _checks(data, event_id, places=places, arrivals=buyers, rec=rec)
    served = stack.nginx.reserve_times() if stack.nginx is not None else []
    text = report(title, rec, monitor, verdict=found["verdict"],
                  extra=[*_lines(rec, found, served), *watching.lines(rec, starts_at=arrive_within / 2)])
    return Outcome(title, text, failures, _figures(rec, monitor, found, places=places, arrivals=buyers,
                                                   served=served))


class Timeline:
    """What happened when: the room's window and shoppers, the shop's delay and the client's own lag, each second.

    The client's lag (how late a 0.1 s sleep wakes in its event loop) says
    how much of a latency is the load generator's own: on one machine it
    shares the cores with what it measures.
    """

    def __init__(self, data: Data, event_id: int, began: float, every: float = 1.0):
        self.data, self.event_id, self.began, self.every = data, event_id, began, every
        self.samples: list[tuple[float, int | None, int, float, float]] = []
        # The client processes' own lags (perf_counter, lag), when they drive the buyers.
        self.crowd_lags: list[tuple[float, float]] = []
        self.stop = False

    async def run(self) -> None:
        while not self.stop:
            asked = time.perf_counter()
            await asyncio.sleep(0.1)
            lag = time.perf_counter() - asked - 0.1
            window, shopping, delay = await asyncio.to_thread(self.data.waiting_room_gauge, self.event_id)
            self.samples.append((time.perf_counter() - self.began, window, shopping, delay, lag))
            await asyncio.sleep(self.every)

    def lines(self, rec: Recorder, *, starts_at: float, bucket: float = 5.0) -> list[str]:
        reserves = list(zip(rec.answered_at.get("reserve", []), rec.latencies.get("reserve", []), strict=True))
        if not reserves and not self.samples:
            return []
        end = max([t - self.began for t, _ in reserves] + [s[0] for s in self.samples] + [0.0])
        out = [f"timeline (s from the first arrival; the sale starts at {starts_at:g} s): reserves answered and their"
               " p99, the room's window / people shopping (max), the worst shop delay reported, the client's own lag"]
        t = 0.0
        while t < end:
            here = [lat for at, lat in reserves if t <= at - self.began < t + bucket]
            gauges = [g for g in self.samples if t <= g[0] < t + bucket]
            windows = [g[1] for g in gauges if g[1] is not None]
            lags = [g[4] for g in gauges] + [lag for at, lag in self.crowd_lags if t <= at - self.began < t + bucket]
            out.append(f"  {t:5.0f}–{t + bucket:<4.0f} reserves {len(here):4d}"
                       f" p99 {percentile(here, 99) * 1000 if here else 0:6.0f} ms;"
                       f" window {max(windows) if windows else '–'!s:>4} / shopping"
                       f" {max((g[2] for g in gauges), default=0):4d}; shop delay"
                       f" {max((g[3] for g in gauges), default=0):5.0f} ms; client lag"
                       f" {max(lags, default=0) * 1000:5.0f} ms")
            t += bucket
        return out


def _limit_sockets() -> None:
    """At most as many requests in flight as the process may open sockets, less a margin."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    Browser.in_flight = asyncio.Semaphore(max(1000, min(limit, 1 << 20) - 2000))


def _pool_note(stack: Stack) -> str:
    if stack.nginx is not None:
        return "; the waiting room on its own gunicorn, nginx in front (deploy/nginx, its cache and routing)"
    return "; the waiting room on its own gunicorn" if stack.room is not None else ""


def admitted_out_of_room_order(entries: list[tuple[int, int, object]]) -> int:
    """Admissions that came before one of someone ahead of them (rows in number order: id, key, admitted_at)."""
    latest = None
    wrong = 0
    never_seen_after = False
    for _, _, admitted_at in entries:
        if admitted_at is None:
            never_seen_after = True
            continue
        if never_seen_after or (latest is not None and admitted_at < latest):
            wrong += 1
        latest = admitted_at if latest is None or admitted_at > latest else latest
    return wrong


# --------------------------------------------------------------------------- (f)

async def waiting_room_million(stack: Stack, data: Data, postmaster_pid: int | None, *, entries: int = 1_000_000,
                               buyers: int = 2000, places: int = 1000, watchers: int = 2000,
                               watch_every: float = 5.0, watch_seconds: float = 20.0, rate: int = 6000, cap: int = 300,
                               give_up_after: float = 300.0) -> Outcome:
    """A million places in line (synthetic rows), with real polls, admission and purchases at once.

    The sale has started. `buyers` real buyers join within a few seconds,
    then `entries` synthetic places arrive behind them in one INSERT (the
    admission passes number them, a batch per pass, while the buyers are
    let in and buy). Beside them `watchers` pages poll now.json every
    `watch_every` seconds: first alone for `watch_seconds`, once the million
    are numbered (the poll's CPU per request with a million in line), then
    while the buyers are let in and buy.
    """
    title = (f"(f) waiting room with {entries:,} places in line: {buyers:,} real buyers for {places:,} tickets,"
             f" {watchers:,} more pages polling (admit {rate}/min, at most {cap} shopping)" + _pool_note(stack))
    event_id, tier_id = data.ga_event(places, title="Million Waiting Room")
    _limit_sockets()
    data.waiting_room(event_id, starts_in=-1, rate=rate, cap=cap)
    browsers = _buyers(stack, data, buyers, "wm")
    rec = Recorder()
    polls_alone = Recorder()
    deadline = time.perf_counter() + give_up_after
    now_url = f"/events/{event_id}/waiting-room/now.json"

    # The buyers take their places (numbered by arrival), then the million arrive behind them.
    joins = asyncio.Semaphore(50)

    async def join(tabs: tuple[Browser, Browser]) -> str | None:
        room = tabs[0]
        async with joins:
            answer = await _with_busy_retry(rec, "join",
                                            lambda: room.post(f"/events/{event_id}/waiting-room/join", {}))
            await room.close()
            return answer.text if answer is not None and answer.status == 200 else None

    data.waiting_room_control(event_id, paused=True)  # nobody let in until the line is there

    async def buyer(tabs: tuple[Browser, Browser]) -> None:
        # Joined, the page shows the status the join answered with and waits.
        html = await join(tabs)
        if html is None:
            rec.outcomes["join failed"] += 1
            return
        verdict = await wait_for_turn(rec, tabs[0], event_id, deadline, html, shop=tabs[1])
        if verdict == "turn":
            await _buy_one(rec, tabs[1], event_id, tier_id)
        else:
            rec.outcomes[TOLD.get(verdict, verdict)] += 1

    buying = [asyncio.create_task(buyer(tabs)) for tabs in browsers]
    while data.waiting_room_marks(event_id)[0] < buyers and time.perf_counter() < deadline:
        await asyncio.sleep(1)  # every buyer joined and was numbered
    started = time.perf_counter()
    data.fill_waiting_room(event_id, entries, numbered=False)
    fill_seconds = time.perf_counter() - started
    # The passes (the sweep's, every 2 s) number them, a batch a pass.
    while data.waiting_room_marks(event_id)[0] < buyers + entries and time.perf_counter() < deadline:
        await asyncio.sleep(1)
    numbering_seconds = time.perf_counter() - started - fill_seconds

    room_bases = [("127.0.0.1", stack.room.port)] if stack.room is not None else _bases(stack)
    watching = [Browser(*room_bases[i % len(room_bases)]) for i in range(watchers)]
    stop_watching = asyncio.Event()

    async def watch(browser: Browser, into: list[Recorder], path: str = now_url) -> None:
        tag = None
        await asyncio.sleep(random.uniform(0, watch_every))
        while not stop_watching.is_set():
            answer = await into[0].call("now.json", browser.get(path, headers={"If-None-Match": tag} if tag
                                                                else None))
            await browser.close()
            if answer is not None and answer.status == 200:
                tag = answer.headers.get("etag")
            try:
                await asyncio.wait_for(stop_watching.wait(), watch_every)
            except asyncio.TimeoutError:
                pass

    # Phase 0, the unit: the same crowd, polling the same way (a new
    # connection per poll), asks the floor's text route instead.
    floor_figures = None
    if stack.floor is not None:
        floor_polls = Recorder()
        floor_watching = [Browser("127.0.0.1", stack.floor.port) for _ in range(watchers)]
        floor_running = [asyncio.create_task(watch(b, [floor_polls], "/text")) for b in floor_watching]
        await asyncio.sleep(watch_every)
        with ResourceMonitor(stack, postmaster_pid, instances=[stack.floor]) as floor_alone:
            await asyncio.sleep(watch_seconds)
        stop_watching.set()
        await asyncio.gather(*floor_running)
        stop_watching.clear()
        floor_figures = load_figures(floor_polls, floor_alone, watchers)

    # Phase 1: the crowd's polls alone, the line full, admission paused.
    target = [polls_alone]
    watchers_running = [asyncio.create_task(watch(b, target)) for b in watching]
    await asyncio.sleep(watch_every)  # every watcher is polling at its pace
    # The buyers' pages poll too, the same resource: their polls in the window count.
    buyers_polls = len(rec.latencies.get("now.json", []))
    with ResourceMonitor(stack, postmaster_pid) as alone:
        await asyncio.sleep(watch_seconds)
    buyers_polls = len(rec.latencies.get("now.json", [])) - buyers_polls
    polls_figures = load_figures(polls_alone, alone, watchers)
    polls = polls_figures["requests"] + buyers_polls
    polls_figures.update(requests=polls, request_rate=polls / alone.wall,
                         cpu_ms_per_request=alone.server_cpu() / polls * 1000)

    # Phase 2: admission on; the buyers are let in and buy; the crowd polls on.
    target[0] = rec
    with ResourceMonitor(stack, postmaster_pid) as monitor:
        data.waiting_room_control(event_id, paused=False)
        await asyncio.gather(*buying)
        stop_watching.set()
        await asyncio.gather(*watchers_running)
    await asyncio.gather(*(b.close() for b in [*(b for tabs in browsers for b in tabs), *watching]))

    failures, found = _checks(data, event_id, places=places, arrivals=buyers + entries, rec=rec)
    numbered, room_waiting = data.waiting_room_marks(event_id)
    served = stack.nginx.reserve_times() if stack.nginx is not None else []
    cpu = alone.cpu_seconds()
    lines = [f"the synthetic places' INSERT ... SELECT: {fill_seconds:.1f} s; numbered by the passes in"
             f" {numbering_seconds:.1f} s; numbers given by the end: {numbered:,}; still waiting: {room_waiting:,}",
             f"polls alone (admission paused, {entries:,} in line): {polls_figures['requests']:,} now.json in"
             f" {alone.wall:.1f} s = {polls_figures['request_rate']:.0f}/s, server CPU"
             f" {polls_figures['cpu_ms_per_request']:.3f} ms per poll"
             f" (app {cpu.get('app', 0):.2f} s, PostgreSQL {cpu.get('postgres', 0):.2f} s,"
             f" sweep {cpu.get('sweep', 0):.2f} s)",
             *([f"the floor's text route polled the same way by the same crowd: {floor_figures['request_rate']:.0f}/s,"
                f" server CPU {floor_figures['cpu_ms_per_request']:.3f} ms per request; now.json ="
                f" {polls_figures['cpu_ms_per_request'] / floor_figures['cpu_ms_per_request']:.2f}x it"]
               if floor_figures else []),
             *_lines(rec, found, served)]
    text = report(title, rec, monitor, verdict=found["verdict"], extra=lines)
    figures = _figures(rec, monitor, found, places=places, arrivals=buyers, served=served)
    if floor_figures:
        figures["floor_polled_cpu_ms"] = floor_figures["cpu_ms_per_request"]
    figures.update({"poll_alone_cpu_ms": polls_figures["cpu_ms_per_request"],
                    "poll_alone_rate": polls_figures["request_rate"], "poll_alone_in_flight": watchers})
    return Outcome(title, text, failures, figures)
