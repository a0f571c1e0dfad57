"""Failover and switchover under a bounded rush, on the one-machine cluster (deploy/cluster/cluster.py).

    sudo .venv/bin/python -m tests.load.failover --rounds 3            # synchronous standby
    sudo .venv/bin/python -m tests.load.failover --rounds 3 --async    # asynchronous standby

A few buyers (API tokens, through nginx) reserve one place and pay for it,
over and over; the sweep runs as in production. A few seconds in, the
Patroni leader's postgres is killed (SIGKILL on its postmaster); later, a
planned switchover is asked of Patroni's REST API. For each fault it reports
how long writes were refused (from the fault to the first reserve that
succeeded again), what the buyers were answered, and then checks, on the new
primary: every order a buyer was told was confirmed is there, no charge
lacks its order once the sweep has settled the payments left pending, and
the invariant checker finds nothing (no place sold twice). Meanwhile a
crowd polls another event's waiting room (now.json, through nginx): the line
must go on moving after the fault.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "cluster"))

import cluster as cluster_tool  # noqa: E402

from config import normalise_database_url  # noqa: E402

CARD = {"number": "4242 4242 4242 4242", "expiry": "12/39", "cvc": "123", "name": "Ada Failover"}
# The sweep settles a payment cut off by the fault this soon (production: 60 s).
# A payment the gateway has no record of is voided after 10 s (production: 300 s).
SETTINGS = {"PAYMENT_RECONCILE_AFTER_SECONDS": "3", "PAYMENT_VOID_AFTER_SECONDS": "10", "RATELIMIT_ENABLED": "0"}


@dataclass
class Answer:
    at: float
    kind: str
    status: int
    retry_after: str | None


@dataclass
class Rush:
    """Buyers looping reserve → pay through nginx, and what they were answered."""

    port: int
    event_id: int
    tier_id: int
    tokens: list[str]
    room_event_id: int | None = None
    answers: list[Answer] = field(default_factory=list)
    # The waiting room's shared state as its crowd polls it (now.json): when, the status, people served.
    room: list[tuple[float, int, int | None]] = field(default_factory=list)
    confirmed: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def call(self, kind: str, path: str, body: dict, token: str, **headers: str) -> tuple[int, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json",
                                                                 "Authorization": f"Bearer {token}", **headers})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload, retry = response.status, response.read(), response.headers.get("Retry-After")
        except urllib.error.HTTPError as error:
            status, payload, retry = error.code, error.read(), error.headers.get("Retry-After")
        except OSError:
            status, payload, retry = 0, b"{}", None  # no answer at all
        self.answers.append(Answer(time.monotonic(), kind, status, retry))
        try:
            return status, json.loads(payload or b"{}")
        except ValueError:
            return status, {}

    def buyer(self, n: int, token: str) -> None:
        while not self._stop.is_set():
            status, hold = self.call("reserve", f"/api/v1/events/{self.event_id}/holds",
                                     {"quantities": [{"tier_id": self.tier_id, "quantity": 1}]}, token)
            if status != 201:
                time.sleep(0.2)
                continue
            key = f"failover-{n}-{hold['id']}-{'k' * 16}"
            # The same key until a definitive answer: one charge, one order, whatever the database did.
            for _ in range(200):
                status, order = self.call("pay", f"/api/v1/holds/{hold['id']}/payment", {"card": CARD}, token,
                                          **{"Idempotency-Key": key})
                if status == 201:
                    self.confirmed.add(order["id"])
                    break
                if status not in (0, 409, 503):
                    break
                time.sleep(0.2)

    def room_watcher(self) -> None:
        """The crowd in another event's waiting room, polling its shared state: the line must go on moving."""
        url = f"http://127.0.0.1:{self.port}/events/{self.room_event_id}/waiting-room/now.json"
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    status, served = response.status, json.loads(response.read()).get("served")
            except urllib.error.HTTPError as error:
                status, served = error.code, None
            except OSError:
                status, served = 0, None
            self.room.append((time.monotonic(), status, served))
            time.sleep(0.5)

    def __enter__(self):
        self.threads = [threading.Thread(target=self.buyer, args=(n, t), daemon=True)
                        for n, t in enumerate(self.tokens)]
        if self.room_event_id is not None:
            self.threads.append(threading.Thread(target=self.room_watcher, daemon=True))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self.threads:
            thread.join(timeout=60)


