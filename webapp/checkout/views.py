"""The hold page with its countdown, payment, and release."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from flask import abort, current_app, flash, g, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from webapp import session_user, wrong_codes
from webapp.checkout import bp
from webapp.checkout.forms import CardForm, FinishForm, StripePayForm
from webapp.database import single_statement
from webapp.extensions import db
from webapp.htmx import is_partial_request, redirect_to, render
from webapp.parsing import attendee_fields
from webapp.security import policy_with_stripe
from webapp.services.errors import BillingRequired, BookingError, PaymentDeclined, PaymentInProgress, PaymentNeedsAction
from webapp.services.money import checkout, checkout_read, payment_settings
from webapp.services.money.checkout_read import HoldView
from webapp.services.money.gateway import payment_gateway
from webapp.services.selling import attendees, codes, inventory

log = logging.getLogger(__name__)


def own_hold(hold_id: int, *, fresh_connection: bool = False) -> HoldView:
    """Someone else's hold is a 404, so ids cannot be probed.

    Pages that only read use a statement of its own (no BEGIN, no ROLLBACK).
    """
    if fresh_connection:
        with single_statement() as connection:
            view = checkout_read.hold_view(connection, hold_id, current_user.id)
    else:
        view = checkout_read.hold_view(db.session, hold_id, current_user.id)
    if view is None:
        abort(404)
    return view


@dataclass(frozen=True)
class StripePage:
    """What the hold page needs to show Stripe's card element, and the policy that lets it run."""

    publishable_key: str
    js_url: str
    policy: str


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _stripe() -> StripePage | None:
    """Stripe's settings when it is the gateway; None for the simulated one (its own card form)."""
    config = current_app.config
    if config["PAYMENT_GATEWAY"] != "stripe":
        return None
    page = current_app.extensions.get("stripe_page")
    if page is None:
        page = current_app.extensions["stripe_page"] = StripePage(
            config["STRIPE_PUBLISHABLE_KEY"], config["STRIPE_JS_URL"],
            policy_with_stripe(_origin(config["STRIPE_JS_URL"]), _origin(config["STRIPE_API_BASE"])))
    return page


def _fresh_form(**data) -> CardForm | StripePayForm:
    # A fresh key: each page (and each try after a decline) is a new attempt.
    if _stripe() is not None:
        data.pop("name", None)  # the name on the card is Stripe's to keep
        return StripePayForm(formdata=None, idempotency_key=secrets.token_urlsafe(24), **data)
    return CardForm(formdata=None, idempotency_key=secrets.token_urlsafe(24), **data)


def _render_hold(view: HoldView, partial: str = "checkout/_hold.html", *, status: int = 200,
                 form: CardForm | StripePayForm | None = None, declined: PaymentDeclined | None = None,
                 code_error: str | None = None, code_notice: str | None = None, code_typed: str = "",
                 confirm_secret: str | None = None, finish_key: str | None = None,
                 attendee_errors: dict[str, str] | None = None):
    # The organiser's language, read in the hold's own statement, for a buyer who chose none (webapp/i18n.py).
    g.organiser_locale = view.event.organiser_locale
    if form is None and view.payable and not (is_partial_request() and partial.endswith("_countdown.html")):
        form = _fresh_form()
    # What the attendee fields show: what was just sent, or what was kept from an earlier try.
    typed = (attendee_fields() if request.method == "POST" else {}) or attendees.typed_values(view.answers)
    stripe = _stripe()
    if stripe is not None:
        # The card becomes a PaymentMethod in the account that will charge it: the event's organiser's.
        stripe = replace(stripe, publishable_key=payment_settings.publishable_key_of_event(
            db.session, view.event.id, stripe.publishable_key))
    response = render("checkout/hold.html", partial, status=status, hold=view, event=view.event, form=form,
                      attendee_errors=attendee_errors, attendee_values=typed,
                      best_available=request.args.get("best") is not None,
                      declined=declined.message if declined else None,
                      declined_code=declined.code if declined else None,
                      code_error=code_error, code_notice=code_notice, code_typed=code_typed, stripe=stripe,
                      confirm_secret=confirm_secret, finish_key=finish_key)
    if stripe is not None:
        response.headers["Content-Security-Policy"] = stripe.policy
    return response


