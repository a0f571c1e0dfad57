"""Scenario (d): open seat maps kept live while the seat-map rush runs.

Each watcher is a browser with the seat map open: its htmx poller sends a
conditional GET of the seat status (`If-None-Match` with the last ETag)
every LIVE_POLL_SECONDS, answered 304 while the event's inventory version
is unchanged, or 200 with the taken seats. Watchers start at staggered
moments (people opened the page at different times), run through the rush
and a few seconds after it, and record when each reserved seat first
showed as taken on their map.
"""
from __future__ import annotations

import asyncio
import random
import re
import time

from tests.load.client import Browser
from tests.load.harness import Recorder, Stack, percentile
from tests.load.scenarios import Outcome, seat_rush

TAKEN = re.compile(r'data-taken="([^"]*)"')


def poll_seconds() -> float:
    from webapp.shop.views import LIVE_POLL_SECONDS

    return float(LIVE_POLL_SECONDS)


async def seat_rush_with_watchers(stack: Stack, data, postmaster_pid, *, buyers: int = 500,
                                  watchers: int = 1000, tail_seconds: float = 6.0, **kw) -> Outcome:
    period = poll_seconds()
    rec = Recorder()
    delays: list[float] = []
    unseen: dict[str, int] = {}

    async def watch(event_id: int, sold_at: dict[int, float], buyers_done: asyncio.Event) -> list[str]:
        bases = [("127.0.0.1", i.port) for i in stack.instances]
        browsers = [Browser(*bases[i % len(bases)]) for i in range(watchers)]
        url = f"/events/{event_id}/seat-status"
        stop_at: list[float] = []

        async def one(i: int, browser: Browser) -> None:
            rng = random.Random(i)
            known: set[int] = set()
            etag = None
            await asyncio.sleep(rng.random() * period)
            while not stop_at or time.perf_counter() < stop_at[0]:
                headers = {"If-None-Match": etag} if etag else None
                answer = await rec.call("poll", browser.get(url, htmx=True, headers=headers))
                now = time.perf_counter()
                if answer is not None and answer.status == 200:
                    etag = answer.headers.get("etag", etag)
                    match = TAKEN.search(answer.text)
                    taken = {int(x) for x in match.group(1).split()} if match else set()
                    for seat in taken - known:
                        if seat in sold_at:
                            delays.append(now - sold_at[seat])
                    known = taken
                await asyncio.sleep(max(0.0, period - (time.perf_counter() - now)))
            unseen["seats never seen by a watcher"] = unseen.get("seats never seen by a watcher", 0) + len(
                set(sold_at) - known)
            await browser.close()

        tasks = [asyncio.create_task(one(i, b)) for i, b in enumerate(browsers)]
        await buyers_done.wait()
        stop_at.append(time.perf_counter() + tail_seconds)
        await asyncio.gather(*tasks)
        polls = rec.latencies.get("poll", [])
        statuses = rec.statuses.get("poll", {})
        return [
            f"watchers: {watchers} open maps polling every {period:.0f} s: {len(polls)} polls, "
            f"answers {dict(statuses)}",
            f"poll latency p50 {percentile(polls, 50) * 1000:.0f} ms, p95 {percentile(polls, 95) * 1000:.0f} ms,"
            f" p99 {percentile(polls, 99) * 1000:.0f} ms",
            f"a reserved seat showed as taken on the maps after: p50 {percentile(delays, 50):.2f} s, "
            f"p95 {percentile(delays, 95):.2f} s, max {max(delays, default=float('nan')):.2f} s "
            f"({len(delays)} seat sightings; the poll period is {period:.0f} s): p50"
            f" {percentile(delays, 50) / period:.2f}, p95 {percentile(delays, 95) / period:.2f} poll periods",
            f"{unseen.get('seats never seen by a watcher', 0)} (watcher, seat) pairs never seen by the end",
        ]

    watch.warmup = period  # every watcher has its map open before the rush
    outcome = await seat_rush(stack, data, postmaster_pid, buyers=buyers, on_start=watch, **kw)
    outcome.title = f"(d) {watchers} live seat maps open during: " + outcome.title
    outcome.text = outcome.text.replace("== (c)", f"== (d) with {watchers} live maps: (c)", 1)
    if rec.five_xx():
        outcome.failures.append(f"{rec.five_xx()} watcher polls were 5xx")
    if unseen.get("seats never seen by a watcher"):
        outcome.failures.append("some reserved seats never showed as taken on a live map")
    outcome.figures["sighting_p95_s"] = percentile(delays, 95)
    outcome.figures["sighting_p50_periods"] = percentile(delays, 50) / period
    outcome.figures["sighting_p95_periods"] = percentile(delays, 95) / period
    outcome.figures["poll_period_s"] = period
    # The polls ran inside the rush's measuring window: count them as its requests.
    f = outcome.figures
    polls = len(rec.latencies.get("poll", []))
    f["requests"] += polls
    f["in_flight"] += watchers
    f["five_xx"] += rec.five_xx()
    f["request_rate"] = f["requests"] / f["wall"]
    f["cpu_ms_per_request"] = f["server_cpu_s"] / f["requests"] * 1000
    return outcome
