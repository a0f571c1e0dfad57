"""Cost table: server CPU and SQL statements per request, per buyer endpoint, as multiples of the floor.

    .venv/bin/python -m tests.load.cost                          # every endpoint (a few minutes)
    .venv/bin/python -m tests.load.cost --only reserve-ga pay    # some endpoints
    .venv/bin/python -m tests.load.cost --requests 20 --rounds 3 # quicker, noisier
    .venv/bin/python -m tests.load.cost --only hold-page --sql   # also print one request's statements
    .venv/bin/python -m tests.load.cost --list                   # the endpoint names
    .venv/bin/python -m tests.load.cost --only waiting-room-now --room-entries 1000000
                                                                 # with a million places in the waiting room

It starts the stack the benchmark starts (embedded PostgreSQL unless
DATABASE_URL is set, the migrations, gunicorn with the launcher's own command
line and the benchmark's 3 gthread workers x 4 threads) and, under the same
command line, the floor: a bare Flask app with a text route and a `SELECT 1`
route on a pooled psycopg2 connection (tests/load/floor_app.py). The expiry
sweep is not started: it is not on any request's path, and its periodic
query would land in the PostgreSQL figures (holds here last an hour).

It then prepares events (general admission; a 1,008-seat hall; a 60,000-seat
stadium shown by section; a sold-out event; one with a waiting list) and buyers with their sessions, and sends each
endpoint's requests one after another, so nothing queues. Like a browser,
it finds every URL it follows in the pages: forms' actions and fields,
htmx elements' `hx-get` and `hx-headers` (the pollers' `If-None-Match`), the
reserve and pay answers' `HX-Redirect`; so it keeps working while the app's
code changes. What it relies on is the markup's swap targets and forms, by id:
#tier-picker, #seat-map, #seat-live, #venue-overview, #countdown, #pay-form, #waitlist-panel,
#waitlist-join, #waiting-room-join-form, #waiting-room-status, and the pay
form's card fields (name, number, expiry, cvc).

Pass 1, CPU: after a warm-up, `--rounds` rounds of `--requests` requests per
endpoint; around each round it reads the CPU time of the app's gunicorn
workers (or the floor's) and of every PostgreSQL process (psutil's figure, read
in nanoseconds: see harness.process_cpu), and reports the median round, split
into app and PostgreSQL. The preparation a request needs (a fresh buyer, a
hold to pay for) happens before its round's first reading.

Pass 2, statements: `log_statement = 'all'` is switched on with ALTER SYSTEM
and pg_reload_conf() (embedded PostgreSQL only; reset afterwards), a few more
requests are sent, and the server log's statement lines from the app's
connections are counted per request: BEGIN/COMMIT/ROLLBACK apart from the
rest. It runs after pass 1, so logging never weighs on the CPU figures.

Output: a Markdown table (for docs/performance.md) and a plain-text one,
each figure also as a multiple of the floor's `SELECT 1` route (the unit of
the cost targets) and of its text route. Exits 1 if an endpoint answered
something other than what a working shop answers.
"""
from __future__ import annotations

import argparse
import asyncio
import html
import math
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Awaitable, Callable

from tests.load.client import Browser, ClientError, Response
from tests.load.harness import CpuMeter, Data, Stack, migrate, open_browsers, start_database
from tests.load.pages import Page

GOOD_CARD = {"name": "Cost Table", "number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123"}
# The pay form's invoice fields, filled (the address is a textarea, which the form reader does not list).
BILLING = {"billing_name": "Cost Table Ltd", "billing_address": "1 Loopback Lane"}
SEATS_PER_ROW = 42
MAP_ROWS = 24  # 24 x 42 = 1,008 seats
STADIUM_SECTIONS = 60  # of 25 x 40: 60,000 seats
GA_PLACES = 2_000
FLOOR_FACTOR = 5  # the floor's rounds are this many times longer: its requests are the cheapest
TX_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION|END)\b", re.I)
LOG_PREFIX = "tbsql "
LOG_LINE = re.compile(r"^tbsql (\d+) ([^|]*)\|\w+:  statement: (.*)$")

Request = Callable[[], Awaitable[Response]]


@dataclass
class Endpoint:
    key: str
    label: str
    expect: Callable[[Response], bool]
    prepare: Callable[[int], Awaitable[list[Request]]]
    target: float | None = None  # at most this many times the SELECT 1 route's CPU
    floor: bool = False          # served by the floor app, not the shop


