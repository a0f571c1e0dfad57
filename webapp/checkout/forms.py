from __future__ import annotations

import re
from datetime import date

from flask_babel import gettext as _
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from webapp.i18n import lazy_gettext as _l
from webapp.services.money.gateway import Card, PaymentMethodId, luhn_valid

_EXPIRY = re.compile(r"^\s*([0-9]{1,2})\s*/\s*([0-9]{2}|[0-9]{4})\s*$")


def digits(value: str | None) -> str:
    return re.sub(r"[\s-]", "", value or "")


class BillingFields:
    """For an invoice (migration 0021): optional unless the organiser asks for them (begin_payment checks);
    on whichever gateway's pay form."""

    billing_name = StringField(_l("Billing name"), validators=[Optional(), Length(max=200)])
    billing_address = TextAreaField(_l("Billing address"), validators=[Optional(), Length(max=500)],
                                    render_kw={"rows": 2})


class CardForm(BillingFields, FlaskForm):
    """The simulated gateway's card form; the same form validates inline."""

    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    name = StringField(_l("Name on card"), validators=[DataRequired(), Length(max=100)])
    # Phones show a number pad for these.
    number = StringField(_l("Card number"), validators=[DataRequired()], render_kw={"inputmode": "numeric"})
    expiry = StringField(_l("Expiry (MM/YY)"), validators=[DataRequired()], render_kw={"inputmode": "numeric"})
    cvc = StringField(_l("CVC"), validators=[DataRequired()], render_kw={"inputmode": "numeric", "maxlength": 4})

    def validate_number(self, field):
        number = digits(field.data)
        if not re.fullmatch(r"[0-9]{12,19}", number):  # ASCII: isdigit() also takes "²"
            raise ValidationError(_("Enter the 12 to 19 digits of your card number."))
        if not luhn_valid(number):
            raise ValidationError(_("That card number is not valid; check for a typo."))

    def expiry_parts(self) -> tuple[int, int] | None:
        match = _EXPIRY.match(self.expiry.data or "")
        if not match:
            return None
        month, year = int(match.group(1)), int(match.group(2))
        return month, year + 2000 if year < 100 else year

    def validate_expiry(self, field):
        parts = self.expiry_parts()
        if parts is None or not 1 <= parts[0] <= 12:
            raise ValidationError(_("Use the MM/YY format, e.g. 04/29."))
        month, year = parts
        today = date.today()
        if (year, month) < (today.year, today.month):
            raise ValidationError(_("This card has expired."))
        if year > today.year + 20:
            raise ValidationError(_("That expiry date is too far in the future."))

    def validate_cvc(self, field):
        if not re.fullmatch(r"[0-9]{3,4}", (field.data or "").strip()):
            raise ValidationError(_("The CVC is the 3 or 4 digits on the back of the card."))

    def card(self) -> Card:
        month, year = self.expiry_parts() or (0, 0)
        return Card(number=digits(self.number.data), exp_month=month, exp_year=year, cvc=self.cvc.data.strip())


class StripePayForm(BillingFields, FlaskForm):
    """Stripe's checkout: the card went from the browser to Stripe; we get its PaymentMethod id only."""

    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    payment_method = HiddenField(validators=[
        DataRequired(_l("Enter your card details.")),
        Regexp(r"^pm_[A-Za-z0-9_]{1,100}$", message=_l("The card could not be read; enter it again."))])

    def card(self) -> PaymentMethodId:
        return PaymentMethodId(self.payment_method.data)


class FinishForm(FlaskForm):
    """The browser is back from 3-D Secure: settle the attempt under this key (from Stripe's word, not ours)."""

    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