def prepare(cluster: dict, buyers: int, capacity: int) -> tuple[int, int, list[str], int]:
    """An event on sale and buyers with API tokens, made on the primary with the app's own factory; and
    another event whose waiting room has started, with a line of 300 letting in two a second."""
    from datetime import datetime, timedelta, timezone

    from config import TestConfig
    from tests.factories import Factory
    from webapp import create_app
    from webapp.extensions import db
    from webapp.services.people import api_tokens
    from webapp.services.waiting import waiting_room

    app = create_app({"SQLALCHEMY_DATABASE_URI": normalise_database_url(cluster["direct_url"]),
                      "DB_STARTUP_OPTIONS": False},
                     config_class=TestConfig)
    with app.app_context():
        factory = Factory(db.session)
        # No per-buyer limit: a few buyers stand for many, buying one ticket after another.
        event = factory.ga_event(capacity=capacity, title="Failover rush", per_buyer_limit=capacity)
        tokens = [api_tokens.create(db.session, user_id=factory.user().id, is_admin=False, name="rush",
                                    scope="buyer").secret for _ in range(buyers)]
        roomed = factory.ga_event(capacity=capacity, title="Failover room")
        waiting_room.configure(db.session, roomed, enabled=True,
                               sale_starts_at=datetime.now(timezone.utc) - timedelta(seconds=1),
                               admit_per_minute=120, max_shoppers=None)
        for person in factory.users(300):
            waiting_room.join(db.session, roomed.id, user_id=person.id)
        db.session.commit()
        ids = event.id, event.tiers[0].id, roomed.id
        db.session.remove()
        db.engine.dispose()
    return ids[0], ids[1], tokens, ids[2]


def leader(cluster: dict) -> str:
    for name, node in cluster["nodes"].items():
        if cluster_tool.http_status(f"http://127.0.0.1:{node['rest_port']}/primary") == 200:
            return name
    raise RuntimeError("no leader")


