"""`flask` commands: demo data, the expiry sweep, the invariant checker, admins."""
from __future__ import annotations

import logging
import sys

import click
from flask import Flask, current_app
from sqlalchemy import select

from webapp.extensions import db
from webapp.worker import run_passes

log = logging.getLogger("webapp.sweep")


def register(app: Flask) -> None:
    app.cli.add_command(seed_demo)
    app.cli.add_command(sweep)
    app.cli.add_command(check_invariants)
    app.cli.add_command(create_admin)

    from webapp.outbox_cli import outbox_command

    app.cli.add_command(outbox_command)

    from webapp.mail_cli import deliver_mail_command

    app.cli.add_command(deliver_mail_command)

    from webapp.webhooks_cli import deliver_webhooks_command

    app.cli.add_command(deliver_webhooks_command)

    from webapp.admin.cli import export_attendees_command

    app.cli.add_command(export_attendees_command)


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when events already exist.")
def seed_demo(if_empty: bool) -> None:
    """Create demo events, a demo buyer and a demo admin."""
    from webapp.services import demo

    if if_empty and demo.has_data(db.session):
        click.echo("Demo data already present.")
        return
    creds = demo.seed(db.session)
    db.session.commit()
    for role, (email, password) in creds.items():
        click.echo(f"Demo {role}: {email} / {password}")


def sweep_once(batch: int = 200) -> tuple[int, int]:
    """Expire lapsed holds, settle interrupted payments, make refunds left requested; one pass, in batches."""
    from webapp.services.money import checkout, refunds
    from webapp.services.money.gateway import payment_gateway
    from webapp.services.selling import inventory
    from webapp.services.waiting import waiting_room, waitlist

    expired = 0
    while True:
        n = inventory.expire_holds(db.session, limit=batch)
        db.session.commit()
        expired += n
        if n < batch:
            break
    settled = checkout.reconcile_stale_payments(
        db.session, payment_gateway(), older_than_seconds=current_app.config["PAYMENT_RECONCILE_AFTER_SECONDS"],
        void_after_seconds=current_app.config["PAYMENT_VOID_AFTER_SECONDS"],
    )
    db.session.commit()
    # A refund whose gateway call never came back (a crash, an outage) is asked for again under its own key.
    settled += refunds.retry_requested_refunds(
        db.session, payment_gateway(), older_than_seconds=current_app.config["PAYMENT_RECONCILE_AFTER_SECONDS"])
    # Safety net: a unit left free while someone who fits waits (a join that
    # raced a release) is offered here, within one pass.
    stranded = waitlist.offer_stranded_units(db.session)
    db.session.commit()
    if stranded:
        log.info("sweep.stranded_offers", extra={"offers": stranded})
    # Waiting rooms: one admission pass per room that is on (SKIP LOCKED on
    # the room row, so several sweeps and the polls' lazy passes never admit twice).
    admitted = waiting_room.admit_all_due(db.session)
    if admitted:
        log.info("sweep.admitted", extra={"admitted": admitted})
    # A join's spent proof of work is kept only until its challenge's end.
    waiting_room.forget_spent_challenges(db.session)
    db.session.commit()
    return expired, settled


@click.command("sweep")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between passes.")
@click.option("--batch", default=200, show_default=True, help="Holds expired per transaction.")
def sweep(once: bool, interval: float, batch: int) -> None:
    """Release expired holds (waiting list first). Safe to run several at once."""

    def one_pass() -> bool:
        expired, settled = sweep_once(batch)
        if expired or settled:
            log.info("sweep.pass", extra={"expired": expired, "settled": settled})
        return False

    run_passes(one_pass, once=once, interval=interval, failure="sweep.failed", log=log)


@click.command("check-invariants")
@click.argument("event_id", type=int, required=False)
def check_invariants(event_id: int | None) -> None:
    """Verify invariants 1 and 2 (docs/design.md) for one event, or for all."""
    from webapp.models import Event
    from webapp.services.invariants import check_event

    ids = [event_id] if event_id is not None else db.session.scalars(select(Event.id).order_by(Event.id)).all()
    failed = False
    for eid in ids:
        problems = check_event(db.session, eid)
        if problems:
            failed = True
            click.echo(f"event {eid}: {len(problems)} violation(s)")
            for p in problems:
                click.echo(f"  - {p}")
        else:
            click.echo(f"event {eid}: ok")
    sys.exit(1 if failed else 0)


@click.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator")
@click.password_option(help="Asked for when not given.")
def create_admin(email: str, name: str, password: str) -> None:
    """Make EMAIL an admin, creating the account if needed."""
    from webapp.models import User
    from webapp.services.people import accounts

    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        problem = accounts.password_problem(password, email)
        if problem:
            raise click.BadParameter(problem, param_hint="password")
        user = accounts.register(db.session, email=email, password=password, name=name, is_admin=True)
    user.is_admin = True
    db.session.commit()
    click.echo(f"{user.email} is an admin.")