def _order_redirect(view: HoldView):
    if view.order_id is not None:
        return redirect_to(url_for("account.order_page", order_id=view.order_id))
    return None


@bp.get("/holds/<int:hold_id>")
def hold_page(hold_id: int):
    view = session_user.owner_read(lambda connection, user_id: checkout_read.hold_view_and_owner(
        connection, hold_id, user_id))
    if view.status == "converted" and (done := _order_redirect(view)):
        return done
    response = _render_hold(view)
    if view.status == "active":
        # A waiting-room pass lasts as long as the hold it bought (the
        # reserve statement extended the admission itself); no query here.
        from webapp.shop.admission import extend_pass

        extend_pass(response, view.event.id, current_user.id, view.seconds_left)
    return response


@bp.get("/holds/<int:hold_id>/countdown")
def hold_countdown(hold_id: int):
    """The server's word on time left, polled by the countdown.

    Once the hold can no longer be paid as it is (ran out, released, paid in
    another tab), the whole hold panel is redrawn to say so.
    """
    # The poll of every open hold page: the session check rides in the hold's
    # statement, which reads only the clock while the hold is live.
    if is_partial_request():
        clock = session_user.owner_read(lambda connection, user_id: checkout_read.countdown_view_and_owner(
            connection, hold_id, user_id))
        if clock.live:
            g.organiser_locale = clock.organiser_locale
            return render("checkout/hold.html", "checkout/_countdown.html", hold=clock)
    view = session_user.owner_read(lambda connection, user_id: checkout_read.hold_view_and_owner(
        connection, hold_id, user_id))
    if view.status == "converted" and (done := _order_redirect(view)):
        return done
    if view.expired or view.status != "active":
        response = _render_hold(view)
        if is_partial_request():
            response.headers["HX-Retarget"] = "#hold"
            response.headers["HX-Reswap"] = "innerHTML"
        return response
    return _render_hold(view, "checkout/_countdown.html")


@bp.post("/holds/<int:hold_id>/pay")
@login_required
def pay(hold_id: int):
    form = StripePayForm() if _stripe() is not None else CardForm()
    if not form.validate_on_submit():
        # Every message at once: the attendee fields are checked too, by the rules the payment applies.
        view = own_hold(hold_id)
        return _render_hold(view, status=400, form=form,
                            attendee_errors=attendees.read_answers(view.asked, attendee_fields())[1])
    try:
        result = checkout.pay(
            db.session, payment_gateway(), hold_id=hold_id, user_id=current_user.id,
            idempotency_key=form.idempotency_key.data, card=form.card(), answers=attendee_fields(),
            billing_name=form.billing_name.data, billing_address=form.billing_address.data,
        )
    except PaymentNeedsAction as action:
        # 3-D Secure: the attempt stays pending (so does the hold) while Stripe.js asks the bank.
        db.session.rollback()
        return _render_hold(own_hold(hold_id), status=202, confirm_secret=action.client_secret,
                            finish_key=form.idempotency_key.data)
    except attendees.AnswersInvalid as invalid:
        # Checked before any charge: the card is kept, the messages go beside their fields.
        db.session.rollback()
        return _render_hold(own_hold(hold_id), status=400, form=form, attendee_errors=invalid.errors)
    except PaymentDeclined as declined:
        db.session.rollback()
        # The hold stays; the next try is a new attempt.
        name = form.name.data if isinstance(form, CardForm) else None
        return _render_hold(own_hold(hold_id), status=402, form=_fresh_form(
            name=name, billing_name=form.billing_name.data, billing_address=form.billing_address.data),
                            declined=declined)
    except BillingRequired as missing:
        db.session.rollback()
        form.billing_name.errors = [missing.message]
        return _render_hold(own_hold(hold_id), status=400, form=form)
    except PaymentInProgress:
        # A double click or a second tab: one checkout per hold. Show the one
        # in flight; the panel follows it to the order (or the decline).
        db.session.rollback()
        view = own_hold(hold_id)
        if done := _order_redirect(view):
            return done
        return _render_hold(view, status=409)
    flash(_("Payment approved. Your tickets are ready."), "success")
    return redirect_to(url_for("account.order_page", order_id=result.order_id))