def wait_healthy(cluster: dict, timeout: float = 120) -> str:
    """Until one leader and a streaming standby (a synchronous one in synchronous mode)."""
    deadline = time.monotonic() + timeout
    standby_check = "sync" if cluster["synchronous"] else "replica"
    while time.monotonic() < deadline:
        try:
            name = leader(cluster)
            other = next(n for n in cluster["nodes"] if n != name)
            port = cluster["nodes"][other]["rest_port"]
            if cluster_tool.http_status(f"http://127.0.0.1:{port}/{standby_check}") == 200:
                return name
        except (RuntimeError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError("the cluster did not settle")


def kill_leader_postgres(cluster: dict) -> str:
    name = leader(cluster)
    pid = int((Path(cluster["nodes"][name]["data_dir"]) / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    return name


def lose_leader_node(cluster: dict) -> str:
    """The leader's machine gone: its Patroni and its postgres killed at once, so the standby must take over."""
    name = leader(cluster)
    wrapper = cluster["pids"][f"patroni-{name}"]
    for pid in cluster_tool._children(wrapper):
        os.kill(pid, signal.SIGKILL)
    pid = int((Path(cluster["nodes"][name]["data_dir"]) / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    return name


def _wal_receiver(cluster: dict, name: str) -> int:
    postmaster = int((Path(cluster["nodes"][name]["data_dir"]) / "postmaster.pid").read_text().split()[0])
    for pid in cluster_tool._children(postmaster):
        try:
            if b"walreceiver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    raise RuntimeError(f"{name} has no WAL receiver")


def lose_leader_node_ahead_of_its_standby(cluster: dict, stall: float = 1.5) -> str:
    """The standby's WAL receiver stalled for `stall` seconds (a network stall), then the leader's machine lost,
    with what was on its way to the standby: the standby has only what it had received before the stall.

    An asynchronous primary goes on committing (and confirming orders) during the stall; a synchronous one
    waits for the standby, so nothing it confirmed can be missing from it."""
    name = leader(cluster)
    standby = next(n for n in cluster["nodes"] if n != name)
    receiver = _wal_receiver(cluster, standby)
    os.kill(receiver, signal.SIGSTOP)
    time.sleep(stall)
    lose_leader_node(cluster)
    # What was in flight to the standby (its socket's buffer) goes with the lost machine.
    os.kill(receiver, signal.SIGKILL)
    return name


def switchover(cluster: dict) -> str:
    name = leader(cluster)
    candidate = next(n for n in cluster["nodes"] if n != name)
    body = json.dumps({"leader": name, "candidate": candidate}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{cluster['nodes'][name]['rest_port']}/switchover",
                                     data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200, response.read()
    return name


@dataclass
class Outcome:
    fault: str
    refused_seconds: float
    answers: dict[int, int]
    max_retry_after: int
    confirmed: int
    missing_orders: list[int]
    charges_without_order: int
    pending_left: int
    violations: list[str]
    # The node struck, the leader once both are back, and whether the other came back as a streaming
    # (synchronous, in synchronous mode) standby within two minutes.
    struck_node: str = ""
    leader_after: str = ""
    standby_back: bool = False
    # The waiting room's now.json answers, and the people it had served before the fault and at the end.
    room_answers: dict[int, int] = field(default_factory=dict)
    room_served_before: int = 0
    room_served_after: int = 0

    def line(self) -> str:
        answers = dict(sorted(self.answers.items()))
        return (f"{self.fault}: writes refused {self.refused_seconds:.1f} s; answers {answers}"
                f" (Retry-After up to {self.max_retry_after} s); {self.confirmed} orders confirmed to buyers,"
                f" {len(self.missing_orders)} missing on the new primary; {self.charges_without_order} charges"
                f" without an order; {self.pending_left} payments still pending; invariants:"
                f" {'ok' if not self.violations else self.violations}; {self.struck_node} struck,"
                f" {self.leader_after or 'no node'} leads after"
                f"{', the other back as standby' if self.standby_back else ', no standby back'}; the waiting room"
                f" served {self.room_served_before} before the fault and {self.room_served_after} by the end,"
                f" now.json answers {dict(sorted(self.room_answers.items()))}")


def verify(cluster: dict, event_id: int, confirmed: set[int]) -> tuple[list[int], int, int, list[str]]:
    from config import TestConfig
    from webapp import create_app
    from webapp.extensions import db
    from webapp.services.invariants import check_event

    engine = create_engine(normalise_database_url(cluster["direct_url"]))
    deadline = time.monotonic() + 60
    with engine.connect() as conn:
        while True:  # the sweep settles what the fault cut off
            pending = conn.execute(text("SELECT count(*) FROM payment_attempts WHERE event_id = :e"
                                        " AND status = 'pending'"), {"e": event_id}).scalar_one()
            conn.rollback()
            if pending == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        found = set(conn.execute(text("SELECT id FROM orders WHERE event_id = :e AND status = 'confirmed'"),
                                 {"e": event_id}).scalars())
        orphans = conn.execute(text(
            "SELECT count(*) FROM gateway_charges g JOIN payment_attempts p ON p.idempotency_key = g.idempotency_key"
            " LEFT JOIN orders o ON o.payment_attempt_id = p.id"
            " WHERE p.event_id = :e AND g.status IN ('authorised', 'captured') AND g.refunded_minor = 0"
            " AND o.id IS NULL"), {"e": event_id}).scalar_one()
    engine.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": normalise_database_url(cluster["direct_url"]),
                      "DB_STARTUP_OPTIONS": False},
                     config_class=TestConfig)
    with app.app_context():
        violations = check_event(db.session, event_id)
        db.session.remove()
        db.engine.dispose()
    return sorted(confirmed - found), orphans, pending, violations


def run_fault(cluster: dict, fault: str, buyers: int = 6, capacity: int = 5000, settle: float = 8) -> Outcome:
    wait_healthy(cluster)
    event_id, tier_id, tokens, room_event_id = prepare(cluster, buyers, capacity)
    with Rush(cluster["nginx"], event_id, tier_id, tokens, room_event_id) as rush:
        time.sleep(3)
        struck = time.monotonic()
        struck_node = {"failover": kill_leader_postgres, "switchover": switchover, "node-loss": lose_leader_node,
                       "lagging-node-loss": lose_leader_node_ahead_of_its_standby}[fault](cluster)
        # Until reserves succeed again, then a little more (bounded either way).
        deadline = struck + 120
        while time.monotonic() < deadline:
            if any(a.kind == "reserve" and a.status == 201 and a.at > struck + 0.5 for a in rush.answers):
                break
            time.sleep(0.2)
        time.sleep(settle)
    after = [a for a in rush.answers if a.at >= struck]
    # From the fault to the last write refused because of it.
    refused = [a.at for a in after if a.status in (0, 500, 502, 503, 504)]
    refused_seconds = (max(refused) - struck) if refused else 0.0
    retry_afters = [int(a.retry_after) for a in after if a.status == 503 and (a.retry_after or "").isdigit()]
    missing, orphans, pending, violations = verify(cluster, event_id, rush.confirmed)
    try:
        leader_after, standby_back = wait_healthy(cluster), True
    except RuntimeError:  # no standby back (after losing a node, its Patroni is gone for good)
        try:
            leader_after = leader(cluster)
        except (RuntimeError, OSError):
            leader_after = ""
        standby_back = False
    served_before = max((n for at, _, n in rush.room if at < struck and n is not None), default=0)
    served_after = max((n for _, _, n in rush.room if n is not None), default=0)
    return Outcome(fault, refused_seconds, dict(Counter(a.status for a in rush.answers)), max(retry_afters, default=0),
                   len(rush.confirmed), missing, orphans, pending, violations, struck_node, leader_after,
                   standby_back, dict(Counter(status for _, status, _ in rush.room)), served_before, served_after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--async", dest="asynchronous", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/tb-failover"))
    parser.add_argument("--base-port", type=int, default=26000)
    parser.add_argument("--node-loss", action="store_true",
                        help="then lose the leader's machine (Patroni and postgres killed): a real failover")
    parser.add_argument("--lagging-node-loss", action="store_true",
                        help="then stall the standby's WAL receiver for 1.5 s and lose the leader's machine")
    args = parser.parse_args(argv)
    if missing := cluster_tool.missing_packages():
        print(f"Missing: apt-get install {' '.join(missing)}", file=sys.stderr)
        return 2
    import shutil

    shutil.rmtree(args.dir, ignore_errors=True)
    runner = cluster_tool.Runner(args.dir, args.base_port, synchronous=not args.asynchronous, settings=SETTINGS)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the cluster (finally, below) on SIGTERM too
    try:
        described = runner.up().describe()
        for round_no in range(1, args.rounds + 1):
            for fault in ("failover", "switchover"):
                print(f"round {round_no}, {'sync' if not args.asynchronous else 'async'} standby, "
                      + run_fault(described, fault).line(), flush=True)
        if args.node_loss:
            print(f"{'sync' if not args.asynchronous else 'async'} standby, "
                  + run_fault(described, "node-loss").line(), flush=True)
        elif args.lagging_node_loss:
            print(f"{'sync' if not args.asynchronous else 'async'} standby, "
                  + run_fault(described, "lagging-node-loss").line(), flush=True)
    finally:
        runner.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