@dataclass
class Row:
    endpoint: Endpoint
    app_ms: float = math.nan
    pg_ms: float = math.nan
    spread: tuple[float, float] = (math.nan, math.nan)
    statements: float | None = None
    tx_control: float | None = None
    answers: dict = field(default_factory=dict)
    unexpected: int = 0
    sql_sample: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def total_ms(self) -> float:
        return self.app_ms + self.pg_ms


def status(code: int, *, redirect: bool = False) -> Callable[[Response], bool]:
    def check(response: Response) -> bool:
        return response.status == code and (not redirect or "hx-redirect" in response.headers)
    return check


class Shop:
    """The events, buyers and pages the endpoints are measured on."""

    def __init__(self, stack: Stack, data: Data, per_endpoint: int, room_entries: int = 0):
        self.room_entries = room_entries  # synthetic places behind the room visitor
        self.stack = stack
        self.data = data
        self.bases = [("127.0.0.1", i.port) for i in stack.instances]
        self.per_endpoint = per_endpoint  # requests each endpoint sends over the whole run
        self.opened: list[Browser] = []

    async def buyers(self, n: int, tag: str) -> list[Browser]:
        """N new buyers, each with a session and a CSRF token (from the GA event page)."""
        if n == 0:
            return []
        prefix = f"cost-{tag}-{secrets.token_hex(3)}"
        cookies = [self.data.session_cookie(u) for u in self.data.create_buyers(n, prefix)]
        browsers = await open_browsers(self.bases, cookies, event_path=self.ga_path, concurrency=6)
        self.opened.extend(browsers)
        return browsers

    async def page(self, browser: Browser, path: str, **kw) -> Page:
        response = await browser.get(path, **kw)
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}: {response.text[:300]}")
        return Page(response.text)

    async def reserve_ga(self, browser: Browser, page: Page, quantity: int) -> Response:
        form = page.form("tier-picker")
        wanted = self.qty_fields(form)[0] if page is not self.ga_page else self.ga_qty_field
        return await browser.post(form.action, fields(browser, form, [
            (name, str(quantity) if name == wanted else "0") for name in self.qty_fields(form)]))

    @staticmethod
    def qty_fields(form) -> list[str]:
        return [a["name"] for _, a in form.fields if (a.get("name") or "").startswith("qty-")]

    async def hold_for(self, browser: Browser) -> str:
        answer = await self.reserve_ga(browser, self.ga_page, 2)
        if answer.status != 204 or "hx-redirect" not in answer.headers:
            raise RuntimeError(f"reserve answered {answer.status}: {answer.text[:300]}")
        return answer.headers["hx-redirect"]

    async def pay_request(self, browser: Browser, hold_url: str, billing: dict | None = None) -> Request:
        form = (await self.page(browser, hold_url)).form("pay-form")
        extra = dict(billing or {})
        sent = [(k, extra.pop(k, GOOD_CARD.get(k, v))) for k, v in form.values()] + list(extra.items())
        return lambda: browser.post(form.action, sent)

    async def setup(self) -> None:
        n = self.per_endpoint
        data = self.data
        self.ga_places = max(GA_PLACES, 4 * n + 200)
        self.ga_event, self.ga_tier = data.ga_event(self.ga_places, title="Cost GA", hold_minutes=60)
        self.ga_path = f"/events/{self.ga_event}"
        self.map_event = data.seated_event(MAP_ROWS, SEATS_PER_ROW, title="Cost Hall", hold_minutes=60)
        rows = max(MAP_ROWS, math.ceil((2 * n + 8) / SEATS_PER_ROW))
        self.seat_event = data.seated_event(rows, SEATS_PER_ROW, title="Cost Seats", hold_minutes=60)
        self.best_event = data.seated_event(rows, SEATS_PER_ROW, title="Cost Best", hold_minutes=60)
        self.soldout_event, _ = data.ga_event(2, title="Cost Sold Out", hold_minutes=60)
        self.waitlist_event, _ = data.ga_event(1, title="Cost Waiting List", hold_minutes=60)
        # A waiting room that has started, paused: nobody in it moves, so its polls can answer 304.
        self.room_event, _ = data.ga_event(10, title="Cost Waiting Room", hold_minutes=60)
        data.waiting_room(self.room_event, cap=1, paused=True)
        self.room_path = f"/events/{self.room_event}/waiting-room"
        # Joins go to a room of their own: each one moves its room's version,
        # which would turn the measured visitor's unchanged polls into 200s.
        self.join_room_event, _ = data.ga_event(10, title="Cost Waiting Room (joins)", hold_minutes=60)
        data.waiting_room(self.join_room_event, cap=1, paused=True)

        helpers = await self.buyers(30, "setup")
        self.viewer, self.holder, self.orderer, self.waiter, self.room_visitor = await self.buyers(5, "roles")
        self.ga_page = await self.page(self.viewer, self.ga_path)
        self.ga_qty_field = f"qty-{self.ga_tier}"

        # Sold out after the losers loaded the page: they submit the picker they saw.
        self.soldout_page = await self.page(self.viewer, f"/events/{self.soldout_event}")
        self.waitlist_page = await self.page(self.viewer, f"/events/{self.waitlist_event}")
        for page, quantity, who in ((self.soldout_page, 2, helpers[0]), (self.waitlist_page, 1, helpers[1])):
            answer = await self.reserve_ga(who, page, quantity)
            if answer.status != 204:
                raise RuntimeError(f"could not sell out a test event: {answer.status} {answer.text[:300]}")

        # The waiter joins the line of the sold-out event through its form.
        page = await self.page(self.waiter, f"/events/{self.waitlist_event}")
        join = page.form("waitlist-join")
        answer = await self.waiter.post(join.action, join.values())
        if answer.status not in (200, 303):
            raise RuntimeError(f"joining the waiting list answered {answer.status}: {answer.text[:300]}")
        page = await self.page(self.waiter, f"/events/{self.waitlist_event}")
        self.waitlist_poll_url = page.element("waitlist-panel")["hx-get"]
        self.waitlist_poll_headers = page.hx_headers("waitlist-panel")

        # The room visitor takes a place in the waiting room through its form. The joins' room is opened by
        # an admission pass first (now.json runs it), as a room is within a second of its start: a join
        # then numbers its own place.
        await self.room_visitor.get(f"/events/{self.join_room_event}/waiting-room/now.json")
        self.room_join_form = (await self.page(self.room_visitor, f"/events/{self.join_room_event}/waiting-room")
                               ).form("waiting-room-join-form")
        join_form = (await self.page(self.room_visitor, self.room_path)).form("waiting-room-join-form")
        answer = await self.room_visitor.post(join_form.action, fields(self.room_visitor, join_form, []))
        if answer.status != 200:
            raise RuntimeError(f"joining the waiting room answered {answer.status}: {answer.text[:300]}")
        page = await self.page(self.room_visitor, self.room_path)
        # The first poll after the start runs the first admission pass (the
        # countdowns turn into positions): the page drawn after it is current.
        await self.room_visitor.get(page.element("waiting-room-status")["data-status-url"], htmx=True)
        page = await self.page(self.room_visitor, self.room_path)
        status = page.element("waiting-room-status")
        self.room_poll_url = status["data-status-url"]
        self.room_now_url = status["data-now-url"]
        answer = await self.room_visitor.get(self.room_poll_url, htmx=True)
        self.room_poll_headers = {"If-None-Match": answer.headers["etag"]}
        if self.room_entries:
            self.data.fill_waiting_room(self.room_event, self.room_entries, numbered=True)
        answer = await self.room_visitor.get(self.room_now_url)
        self.room_now_headers = {"If-None-Match": answer.headers["etag"]}

        # The 1,008-seat hall, about a tenth of it taken by other buyers.
        hall = await self.page(helpers[2], f"/events/{self.map_event}")
        free = free_seats(hall.form("seat-map"))
        for i, helper in enumerate(helpers[2:27]):
            form = hall.form("seat-map")
            picks = free[i * 40:i * 40 + 4]
            answer = await helper.post(form.action, fields(helper, form, [("seat", s) for s in picks]))
            if answer.status != 204:
                raise RuntimeError(f"could not take seats in the hall: {answer.status} {answer.text[:300]}")
        self.map_path = f"/events/{self.map_event}"
        page = await self.page(self.viewer, self.map_path)
        live = page.element("seat-live")
        self.status_url = live["hx-get"]
        self.status_headers = page.hx_headers("seat-live")
        self.selection_url = page.element("seat-map")["hx-get"]
        # The seat list's steps, each reached by the previous step's first link, as a buyer goes.
        self.list_path = f"/events/{self.map_event}/seat-list"
        self.list_section_path = _first_step(await self.viewer.get(self.list_path), "section=")
        self.list_row_path = _first_step(await self.viewer.get(self.list_section_path), "row=")
        self.selection_seats = free_seats(page.form("seat-map"))[5:8]

        # The hall buyers reserve in: free seats, and four already taken for the losers.
        self.seat_page = await self.page(helpers[27], f"/events/{self.seat_event}")
        seat_form = self.seat_page.form("seat-map")
        self.free_seat_list = free_seats(seat_form)
        self.taken_seats = self.free_seat_list[-4:]
        self.free_seat_list = self.free_seat_list[:-4]
        answer = await helpers[27].post(seat_form.action,
                                        fields(helpers[27], seat_form, [("seat", s) for s in self.taken_seats]))
        if answer.status != 204:
            raise RuntimeError(f"could not take seats: {answer.status} {answer.text[:300]}")

        self.best_form = (await self.page(helpers[27], f"/events/{self.best_event}")).form("best-available-form")

        # The 60,000-seat stadium: its overview, a section with a few seats taken, their polls.
        self.stadium_event = data.stadium(STADIUM_SECTIONS, 25, 40, title="Cost Stadium", hold_minutes=60)
        self.stadium_path = f"/events/{self.stadium_event}"
        self.section_path = f"{self.stadium_path}/sections/{STADIUM_SECTIONS // 2}"
        section = await self.page(helpers[28], self.section_path)
        form = section.form("seat-map")
        answer = await helpers[28].post(form.action, fields(helpers[28], form,
                                                            [("seat", s) for s in free_seats(form)[100:104]]))
        if answer.status != 204:
            raise RuntimeError(f"could not take seats in the stadium: {answer.status} {answer.text[:300]}")
        page = await self.page(self.viewer, self.section_path)
        self.section_status_url = page.element("seat-live")["hx-get"]
        self.section_status_headers = page.hx_headers("seat-live")
        page = await self.page(self.viewer, self.stadium_path)
        self.overview_url = page.element("venue-overview")["hx-get"]
        self.overview_headers = page.hx_headers("venue-overview")

        # A hold to look at, and an order.
        self.hold_url = await self.hold_for(self.holder)
        hold_page = await self.page(self.holder, self.hold_url)
        self.countdown_url = hold_page.element("countdown")["hx-get"]
        pay = await self.pay_request(self.orderer, await self.hold_for(self.orderer))
        answer = await pay()
        if answer.status != 204 or "hx-redirect" not in answer.headers:
            raise RuntimeError(f"pay answered {answer.status}: {answer.text[:300]}")
        self.order_url = answer.headers["hx-redirect"]
        for b in helpers:
            await b.close()

    # ------------------------------------------------------------------ endpoints

    def endpoints(self) -> list[Endpoint]:
        floor = Browser("127.0.0.1", self.stack.floor.port)

        def same(browser: Browser, path: str, **kw):
            async def prepare(n: int) -> list[Request]:
                return [lambda: browser.get(path, **kw)] * n
            return prepare

        def per_buyer(make):
            async def prepare(n: int) -> list[Request]:
                browsers = await self.buyers(n, "ep")
                return [await make(b) for b in browsers]
            return prepare

        seats = iter(range(0, len(self.free_seat_list) - 1, 2))

        async def ga_win(b: Browser) -> Request:
            return lambda: self.reserve_ga(b, self.ga_page, 2)

        async def ga_loss(b: Browser) -> Request:
            return lambda: self.reserve_ga(b, self.soldout_page, 1)

        async def seat_win(b: Browser) -> Request:
            form = self.seat_page.form("seat-map")
            i = next(seats)
            sent = fields(b, form, [("seat", s) for s in self.free_seat_list[i:i + 2]])
            return lambda: b.post(form.action, sent)

        async def seat_loss(b: Browser) -> Request:
            form = self.seat_page.form("seat-map")
            sent = fields(b, form, [("seat", s) for s in self.taken_seats[:2]])
            return lambda: b.post(form.action, sent)

        async def best_win(b: Browser) -> Request:
            # Best available: the statement chooses the pair (SKIP LOCKED) and holds it.
            sent = fields(b, self.best_form, [("quantity", "2")])
            return lambda: b.post(self.best_form.action, sent)

        async def pay(b: Browser) -> Request:
            return await self.pay_request(b, await self.hold_for(b))

        async def pay_invoiced(b: Browser) -> Request:
            return await self.pay_request(b, await self.hold_for(b), BILLING)

        async def room_join(b: Browser) -> Request:
            sent = fields(b, self.room_join_form, [])
            return lambda: b.post(self.room_join_form.action, sent)

        async def api_reserve(n: int) -> list[Request]:
            # The JSON API's reserve: a bearer token instead of the cookie.
            tokens = self.data.api_tokens(self.data.create_buyers(n, f"cost-api-{secrets.token_hex(3)}"))
            body = ('{"quantities": [{"tier_id": %d, "quantity": 2}]}' % self.ga_tier).encode()
            host, port = self.bases[0]
            requests = []
            for token in tokens:
                client = Browser(host, port)
                self.opened.append(client)
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                requests.append(lambda c=client, h=headers: c.request("POST", f"/api/v1/events/{self.ga_event}/holds",
                                                                      body=body, headers=h))
            return requests

        selection = self.selection_url + "?" + "&".join(f"seat={s}" for s in self.selection_seats)
        stale = {"If-None-Match": 'W/"stale"'}
        return [
            Endpoint("floor-text", "floor: text route", status(200), same(floor, "/text"), floor=True),
            Endpoint("floor-select1", "floor: SELECT 1 route", status(200), same(floor, "/select1"), floor=True),
            Endpoint("event-ga", "event page (GA)", status(200), same(self.viewer, self.ga_path), 3),
            Endpoint("map-page", "seat-map page (1,008 seats)", status(200), same(self.viewer, self.map_path), 8),
            Endpoint("list-sections", "seat list: sections (htmx)", status(200),
                     same(self.viewer, self.list_path, htmx=True)),
            Endpoint("list-rows", "seat list: a section's rows (htmx)", status(200),
                     same(self.viewer, self.list_section_path, htmx=True)),
            Endpoint("list-seats", "seat list: a row's seats (htmx)", status(200),
                     same(self.viewer, self.list_row_path, htmx=True)),
            Endpoint("seat-status-304", "seat-status, unchanged (304)", status(304),
                     same(self.viewer, self.status_url, htmx=True, headers=self.status_headers), 1.5),
            Endpoint("seat-status-200", "seat-status, changed (200)", status(200),
                     same(self.viewer, self.status_url, htmx=True, headers=stale)),
            Endpoint("stadium-overview", "stadium overview (60,000 seats)", status(200),
                     same(self.viewer, self.stadium_path)),
            Endpoint("stadium-section", "stadium section page (1,000 seats)", status(200),
                     same(self.viewer, self.section_path)),
            Endpoint("section-status-304", "section seat-status, unchanged (304)", status(304),
                     same(self.viewer, self.section_status_url, htmx=True, headers=self.section_status_headers)),
            Endpoint("section-status-200", "section seat-status, changed (200)", status(200),
                     same(self.viewer, self.section_status_url, htmx=True, headers=stale)),
            Endpoint("overview-poll-304", "stadium overview poll, unchanged (304)", status(304),
                     same(self.viewer, self.overview_url, htmx=True, headers=self.overview_headers)),
            Endpoint("overview-poll-200", "stadium overview poll, changed (200)", status(200),
                     same(self.viewer, self.overview_url, htmx=True, headers=stale)),
            Endpoint("selection", "selection summary (3 seats)", status(200),
                     same(self.viewer, selection, htmx=True)),
            Endpoint("reserve-ga", "reserve GA, won (2 places)", status(204, redirect=True), per_buyer(ga_win), 2),
            Endpoint("reserve-ga-soldout", "reserve GA, sold out (409)", status(409), per_buyer(ga_loss), 2),
            Endpoint("api-reserve-ga", "API reserve GA, won (2 places)", status(201), api_reserve, 2),
            Endpoint("reserve-seats", "reserve seats, won (2 seats)", status(204, redirect=True),
                     per_buyer(seat_win), 2),
            Endpoint("reserve-seats-taken", "reserve seats, just taken (409)", status(409), per_buyer(seat_loss)),
            Endpoint("reserve-best", "best available, won (2 seats)", status(204, redirect=True),
                     per_buyer(best_win), 2),
            Endpoint("hold-page", "hold page", status(200), same(self.holder, self.hold_url), 3),
            Endpoint("countdown", "countdown poll", status(200), same(self.holder, self.countdown_url, htmx=True), 3),
            Endpoint("pay", "pay (approved card, gateway's write included)", status(204, redirect=True),
                     per_buyer(pay), 4),
            Endpoint("pay-invoiced", "pay with a billing name (an invoice numbered)", status(204, redirect=True),
                     per_buyer(pay_invoiced), 4),
            Endpoint("order-page", "order page (2 QR codes)", status(200), same(self.orderer, self.order_url), 3),
            Endpoint("waitlist-304", "waiting-list poll, unchanged (304)", status(304),
                     same(self.waiter, self.waitlist_poll_url, htmx=True, headers=self.waitlist_poll_headers), 1.5),
            Endpoint("waitlist-200", "waiting-list poll, changed (200)", status(200),
                     same(self.waiter, self.waitlist_poll_url, htmx=True, headers=stale)),
            Endpoint("waiting-room-join", "waiting room: join (its status in place)", status(200), per_buyer(room_join),
                     1.5),
            Endpoint("waiting-room-304", "waiting room status, unchanged (304)", status(304),
                     same(self.room_visitor, self.room_poll_url, htmx=True, headers=self.room_poll_headers), 1.5),
            Endpoint("waiting-room-200", "waiting room status, changed (200)", status(200),
                     same(self.room_visitor, self.room_poll_url, htmx=True, headers=stale), 1.5),
            Endpoint("waiting-room-now", "waiting room shared state (now.json, 200)", status(200),
                     same(self.room_visitor, self.room_now_url)),
            Endpoint("waiting-room-now-304", "waiting room shared state, unchanged (304)", status(304),
                     same(self.room_visitor, self.room_now_url, headers=self.room_now_headers)),
            Endpoint("waiting-room-draw", "waiting room: a file of the draw's numbers (200)", status(200),
                     same(self.room_visitor, f"{self.room_path}/draw/0.json")),
        ]

    async def close_spent(self) -> None:
        keep = {id(self.viewer), id(self.holder), id(self.orderer), id(self.waiter), id(self.room_visitor)}
        spent = [b for b in self.opened if id(b) not in keep]
        self.opened = [b for b in self.opened if id(b) in keep]
        await asyncio.gather(*(b.close() for b in spent))


