"""The rush-hour scenarios: what buyers do, and what must be true afterwards.

Each scenario prepares its own event and buyers, releases the buyers
together, drives real HTTP through the endpoints a browser running htmx
uses, and returns a printable report (throughput, latency percentiles,
status codes, RSS, CPU, the invariant checker's verdict) plus the checks
that must hold. The tests reuse the smaller versions of the same code.
"""
from __future__ import annotations

import asyncio
import random
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from tests.load.client import Browser, Response
from tests.load.harness import (
    IDEMPOTENCY_KEY,
    Data,
    Recorder,
    ResourceMonitor,
    Stack,
    load_figures,
    open_browsers,
    percentile,
    report,
)

SEAT_INPUT = re.compile(r'<input[^>]*name="seat"[^>]*>')
SEAT_VALUE = re.compile(r'value="(\d+)"')
GOOD_CARD = {"name": "Rush Buyer", "number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
BUSY_RETRIES = 3


@dataclass
class Outcome:
    title: str
    text: str
    failures: list[str] = field(default_factory=list)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


def _bases(stack: Stack) -> list[tuple[str, int]]:
    return [("127.0.0.1", i.port) for i in stack.instances]


async def _with_busy_retry(rec: Recorder, step: str, send, retries: int = BUSY_RETRIES) -> Response | None:
    """A buyer told 503 + Retry-After waits that long and tries again, a few times."""
    for _ in range(retries + 1):
        response = await rec.call(step, send())
        if response is None or response.status != 503:
            return response
        rec.outcomes["told busy (503) once"] += 1
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    return response


async def purchase(rec: Recorder, browser: Browser, hold_url: str) -> bool:
    """After a reservation: the hold page, pay with the test card, the order page."""
    page = await rec.call("hold page", browser.get(hold_url))
    if page is None or page.status != 200:
        rec.outcomes[f"hold page failed ({page.status if page else 'no answer'})"] += 1
        return False
    key = IDEMPOTENCY_KEY.search(page.text).group(1)
    pay_url = hold_url + "/pay"
    answer = await _with_busy_retry(
        rec, "pay", lambda: browser.post(pay_url, {"idempotency_key": key, **GOOD_CARD})
    )
    if answer is None or answer.status != 204 or "hx-redirect" not in answer.headers:
        rec.outcomes[f"pay failed ({answer.status if answer else 'no answer'})"] += 1
        return False
    order = await rec.call("order page", browser.get(answer.headers["hx-redirect"]))
    if order is None or order.status != 200:
        rec.outcomes["order page failed"] += 1
        return False
    return True


async def _prepare(stack: Stack, data: Data, n: int, event_id: int, tag: str, login_sample: int = 20
                   ) -> list[Browser]:
    prefix = f"{tag}-{secrets.token_hex(3)}"
    user_ids = data.create_buyers(n, prefix)
    cookies = [data.session_cookie(u) for u in user_ids]
    emails = [f"{prefix}-{i + 1}@example.com" for i in range(min(login_sample, n))]
    return await open_browsers(_bases(stack), cookies, event_path=f"/events/{event_id}", login_sample=emails)


# --------------------------------------------------------------------------- (a)

async def hot_ga(stack: Stack, data: Data, postmaster_pid: int | None, *, buyers: int = 1000,
                 places: int = 100, pay: bool = True) -> Outcome:
    """Everyone at once for a few places: exactly `places` sold, the rest told "sold out"."""
    title = f"(a) hot general-admission on-sale: {buyers} buyers at once, {places} places"
    event_id, tier_id = data.ga_event(places)
    browsers = await _prepare(stack, data, buyers, event_id, "ga")
    rec = Recorder()
    go = asyncio.Event()
    reserve_url = f"/events/{event_id}/reserve"
    served: Counter = Counter()

    async def buyer(browser: Browser) -> None:
        await go.wait()
        answer = await _with_busy_retry(rec, "reserve", lambda: browser.post(reserve_url, {f"qty-{tier_id}": 1}))
        if answer is not None:
            served[browser.port] += 1
        if answer is None:
            rec.outcomes["no answer"] += 1
        elif answer.status == 204 and "hx-redirect" in answer.headers:
            rec.outcomes["reserved"] += 1
            if pay and await purchase(rec, browser, answer.headers["hx-redirect"]):
                rec.outcomes["bought"] += 1
        elif answer.status == 409 and "sold out" in answer.text and "waiting list" in answer.text:
            rec.outcomes["told sold out, join the waiting list"] += 1
        else:
            rec.outcomes[f"unexpected {answer.status}"] += 1

    tasks = [asyncio.create_task(buyer(b)) for b in browsers]
    await asyncio.sleep(0.2)  # every buyer is waiting at the gate
    with ResourceMonitor(stack, postmaster_pid) as monitor:
        go.set()
        await asyncio.gather(*tasks)
    await asyncio.gather(*(b.close() for b in browsers))

    units = data.unit_counts(event_id)
    verdict = data.verdict(event_id)
    sold, held = units.get("sold", 0), units.get("held", 0)
    failures = []
    taken = sold if pay else held
    if taken != places:
        failures.append(f"{taken} places {'sold' if pay else 'held'}, expected exactly {places}")
    if pay and data.order_count(event_id) != places:
        failures.append(f"{data.order_count(event_id)} orders, expected {places}")
    if rec.five_xx():
        failures.append(f"{rec.five_xx()} responses were 5xx")
    told = rec.outcomes["told sold out, join the waiting list"]
    if told != buyers - places:
        failures.append(f"{told} buyers told 'sold out, join the waiting list', expected {buyers - places}")
    if verdict:
        failures.append("invariant violations")
    p99 = _p99(rec, "reserve")
    text = report(title, rec, monitor, verdict=verdict,
                  extra=[f"units: {dict(units)}", f"reserve p99 {p99 * 1000:.0f} ms (target < 500 ms)",
                         f"reserve answers per instance (port): {dict(served)}"])
    return Outcome(title, text, failures, {"reserve_p99_ms": p99 * 1000, "served_by": dict(served),
                                           "peak_rss_mb": max(monitor.peak_rss.values(), default=0) / 2**20,
                                           "sold": taken, "places": places,
                                           "reservations": rec.outcomes["reserved"],
                                           **load_figures(rec, monitor, buyers)})


def _p99(rec: Recorder, step: str) -> float:
    from tests.load.harness import percentile

    return percentile(rec.latencies.get(step, []), 99)


# --------------------------------------------------------------------------- (b)

async def sustained(stack: Stack, data: Data, postmaster_pid: int | None, *, buyers: int = 5000,
                    places: int = 10000, in_flight: int = 1000, per_buyer: int = 2) -> Outcome:
    """A long on-sale: every buyer reserves, pays and sees the order; nobody is lost."""
    title = (f"(b) sustained: {places} places, {buyers} buyers x {per_buyer} tickets, "
             f"up to {in_flight} in flight, reserve -> pay -> confirm")
    event_id, tier_id = data.ga_event(places)
    browsers = await _prepare(stack, data, buyers, event_id, "sus")
    rec = Recorder()
    gate = asyncio.Semaphore(in_flight)
    reserve_url = f"/events/{event_id}/reserve"
    reserved_at: list[float] = []

    async def buyer(browser: Browser) -> None:
        async with gate:
            answer = await _with_busy_retry(
                rec, "reserve", lambda: browser.post(reserve_url, {f"qty-{tier_id}": per_buyer})
            )
            if answer is None or answer.status != 204:
                rec.outcomes[f"reserve failed ({answer.status if answer else 'no answer'})"] += 1
                return
            reserved_at.append(time.perf_counter())
            rec.outcomes["bought" if await purchase(rec, browser, answer.headers["hx-redirect"])
                         else "reserved, not bought"] += 1
            await browser.close()

    with ResourceMonitor(stack, postmaster_pid) as monitor:
        started = time.perf_counter()
        await asyncio.gather(*(buyer(b) for b in browsers))
    units = data.unit_counts(event_id)
    verdict = data.verdict(event_id)
    orders = data.order_count(event_id)
    reservations_per_s = len(reserved_at) / monitor.wall
    # The reservation rate while the whole flow runs, and the rate of the
    # reserve step alone over the span in which reservations were made.
    span = (max(reserved_at) - started) if reserved_at else float("nan")
    failures = []
    if orders != buyers:
        failures.append(f"{orders} orders for {buyers} buyers")
    if units.get("sold", 0) != min(places, buyers * per_buyer):
        failures.append(f"{units.get('sold', 0)} places sold")
    if rec.five_xx():
        failures.append(f"{rec.five_xx()} responses were 5xx")
    if verdict:
        failures.append("invariant violations")
    purchases_per_s = orders / monitor.wall
    text = report(title, rec, monitor, verdict=verdict, extra=[
        f"units: {dict(units)}, orders: {orders}",
        f"reservations: {len(reserved_at)} in {monitor.wall:.1f} s = {reservations_per_s:.0f}/s over the whole run"
        f" (all reservations made within {span:.1f} s = {len(reserved_at) / span:.0f}/s)",
        f"complete purchases (4 requests each): {purchases_per_s:.0f}/s;"
        f" all requests: {sum(len(v) for v in rec.latencies.values()) / monitor.wall:.0f}/s",
    ])
    return Outcome(title, text, failures, {
        "reservations_per_s": reservations_per_s, "reserve_span_rate": len(reserved_at) / span,
        "reservations": len(reserved_at),
        "purchases_per_s": purchases_per_s, "peak_rss_mb": max(monitor.peak_rss.values(), default=0) / 2**20,
        **load_figures(rec, monitor, in_flight),
    })


# --------------------------------------------------------------------------- (c)

def available_seats(seat_map_html: str) -> set[int]:
    """Seat ids the buyer's map shows as selectable."""
    seats = set()
    for tag in SEAT_INPUT.findall(seat_map_html):
        if "disabled" not in tag:
            match = SEAT_VALUE.search(tag)
            if match:
                seats.add(int(match.group(1)))
    return seats


async def seat_rush(stack: Stack, data: Data, postmaster_pid: int | None, *, buyers: int = 500,
                    rows: int = 20, seats_per_row: int = 25, best: int = 200, attempts: int = 4,
                    seed: int = 20, on_start=None, pay: bool = True) -> Outcome:
    """Buyers race for the best seats in adjacent blocks of 1-4; a loser reloads the map and tries again."""
    title = f"(c) seat-map rush: {buyers} buyers for the best {best} of {rows * seats_per_row} seats"
    event_id = data.seated_event(rows, seats_per_row)
    best_rows = [row for row in data.seats_by_row(event_id)][: -(-best // seats_per_row)]
    best_seats = {s for row in best_rows for s in row}
    browsers = await _prepare(stack, data, buyers, event_id, "seat")
    rec = Recorder()
    go = asyncio.Event()
    rng = random.Random(seed)
    wants = [rng.choice((1, 2, 2, 2, 3, 4)) for _ in browsers]
    reserve_url, map_url = f"/events/{event_id}/reserve", f"/events/{event_id}/seat-map"
    sold_at: dict[int, float] = {}
    served: Counter = Counter()

    def pick(free_rows: list[list[int]], n: int, r: random.Random) -> list[int] | None:
        # People want the front rows, and sit together: the first block of
        # n adjacent free seats in a row chosen with a bias to the front.
        for row in sorted(range(len(free_rows)), key=lambda i: r.random() * (1 + i / 2)):
            seats = free_rows[row]
            for start in r.sample(range(len(seats)), len(seats)):
                block = seats[start:start + n]
                if len(block) == n and block[-1] - block[0] == n - 1:
                    return block
        return None

    async def buyer(i: int, browser: Browser) -> None:
        r = random.Random(seed * 1000 + i)
        free = [list(row) for row in best_rows]
        await go.wait()
        for attempt in range(attempts):
            block = pick(free, wants[i], r)
            if block is None:
                rec.outcomes["best seats gone"] += 1
                return
            answer = await _with_busy_retry(rec, "reserve", lambda: browser.post(reserve_url, {"seat": block}))
            if answer is None:
                rec.outcomes["no answer"] += 1
                return
            served[browser.port] += 1
            if answer.status == 204:
                now = time.perf_counter()
                for seat in block:
                    sold_at[seat] = now
                rec.outcomes[f"won on try {attempt + 1}"] += 1
                if pay and await purchase(rec, browser, answer.headers["hx-redirect"]):
                    rec.outcomes["bought"] += 1
                return
            if answer.status != 409 or "just taken" not in answer.text:
                rec.outcomes[f"unexpected {answer.status}"] += 1
                return
            # The 409 carries the refreshed map (the page swaps it in); an
            # older page would reload it.
            fresh = available_seats(answer.text) if SEAT_INPUT.search(answer.text) else None
            if fresh is None:
                page = await rec.call("seat map", browser.get(map_url, htmx=True))
                if page is None or page.status != 200:
                    rec.outcomes["map reload failed"] += 1
                    return
                fresh = available_seats(page.text)
            open_now = fresh & best_seats
            free = [[s for s in row if s in open_now] for row in best_rows]
        rec.outcomes[f"gave up after {attempts} tries"] += 1

    tasks = [asyncio.create_task(buyer(i, b)) for i, b in enumerate(browsers)]
    await asyncio.sleep(0.2)
    extra_tasks = []
    buyers_done = asyncio.Event()
    with ResourceMonitor(stack, postmaster_pid) as monitor:
        if on_start is not None:
            extra_tasks.append(asyncio.create_task(on_start(event_id, sold_at, buyers_done)))
            await asyncio.sleep(on_start.warmup)
        go.set()
        await asyncio.gather(*tasks)
        buyers_done.set()
        extras = [await t for t in extra_tasks]
    await asyncio.gather(*(b.close() for b in browsers))
    units = data.unit_counts(event_id)
    verdict = data.verdict(event_id)
    failures = []
    if rec.five_xx():
        failures.append(f"{rec.five_xx()} responses were 5xx")
    if verdict:
        failures.append("invariant violations")
    won = sum(v for k, v in rec.outcomes.items() if k.startswith("won"))
    if won == 0:
        failures.append("nobody won a seat")
    lines = [f"units: {dict(units)}", f"winners: {won}, seats taken: {len(sold_at)} of the best {best}",
             f"reserve answers per instance (port): {dict(served)}"]
    for extra in extras:
        lines.extend(extra or [])
    text = report(title, rec, monitor, verdict=verdict, extra=lines)
    return Outcome(title, text, failures, {"winners": won, "served_by": dict(served), "reservations": won,
                                           "peak_rss_mb": max(monitor.peak_rss.values(), default=0) / 2**20,
                                           **load_figures(rec, monitor, buyers)})


# --------------------------------------------------------------------------- the floor

FLOOR_ROUTES = {"text": "/text", "select1": "/select1"}


async def floor_rate(stack: Stack, postmaster_pid: int | None, *, route: str, in_flight: int,
                     requests: int) -> Outcome:
    """The bare Flask app at a steady `in_flight` requests, each client on its keep-alive connection."""
    path = FLOOR_ROUTES[route]
    title = f"floor: bare Flask {route} route, {in_flight} in flight"
    browsers = [Browser("127.0.0.1", stack.floor.port) for _ in range(in_flight)]
    await asyncio.gather(*(b.get(path) for b in browsers))  # connections open, pools filled
    rec = Recorder()
    left = [requests]

    async def client(browser: Browser) -> None:
        while left[0] > 0:
            left[0] -= 1
            await rec.call(route, browser.get(path))

    with ResourceMonitor(stack, postmaster_pid, instances=[stack.floor]) as monitor:
        await asyncio.gather(*(client(b) for b in browsers))
    await asyncio.gather(*(b.close() for b in browsers))
    figures = load_figures(rec, monitor, in_flight)
    failures = [f"{rec.five_xx()} responses were 5xx"] if rec.five_xx() else []
    text = report(title, rec, monitor, extra=[
        f"{figures['request_rate']:.0f} requests/s, server CPU {figures['cpu_ms_per_request']:.2f} ms per request"])
    return Outcome(title, text, failures, figures)


async def floor_burst(stack: Stack, postmaster_pid: int | None, *, route: str, clients: int) -> Outcome:
    """`clients` requests released at the same instant, each on its own new connection, as in (a)."""
    path = FLOOR_ROUTES[route]
    title = f"floor: bare Flask {route} route, {clients} requests at once"
    browsers = [Browser("127.0.0.1", stack.floor.port) for _ in range(clients)]
    rec = Recorder()
    go = asyncio.Event()

    async def client(browser: Browser) -> None:
        await go.wait()
        await rec.call(route, browser.get(path))

    tasks = [asyncio.create_task(client(b)) for b in browsers]
    await asyncio.sleep(0.2)
    with ResourceMonitor(stack, postmaster_pid, instances=[stack.floor]) as monitor:
        go.set()
        await asyncio.gather(*tasks)
    await asyncio.gather(*(b.close() for b in browsers))
    figures = load_figures(rec, monitor, clients)
    figures["p99_ms"] = percentile(rec.latencies.get(route, []), 99) * 1000
    failures = [f"{rec.five_xx()} responses were 5xx"] if rec.five_xx() else []
    if rec.no_answer():
        failures.append(f"{rec.no_answer()} requests got no answer")
    text = report(title, rec, monitor, extra=[f"p99 {figures['p99_ms']:.0f} ms"])
    return Outcome(title, text, failures, figures)


# --------------------------------------------------------------------------- reserve throughput

async def reserve_rate(stack: Stack, data: Data, postmaster_pid: int | None, *, in_flight: int,
                       buyers: int, per_buyer: int = 2) -> Outcome:
    """GA reserves only, a steady `in_flight` at a time, each by its own buyer, from a pool that never runs low."""
    title = f"reserve throughput: {buyers} GA reserves of {per_buyer}, {in_flight} in flight"
    event_id, tier_id = data.ga_event(buyers * per_buyer * 2, title=f"Rate GA {in_flight}")
    browsers = await _prepare(stack, data, buyers, event_id, f"rate{in_flight}", login_sample=0)
    rec = Recorder()
    queue = list(reversed(browsers))
    reserve_url = f"/events/{event_id}/reserve"

    async def client() -> None:
        while queue:
            browser = queue.pop()
            answer = await rec.call("reserve", browser.post(reserve_url, {f"qty-{tier_id}": per_buyer}))
            if answer is not None and answer.status == 204 and "hx-redirect" in answer.headers:
                rec.outcomes["reserved"] += 1
            else:
                rec.outcomes[f"not reserved ({answer.status if answer else 'no answer'})"] += 1

    with ResourceMonitor(stack, postmaster_pid) as monitor:
        await asyncio.gather(*(client() for _ in range(in_flight)))
    await asyncio.gather(*(b.close() for b in browsers))
    units = data.unit_counts(event_id)
    verdict = data.verdict(event_id)
    figures = load_figures(rec, monitor, in_flight)
    figures["reservations"] = rec.outcomes["reserved"]
    failures = []
    if rec.outcomes["reserved"] != buyers:
        failures.append(f"{rec.outcomes['reserved']} of {buyers} reserves succeeded")
    if units.get("held", 0) != buyers * per_buyer:
        failures.append(f"{units.get('held', 0)} places held, expected {buyers * per_buyer}")
    if rec.five_xx():
        failures.append(f"{rec.five_xx()} responses were 5xx")
    if verdict:
        failures.append("invariant violations")
    text = report(title, rec, monitor, verdict=verdict, extra=[
        f"units: {dict(units)}",
        f"{figures['request_rate']:.0f} reserves/s, server CPU {figures['cpu_ms_per_request']:.2f} ms per reserve"])
    figures["peak_rss_mb"] = max(monitor.peak_rss.values(), default=0) / 2**20
    return Outcome(title, text, failures, figures)