@bp.post("/holds/<int:hold_id>/pay/finish")
@login_required
def pay_finish(hold_id: int):
    """Back from 3-D Secure: settle the payment from Stripe's word on it (what the browser saw counts for nothing)."""
    form = FinishForm()
    if not form.validate_on_submit():
        abort(400)
    result = checkout.settle_from_gateway(db.session, payment_gateway(), idempotency_key=form.idempotency_key.data,
                                          user_id=current_user.id)
    view = own_hold(hold_id)
    if result is None:
        return _render_hold(view, status=202)  # still moving: the panel follows it
    if result.order_id is not None:
        flash(_("Payment approved. Your tickets are ready."), "success")
        return redirect_to(url_for("account.order_page", order_id=result.order_id))
    declined = PaymentDeclined(result.decline_code or "failed", result.decline_message or _("Payment failed."))
    return _render_hold(view, status=402, declined=declined)


def _after_code_change(hold_id: int, change, done: str, typed: str = ""):
    """Apply or remove a discount code, then redraw the hold panel with its new price (or the refusal)."""
    try:
        change()
        # Committed before the panel is drawn: other buyers applying the code wait on its row lock.
        db.session.commit()
    except BookingError as refused:
        db.session.rollback()
        if refused.status_code == 404:
            abort(404)
        if not is_partial_request():
            if refused.retry_after:
                raise  # too many wrong codes: the 429 page, with Retry-After
            flash(refused.message, "error")
            return redirect_to(url_for("checkout.hold_page", hold_id=hold_id))
        # The code stays in the field, to be corrected rather than typed again.
        response = _render_hold(own_hold(hold_id), status=refused.status_code, code_error=refused.message,
                                code_typed=typed[:40])
        if refused.retry_after:
            response.headers["Retry-After"] = str(refused.retry_after)
        return response
    if not is_partial_request():
        flash(done, "success")
        return redirect_to(url_for("checkout.hold_page", hold_id=hold_id))
    return _render_hold(own_hold(hold_id), code_notice=done)


@bp.post("/holds/<int:hold_id>/code")
@login_required
def apply_code(hold_id: int):
    raw = request.form.get("code", "")[:100]
    return _after_code_change(hold_id, lambda: wrong_codes.attempt(lambda: codes.apply_discount(
        db.session, hold_id=hold_id, user_id=current_user.id, raw_code=raw), user_id=current_user.id),
        _("Code applied: the price is updated."), typed=raw)


@bp.post("/holds/<int:hold_id>/code/remove")
@login_required
def remove_code(hold_id: int):
    return _after_code_change(hold_id, lambda: codes.remove_discount(
        db.session, hold_id=hold_id, user_id=current_user.id), _("Code removed: the full price applies."))


@bp.post("/holds/<int:hold_id>/validate/<field>")
@login_required
def validate_card_field(hold_id: int, field: str):
    """Inline validation of one card field, with the submit path's form."""
    own_hold(hold_id)
    if field not in ("number", "expiry", "cvc", "name"):
        abort(404)
    form = CardForm()
    form.validate()
    return render_template("auth/_field_errors.html", errors=getattr(form, field).errors, field=field)


@bp.post("/holds/<int:hold_id>/validate-attendee/<field>")
@login_required
def validate_attendee_field(hold_id: int, field: str):
    """Inline validation of one attendee field, with the rules the payment checks them by."""
    try:
        error = attendees.field_error(own_hold(hold_id).asked, field, attendee_fields())
    except KeyError:
        abort(404)
    return render_template("auth/_field_errors.html", errors=[error] if error else [], field=field)


@bp.post("/holds/<int:hold_id>/reserve-again")
@login_required
def reserve_again(hold_id: int):
    """The expired hold's "Reserve again": the same units taken again, then the hold page (a refusal says why)."""
    checkout.reserve_again(db.session, hold_id=hold_id, user_id=current_user.id)
    log.info("hold.taken_again", extra={"user_id": current_user.id, "hold_id": hold_id})
    return redirect_to(url_for("checkout.hold_page", hold_id=hold_id))


@bp.post("/holds/<int:hold_id>/release")
@login_required
def release(hold_id: int):
    view = own_hold(hold_id)
    inventory.release_hold_by_id(db.session, hold_id=view.id, user_id=current_user.id)
    log.info("hold.released", extra={"event_id": view.event.id, "user_id": current_user.id, "hold_id": hold_id})
    flash(_("Your reservation was released."), "info")
    return redirect_to(url_for("shop.event_page", event_id=view.event.id))