def _first_step(answer, marker: str) -> str:
    """The first link of a seat-list step that goes one step further (its query names `marker`)."""
    for href in re.findall(r'href="([^"]*seat-list\?[^"]*)"', answer.text):
        href = html.unescape(href)
        if marker in href:
            return href
    raise RuntimeError(f"no seat-list link with {marker} in: {answer.text[:300]}")


def fields(browser: Browser, form, chosen: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A form's fields as this browser submits them: its own CSRF token, the chosen values in place."""
    names = {k for k, _ in chosen}
    kept = [(k, browser.csrf if k == "csrf_token" and browser.csrf else v) for k, v in form.values() if k not in names]
    return kept + chosen


def free_seats(form) -> list[str]:
    return [a["value"] for a in form.inputs("seat") if "disabled" not in a]


# ---------------------------------------------------------------------- measuring

async def send(requests: list[Request], endpoint: Endpoint, row: Row) -> None:
    for request in requests:
        try:
            response = await request()
        except ClientError as error:
            row.answers[error.kind] = row.answers.get(error.kind, 0) + 1
            row.unexpected += 1
            continue
        row.answers[response.status] = row.answers.get(response.status, 0) + 1
        if not endpoint.expect(response):
            row.unexpected += 1
            if row.unexpected == 1:
                row.error = f"answered {response.status}: {response.text[:200]!r}"


async def measure_cpu(shop: Shop, endpoint: Endpoint, row: Row, meter: CpuMeter, *, rounds: int, n: int,
                      warmup: int) -> list[tuple[float, float]]:
    """`rounds` samples of (app ms, PostgreSQL ms) per request."""
    await send(await endpoint.prepare(warmup), endpoint, row)
    samples = []
    for _ in range(rounds):
        requests = await endpoint.prepare(n)
        await asyncio.sleep(0.2)  # let the preparation's after-work settle
        before = meter.read()
        await send(requests, endpoint, row)
        await asyncio.sleep(0.02)  # the last request's teardown (connection back to the pool)
        used = CpuMeter.used(before, meter.read())
        samples.append((used["app"] / n * 1000, used["postgres"] / n * 1000))
        await shop.close_spent()
    return samples


def settle(row: Row, samples: list[tuple[float, float]]) -> None:
    """The median round (by total), and the range of the rounds."""
    totals = [a + p for a, p in samples]
    median = sorted(range(len(samples)), key=lambda i: totals[i])[(len(samples) - 1) // 2]
    row.app_ms, row.pg_ms = samples[median]
    row.spread = (min(totals), max(totals))


class StatementLog:
    """log_statement = 'all' for a while, and the statements the server logged since a mark."""

    def __init__(self, url: str, log_path):
        from sqlalchemy import create_engine

        self.path = log_path
        self.engine = create_engine(url, isolation_level="AUTOCOMMIT",
                                    connect_args={"application_name": "cost-table"})

    def _set(self, statements: list[str]) -> None:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
            conn.execute(text("SELECT pg_reload_conf()"))
        time.sleep(0.5)

    def __enter__(self) -> StatementLog:
        self._set(["ALTER SYSTEM SET log_statement = 'all'",
                   f"ALTER SYSTEM SET log_line_prefix = '{LOG_PREFIX}%p %a|'"])
        return self

    def __exit__(self, *exc) -> None:
        self._set(["ALTER SYSTEM RESET log_statement", "ALTER SYSTEM RESET log_line_prefix"])
        self.engine.dispose()

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int, application: str) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(mark)
            lines = f.read().decode("utf-8", "replace").splitlines()
        found = []
        for line in lines:
            match = LOG_LINE.match(line)
            if match and match.group(2) == application:
                found.append(match.group(3))
        return found


def whole_statements(log_text: str, application: str) -> list[str]:
    """Statements with their continuation lines (the log prefixes only a statement's first line)."""
    out: list[str] = []
    current: list[str] | None = None
    for line in log_text.splitlines():
        match = LOG_LINE.match(line)
        if match or line.startswith(LOG_PREFIX):
            current = None
            if match and match.group(2) == application:
                current = [match.group(3)]
                out.append(current)
        elif current is not None:
            current.append(line.strip())
    return [" ".join(" ".join(parts).split()) for parts in out]


async def count_statements(endpoint: Endpoint, row: Row, log: StatementLog, *, n: int, show: bool) -> None:
    application = "floor" if endpoint.floor else "tickets"
    await send(await endpoint.prepare(2), endpoint, row)  # every pooled connection has seen the new setting
    requests = await endpoint.prepare(n)
    await asyncio.sleep(0.2)
    mark = log.mark()
    await send(requests[:1], endpoint, row)
    await asyncio.sleep(0.05)
    first = log.mark()
    await send(requests[1:], endpoint, row)
    await asyncio.sleep(0.1)
    statements = log.since(mark, application)
    control = [s for s in statements if TX_CONTROL.match(s)]
    row.statements = (len(statements) - len(control)) / n
    row.tx_control = len(control) / n
    if show:
        with open(log.path, "rb") as f:
            f.seek(mark)
            head = f.read(first - mark).decode("utf-8", "replace")
        row.sql_sample = whole_statements(head, application)


# ---------------------------------------------------------------------- output

def _fmt(value: float | None, digits: int = 1, *, whole: bool = False) -> str:
    """`whole`: counts, shown without decimals when they are whole numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if whole and float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def table(rows: list[Row], *, markdown: bool) -> str:
    floor = {r.endpoint.key: r for r in rows}
    select1 = floor.get("floor-select1")
    textr = floor.get("floor-text")
    head = ["endpoint", "answer", "app ms", "PG ms", "CPU ms", "× SELECT 1", "× text", "SQL", "+ tx",
            "target", ""]
    body = []
    for r in rows:
        base = select1.total_ms if select1 else math.nan
        vs1 = r.total_ms / base if base else math.nan
        vst = r.total_ms / textr.total_ms if textr and textr.total_ms else math.nan
        answer = ", ".join(f"{k}" + (f"×{v}" if len(r.answers) > 1 else "") for k, v in r.answers.items())
        if r.unexpected:
            answer += f" ({r.unexpected} unexpected)"
        target = f"≤ {_fmt(r.endpoint.target)}×" if r.endpoint.target else ""
        verdict = ("✔" if vs1 <= r.endpoint.target else "✘") if r.endpoint.target and not math.isnan(vs1) else ""
        body.append([r.endpoint.label, answer, _fmt(r.app_ms, 2), _fmt(r.pg_ms, 2), _fmt(r.total_ms, 2),
                     _fmt(vs1, 1), _fmt(vst, 1), _fmt(r.statements, whole=True), _fmt(r.tx_control, whole=True),
                     target, verdict])
    if markdown:
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
    out = []
    for cells in [head, *body]:
        out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
                   .rstrip())
    return "\n".join(out)


# ---------------------------------------------------------------------- the command

async def run(args: argparse.Namespace) -> int:
    from tests.load.bench import machine

    database = start_database(os.environ.get("DATABASE_URL"))
    stack = Stack(database.url, workers=args.workers, threads=args.threads, sweep=False, floor=True)
    rows: list[Row] = []
    try:
        migrate(database.url, stack.secret_key)
        with stack:
            data = Data(database.url, stack.secret_key)
            sql_n = 0 if args.no_sql else args.sql_requests + 2
            per_endpoint = args.warmup + args.rounds * args.requests + sql_n
            shop = Shop(stack, data, per_endpoint, room_entries=args.room_entries)
            started = time.perf_counter()
            await shop.setup()
            endpoints = shop.endpoints()
            if args.list:
                print("\n".join(f"{e.key:<22} {e.label}" for e in endpoints))
                return 0
            wanted = [e for e in endpoints if e.floor or not args.only or e.key in args.only]
            unknown = set(args.only or ()) - {e.key for e in endpoints}
            if unknown:
                print(f"unknown endpoint(s): {', '.join(sorted(unknown))}; see --list", file=sys.stderr)
                return 2
            print(f"prepared in {time.perf_counter() - started:.0f} s; measuring {len(wanted)} endpoints,"
                  f" {args.rounds} rounds x {args.requests} requests each", file=sys.stderr, flush=True)
            rows = [Row(e) for e in wanted]
            # The floor is every figure's unit: measured with more requests,
            # before and after the others, so a drift of the machine's speed
            # during the run weighs on both sides.
            floor_rows = [r for r in rows if r.endpoint.floor]
            floor_samples: dict[str, list] = {r.endpoint.key: [] for r in floor_rows}

            async def measure_floor() -> None:
                for row in floor_rows:
                    floor_samples[row.endpoint.key] += await measure_cpu(
                        shop, row.endpoint, row, CpuMeter(stack.floor, database.postmaster_pid),
                        rounds=args.rounds, n=args.requests * FLOOR_FACTOR, warmup=args.warmup)

            await measure_floor()
            for row in rows:
                if row.endpoint.floor:
                    continue
                meter = CpuMeter(stack.instances[0], database.postmaster_pid)
                settle(row, await measure_cpu(shop, row.endpoint, row, meter, rounds=args.rounds, n=args.requests,
                                              warmup=args.warmup))
                print(f"  {row.endpoint.key:<22} {row.total_ms:7.2f} ms", file=sys.stderr, flush=True)
            await measure_floor()
            for row in floor_rows:
                settle(row, floor_samples[row.endpoint.key])
                print(f"  {row.endpoint.key:<22} {row.total_ms:7.2f} ms", file=sys.stderr, flush=True)
            sql_note = "SQL: statements per request from the server log (log_statement = 'all'), " \
                       "BEGIN/COMMIT/ROLLBACK counted apart"
            if args.no_sql:
                sql_note = "SQL: not counted (--no-sql)"
            elif database.log_path is None:
                sql_note = "SQL: not counted (needs the embedded PostgreSQL, whose log this command reads)"
            else:
                with StatementLog(database.url, database.log_path) as log:
                    for row in rows:
                        await count_statements(row.endpoint, row, log, n=args.sql_requests, show=args.sql)
            await shop.close_spent()
            data.dispose()
            errors = stack.server_errors()
        print(f"Ticketbooth cost table, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the end")
        print(f"app and floor: gunicorn (the launcher's command line), {args.workers} gthread workers x"
              f" {args.threads} threads each; requests sent one after another from one client")
        print(f"CPU: median of {args.rounds} rounds of {args.requests} requests after {args.warmup} warm-up (the"
              f" floor: {2 * args.rounds} rounds of {args.requests * FLOOR_FACTOR}, half before and half after the"
              f" others); app = its gunicorn workers, PG = every PostgreSQL process; ms per request")
        print(f"events: general admission with {shop.ga_places} places; a {MAP_ROWS * SEATS_PER_ROW}-seat hall"
              f" with 100 seats held by others; buyers logged in; the waiting room (paused) with"
              f" {1 + args.room_entries:,} places")
        print(sql_note + "; + tx: BEGIN/COMMIT/ROLLBACK per request")
        print("× SELECT 1 / × text: the request's CPU as a multiple of the floor's routes in this run;"
              " target: the ceiling, in multiples of SELECT 1")
        print()
        print(table(rows, markdown=False))
        print()
        print(table(rows, markdown=True))
        print()
        print("round-to-round range of CPU ms per request (min – max): " + "; ".join(
            f"{r.endpoint.key} {r.spread[0]:.2f}–{r.spread[1]:.2f}" for r in rows))
        print(f"server log: {len(errors)} error line(s)" + "".join(f"\n  {e}" for e in errors[:5]))
        for row in rows:
            if row.error:
                print(f"UNEXPECTED {row.endpoint.key}: {row.error}")
            if row.sql_sample:
                print(f"\n-- statements of one {row.endpoint.key} request:")
                print("\n".join(f"   {s}" for s in row.sql_sample))
    finally:
        database.stop()
    return 1 if any(r.unexpected for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="measure only these endpoints (and the floor)")
    parser.add_argument("--list", action="store_true", help="list the endpoint names and exit")
    parser.add_argument("--requests", type=int, default=40, help="requests per round (default 40)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per endpoint; the median is reported")
    parser.add_argument("--warmup", type=int, default=10, help="requests per endpoint before measuring")
    parser.add_argument("--sql-requests", type=int, default=5, help="requests per endpoint in the statement pass")
    parser.add_argument("--no-sql", action="store_true", help="skip the statement pass")
    parser.add_argument("--sql", action="store_true", help="print the statements of one request per endpoint")
    parser.add_argument("--room-entries", type=int, default=0, metavar="N",
                        help="N synthetic places in the waiting room behind the measured visitor")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
