"""The hold page with its countdown, payment, and release."""
from __future__ import annotations

import logging
import math
import secrets

from flask import abort, current_app, flash, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import select, text

from webapp.checkout import bp
from webapp.checkout.forms import CardForm
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.models import Hold, HoldKind, HoldStatus, Order, PaymentAttempt, PaymentStatus, Unit
from webapp.services import checkout, inventory
from webapp.services.errors import PaymentDeclined, PaymentInProgress
from webapp.services.gateway import SimulatedGateway

log = logging.getLogger(__name__)


def payment_gateway() -> SimulatedGateway:
    gateway = current_app.extensions.get("payment_gateway")
    if gateway is None:
        gateway = SimulatedGateway(db.engine, slow_seconds=current_app.config["GATEWAY_SLOW_SECONDS"])
        current_app.extensions["payment_gateway"] = gateway
    return gateway


def load_own_hold(hold_id: int) -> Hold:
    """Someone else's hold is a 404, so ids cannot be probed."""
    hold = db.session.get(Hold, hold_id)
    if hold is None or hold.user_id != current_user.id:
        abort(404)
    return hold


def seconds_left(hold: Hold) -> int:
    """Whole seconds until the hold runs out, by the database clock (rounded up:
    the page must never call a hold expired that the server would still honour)."""
    return max(0, math.ceil(db.session.execute(
        text("SELECT extract(epoch FROM expires_at - now()) FROM holds WHERE id = :h"), {"h": hold.id}
    ).scalar_one()))


def hold_context(hold: Hold, form: CardForm | None = None, declined: str | None = None) -> dict:
    units = db.session.scalars(select(Unit).where(Unit.id.in_(hold.unit_ids)).order_by(Unit.id)).all()
    tiers = {t.id: t for t in hold.event.tiers}
    if form is None:
        form = CardForm(formdata=None, idempotency_key=secrets.token_urlsafe(24))
    attempts = db.session.scalars(
        select(PaymentAttempt).where(PaymentAttempt.hold_id == hold.id).order_by(PaymentAttempt.id.desc())
    ).all()
    left = seconds_left(hold) if hold.status == HoldStatus.ACTIVE else 0
    pending = any(a.status == PaymentStatus.PENDING for a in attempts)
    # Ran out, swept or not: the server decides, and a payment in flight
    # keeps its hold (the sweep leaves it to that payment).
    expired = not pending and (hold.status == HoldStatus.EXPIRED or (hold.status == HoldStatus.ACTIVE and left == 0))
    last_decline = next((a for a in attempts if a.status in (PaymentStatus.DECLINED, PaymentStatus.FAILED)), None)
    quantities: dict[int, int] = {}
    for unit in units:
        quantities[unit.tier_id] = quantities.get(unit.tier_id, 0) + 1
    return dict(
        hold=hold, event=hold.event, units=units, tiers=tiers, form=form, seconds_left=left,
        total_seconds=max(1, round(float(hold.event.offer_hours) * 3600 if hold.kind == HoldKind.OFFER
                                   else float(hold.event.hold_minutes) * 60)), declined=declined,
        last_decline=last_decline, payment_pending=pending, expired=expired,
        seated=any(u.seat_number is not None for u in units), quantities=quantities,
    )


def _order_redirect(hold: Hold):
    order = db.session.scalars(select(Order).where(Order.hold_id == hold.id)).first()
    if order is not None:
        return redirect_to(url_for("account.order_page", order_id=order.id))
    return None


@bp.get("/holds/<int:hold_id>")
@login_required
def hold_page(hold_id: int):
    hold = load_own_hold(hold_id)
    if hold.status == HoldStatus.CONVERTED and (done := _order_redirect(hold)):
        return done
    return render("checkout/hold.html", "checkout/_hold.html", **hold_context(hold))


@bp.get("/holds/<int:hold_id>/countdown")
@login_required
def hold_countdown(hold_id: int):
    """The server's word on time left, polled by the countdown.

    Once the hold can no longer be paid as it is (ran out, released, paid in
    another tab), the whole hold panel is redrawn to say so.
    """
    hold = load_own_hold(hold_id)
    if hold.status == HoldStatus.CONVERTED and (done := _order_redirect(hold)):
        return done
    ctx = hold_context(hold)
    if ctx["expired"] or hold.status != HoldStatus.ACTIVE:
        response = render("checkout/hold.html", "checkout/_hold.html", **ctx)
        if is_partial_request():
            response.headers["HX-Retarget"] = "#hold"
            response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render("checkout/hold.html", "checkout/_countdown.html", **ctx)


@bp.post("/holds/<int:hold_id>/pay")
@login_required
def pay(hold_id: int):
    hold = load_own_hold(hold_id)
    form = CardForm()
    if not form.validate_on_submit():
        return render("checkout/hold.html", "checkout/_hold.html", status=400, **hold_context(hold, form))
    try:
        result = checkout.pay(
            db.session, payment_gateway(), hold_id=hold.id, user_id=current_user.id,
            idempotency_key=form.idempotency_key.data, card=form.card(),
        )
    except PaymentDeclined as declined:
        db.session.rollback()
        hold = load_own_hold(hold_id)
        # A fresh key: the next try is a new attempt; the hold stays.
        fresh = CardForm(formdata=None, idempotency_key=secrets.token_urlsafe(24), name=form.name.data)
        return render("checkout/hold.html", "checkout/_hold.html", status=402,
                      **hold_context(hold, fresh, declined=declined.message))
    except PaymentInProgress:
        # A double click or a second tab: one checkout per hold. Show the one
        # in flight; the panel follows it to the order (or the decline).
        db.session.rollback()
        hold = load_own_hold(hold_id)
        if done := _order_redirect(hold):
            return done
        return render("checkout/hold.html", "checkout/_hold.html", status=409, **hold_context(hold))
    flash("Payment approved. Your tickets are ready.", "success")
    return redirect_to(url_for("account.order_page", order_id=result.order_id))


@bp.post("/holds/<int:hold_id>/validate/<field>")
@login_required
def validate_card_field(hold_id: int, field: str):
    """Inline validation of one card field, with the submit path's form."""
    load_own_hold(hold_id)
    if field not in ("number", "expiry", "cvc", "name"):
        abort(404)
    form = CardForm()
    form.validate()
    return render_template("auth/_field_errors.html", errors=getattr(form, field).errors, field=field)


@bp.post("/holds/<int:hold_id>/release")
@login_required
def release(hold_id: int):
    hold = load_own_hold(hold_id)
    event_id = hold.event_id
    inventory.release_hold_by_id(db.session, hold_id=hold.id, user_id=current_user.id)
    db.session.commit()
    log.info("hold.released", extra={"event_id": event_id, "user_id": current_user.id, "hold_id": hold_id})
    flash("Your reservation was released.", "info")
    return redirect_to(url_for("shop.event_page", event_id=event_id))
