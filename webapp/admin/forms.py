"""Admin forms. The same form validates a whole submit and, inline, one field."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal

from flask_babel import gettext
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import URL, DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from webapp.admin.words import SEAT_PROPERTY_WORDS, say
from webapp.i18n import lazy_gettext as _l
from webapp.parsing import MAX_YEAR, MIN_YEAR, FiniteDecimalField, parse_id
from webapp.services.admin.codes import BULK_MAX, CodeSpec
from webapp.services.admin.events import MAX_GA_CAPACITY, LayoutRequest, RowRange
from webapp.services.admin.seat_properties import SeatRange
from webapp.services.selling.events import BEST_ORDERS
from webapp.timezones import NonexistentLocalTime, from_local, is_valid_zone, to_form, zone_names

RANGE_LINES = 4


class EventForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(message=_l("Give the event a title.")), Length(max=200)])
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=5000)])
    venue = StringField(_l("Venue"), validators=[DataRequired(
        message=_l("Where does it take place?")), Length(max=200)])
    # Admins think in the venue's clock; the database keeps the UTC instant.
    timezone = SelectField(_l("Time zone"), default="UTC", choices=lambda: list(zone_names()), validate_choice=False)
    starts_at = DateTimeLocalField(
        _l("Starts (local time)"), format="%Y-%m-%dT%H:%M",
        validators=[DataRequired(message=_l("Enter a date and time, e.g. 2027-05-01 19:30."))],
    )
    sales_end_at = DateTimeLocalField(
        _l("Sales end (UTC)"), format="%Y-%m-%dT%H:%M", validators=[Optional()],
        description=_l("Leave empty to stop sales when the event starts."),
    )
    image_url = StringField(_l("Image URL"), validators=[Optional(), URL(
        message=_l("Enter a full http(s):// address.")),
                                                      Length(max=500)])
    hold_minutes = FiniteDecimalField(
        _l("Hold minutes"), places=2, default=Decimal(8),
        validators=[InputRequired(message=_l("How long are seats held while a buyer pays?")),
                    NumberRange(min=1, max=60, message=_l("Holds last between 1 and 60 minutes."))],
    )
    per_order_limit = IntegerField(
        _l("Tickets per order"), default=8,
        validators=[InputRequired(message=_l("Enter a whole number.")),
                    NumberRange(min=1, max=50, message=_l("Allow between 1 and 50 tickets per order."))],
    )
    per_buyer_limit = IntegerField(
        _l("Tickets per buyer"), default=10,
        description=_l("Across all of a buyer's orders, holds and waiting-list places for this event."),
        # Optional: a form sent without it keeps the event's setting (or the default).
        validators=[Optional(), NumberRange(min=1, max=1000,
            message=_l("Allow between 1 and 1,000 tickets per buyer."))],
    )
    rehold_cooldown_seconds = IntegerField(
        _l("Re-hold cool-down (seconds)"), default=60,
        description=_l(
            "How long a buyer waits before holding again the seats they released or let expire; 0 for none."),
        validators=[Optional(), NumberRange(min=0, max=3600, message=_l("Between 0 and 3,600 seconds."))],
    )
    per_address_limit = IntegerField(
        _l("Tickets per client address"), default=20,
        description=_l("Held or bought from one network address, whatever the accounts; empty for no limit."),
        # Sent empty: no limit; not sent at all: the event's setting is kept (or the default).
        validators=[Optional(), NumberRange(min=1, max=10000,
            message=_l("Allow between 1 and 10,000 tickets per address, or leave it empty."))],
    )
    per_instrument_limit = IntegerField(
        _l("Tickets per payment card"),
        description=_l("Paid for with one card (Stripe's card fingerprint), whatever the accounts; empty for no"
                       " limit."),
        # Sent empty: no limit; not sent at all: the event's setting is kept.
        validators=[Optional(), NumberRange(min=1, max=10000, message=_l("Allow between 1 and 10,000 tickets per"
                                                                         " card, or leave it empty."))],
    )
    waitlist_enabled = BooleanField(_l("Waiting list when sold out"), default=True)
    offer_hours = FiniteDecimalField(
        _l("Waiting-list offer hours"), places=2, default=Decimal(12),
        validators=[InputRequired(message=_l("How long does someone in line have to buy an offer?")),
                    NumberRange(min=Decimal("0.25"), max=168,
                        message=_l("Offers last between 15 minutes and 168 hours."))],
    )
    waitlist_partial_offers = BooleanField(_l("Offer part of a request when not enough is free"))
    # The buyer's own cancel, and invoices (migration 0021).
    cancel_until_hours = IntegerField(
        _l("Buyers may cancel until (hours before the start)"),
        description=_l("Leave empty to let buyers cancel until the start."),
        validators=[Optional(), NumberRange(min=0, max=8760, message=_l("Between 0 and 8,760 hours (a year)."))],
    )
    cancel_fee = FiniteDecimalField(
        _l("Cancellation fee kept (€)"), places=2, default=Decimal(0),
        validators=[Optional(), NumberRange(min=0, max=100000, message=_l("A fee from 0 to 100,000."))],
    )
    cancel_fee_percent = IntegerField(
        _l("Cancellation fee kept (% of the order)"), default=0,
        validators=[Optional(), NumberRange(min=0, max=100, message=_l("Between 0 and 100 %%."))],
    )
    billing_required = BooleanField(_l("Buyers must give a billing name and address (for an invoice)"))

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.creating = creating

    def validate_timezone(self, field):
        if not is_valid_zone(field.data or ""):
            raise ValidationError(gettext("Pick the venue time zone from the list, e.g. Europe/Vienna."))

    def validate_starts_at(self, field):
        if not field.data:
            return
        tz = self.timezone.data if is_valid_zone(self.timezone.data or "") else "UTC"
        try:
            starts = from_local(field.data, tz)
        except NonexistentLocalTime as gap:
            raise ValidationError(str(gap)) from None
        if self.creating and starts <= datetime.now(timezone.utc):
            raise ValidationError(gettext("A new event must start in the future."))

    def show_event(self, event) -> None:
        """Fill the start field with the event's local wall-clock time, as datetime-local shows it; the fee in euros."""
        self.starts_at.data = to_form(event.starts_at, event.timezone)
        self.cancel_fee.data = Decimal(event.cancel_fee_minor) / 100

    def values(self) -> dict:
        # Sent and filled in only (an absent field would take its default, not the event's setting).
        kept = {name: getattr(self, name).data for name in ("per_buyer_limit", "rehold_cooldown_seconds",
                                                             "cancel_fee_percent")
                if getattr(self, name).raw_data and getattr(self, name).data is not None}
        if self.per_address_limit.raw_data:  # sent: empty means no limit
            kept["per_address_limit"] = self.per_address_limit.data
        if self.per_instrument_limit.raw_data:
            kept["per_instrument_limit"] = self.per_instrument_limit.data
        if self.cancel_until_hours.raw_data is not None and self.cancel_until_hours.raw_data != []:
            kept["cancel_until_hours"] = self.cancel_until_hours.data  # empty: until the start
        if self.cancel_fee.raw_data and self.cancel_fee.data is not None:
            kept["cancel_fee_minor"] = int((self.cancel_fee.data * 100).to_integral_value())
        return kept | dict(
            billing_required=self.billing_required.data,
            title=self.title.data.strip(), description=(self.description.data or "").strip(),
            venue=self.venue.data.strip(), starts_at=from_local(self.starts_at.data, self.timezone.data),
            timezone=self.timezone.data,
            image_url=(self.image_url.data or "").strip() or None, hold_minutes=float(self.hold_minutes.data),
            per_order_limit=self.per_order_limit.data, waitlist_enabled=self.waitlist_enabled.data,
            offer_hours=float(self.offer_hours.data), waitlist_partial_offers=self.waitlist_partial_offers.data,
            sales_end_at=self.sales_end_at.data.replace(tzinfo=timezone.utc) if self.sales_end_at.data else None,
        )


class TierForm(FlaskForm):
    kind = SelectField(_l("Kind"), choices=[("general", _l("General admission")), ("seated", _l("Numbered seats"))],
                       default="general")
    name = StringField(_l("Name"), validators=[DataRequired(message=_l("Name the tier.")), Length(max=80)])
    price = FiniteDecimalField(_l("Price (€)"), places=2, validators=[
        InputRequired(message=_l("Enter a price, e.g. 45.00.")),
        NumberRange(min=0, max=100000, message=_l("Prices run from 0 to 100,000.")),
    ])
    colour = StringField(_l("Colour"), default="#3b82f6",
                         validators=[Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Pick a colour like #3b82f6."))])
    capacity = IntegerField(_l("Capacity"), validators=[
        Optional(), NumberRange(min=0, max=MAX_GA_CAPACITY,
            message=_l("Capacity runs from 0 to %(most)s.", most=f"{MAX_GA_CAPACITY:,}")),
    ])
    hidden = BooleanField(_l("Hidden (sold only with an access code)"))
    tax_rate = FiniteDecimalField(_l("Tax rate (%)"), places=2, validators=[
        Optional(), NumberRange(min=0, max=100, message=_l("A tax rate from 0 to 100 %%."))])
    tax_exclusive = BooleanField(_l("The price is before tax (the tax is added on top)"))

    def validate_capacity(self, field):
        if self.kind.data == "general" and field.data is None:
            raise ValidationError(gettext("How many places does this tier have?"))

    @property
    def price_minor(self) -> int:
        return int((self.price.data * 100).to_integral_value())

    @property
    def tax_rate_bp(self) -> int | None:
        """The rate in basis points; None when not sent (the tier keeps its rate)."""
        return None if self.tax_rate.data is None else int((self.tax_rate.data * 100).to_integral_value())


class LayoutForm(FlaskForm):
    sections = StringField(_l("Section names"), default="Stalls",
                           validators=[DataRequired(message=_l("Name at least one section.")), Length(max=400)],
                           description=_l("Comma-separated; each section gets the same rows and seats."
                                          " “Block 1-30” names thirty sections."))
    rows = IntegerField(_l("Rows per section"), default=10, validators=[
        InputRequired(message=_l("How many rows?")), NumberRange(min=1, max=60, message=_l("Use 1 to 60 rows."))])
    seats_per_row = IntegerField(_l("Seats per row"), default=12, validators=[
        InputRequired(message=_l("How many seats per row?")), NumberRange(min=1, max=80,
            message=_l("Use 1 to 80 seats."))])
    first_row_label = StringField(_l("First row label"), default="A", validators=[
        DataRequired(message=_l("Which letter does the first row have?")),
        Regexp(r"^[A-HJ-NP-Za-hj-np-z]$", message=_l("One letter from A to Z (I and O are skipped).")),
    ])
    origin_x = IntegerField(_l("Place at column"), validators=[
        Optional(), NumberRange(min=0, max=10_000, message=_l("A column from 0 to 10,000."))],
        description=_l("Where the first section's first seat sits on the venue plan; empty: at the left."))
    origin_y = IntegerField(_l("and row"), validators=[
        Optional(), NumberRange(min=0, max=10_000, message=_l("A row from 0 to 10,000."))],
        description=_l("Empty: below the seats already there."))
    per_line = IntegerField(_l("Sections per line"), validators=[
        Optional(), NumberRange(min=1, max=200, message=_l("From 1 to 200 sections per line."))],
        description=_l("Then the next line of sections below; empty: all side by side."))
    best_order = SelectField(_l("Best seats first"),
        choices=lambda: [(k, say(k)) for k in BEST_ORDERS], default="front_centre",
                             validators=[Optional()], validate_choice=True,
                             description=_l("The order “best available” offers these seats in."))

    def __init__(self, *args, tier_choices: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.tier_choices = list(tier_choices)

    def range_lines(self, formdata) -> list[tuple[str, str, str]]:
        """The raw (tier, from, to) of each line, for redisplay."""
        if formdata is None:
            first = str(self.tier_choices[0][0]) if self.tier_choices else ""
            return [(first, "", "")] + [("", "", "")] * (RANGE_LINES - 1)
        return [(formdata.get(f"tier_{i}", ""), formdata.get(f"from_{i}", ""), formdata.get(f"to_{i}", ""))
                for i in range(1, RANGE_LINES + 1)]

    def layout_request(self, formdata) -> tuple[LayoutRequest | None, list[str]]:
        """The generator request, or the reasons it cannot be made."""
        problems = [e for field in (self.sections, self.rows, self.seats_per_row, self.first_row_label,
                                    self.origin_x, self.origin_y, self.per_line, self.best_order)
                    for e in field.errors]
        if problems:
            return None, problems
        ranges = []
        for i, (tier, first, last) in enumerate(self.range_lines(formdata), start=1):
            if not tier:
                continue
            try:
                ranges.append(RowRange(int(tier), int(first or 1), int(last or self.rows.data)))
            except ValueError:
                problems.append(gettext("Line %(num)s: rows are numbers, counted from 1.", num=i))
        if problems:
            return None, problems
        names = tuple(name for part in self.sections.data.split(",") if part.strip()
                      for name in _numbered_names(part.strip()))
        return LayoutRequest(names, self.rows.data, self.seats_per_row.data, self.first_row_label.data.upper(),
                             tuple(ranges), self.best_order.data or "front_centre", origin_x=self.origin_x.data,
                             origin_y=self.origin_y.data, per_line=self.per_line.data), []


_NUMBERED = re.compile(r"^(.*?)(\d{1,4})\s*[-–]\s*(\d{1,4})$")


def _numbered_names(name: str) -> list[str]:
    """“Block 1-30” is thirty sections, Block 1 to Block 30 (at most 200: the generator says so beyond)."""
    match = _NUMBERED.match(name)
    if match is None:
        return [name]
    stem, first, last = match.group(1), int(match.group(2)), int(match.group(3))
    if not first <= last or last - first >= 201:
        return [name]
    return [f"{stem}{n}" for n in range(first, last + 1)]


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(message=_l("Say why, for the buyers and the log.")),
                                               Length(max=160)])


class RefundForm(FlaskForm):
    """What to refund of an order: all of it, some tickets (they become void), or an amount (they stay valid)."""

    what = SelectField(_l("Refund"), choices=[("tickets", _l("The tickets ticked")), ("amount", _l("An amount")),
                                          ("whole", _l("The whole order"))], default="tickets")
    tickets = SelectMultipleField(_l("Tickets"), coerce=int, validate_choice=False,
                                  option_widget=CheckboxInput(), widget=ListWidget(prefix_label=False))
    amount = FiniteDecimalField(_l("Amount (€)"), places=2, validators=[
        Optional(), NumberRange(min=0.01, max=100000, message=_l("Enter an amount from 0.01 to 100,000."))])
    reason = StringField(_l("Why (told to the buyer)"), validators=[
        DataRequired(message=_l("Say why, for the buyer and the log.")), Length(max=160)])

    def validate_tickets(self, field):
        if self.what.data == "tickets" and not field.data:
            raise ValidationError(gettext("Tick the tickets to refund."))

    def validate_amount(self, field):
        if self.what.data == "amount" and field.data is None:
            raise ValidationError(gettext("Enter the amount to refund, e.g. 12.50."))

    @property
    def amount_minor(self) -> int | None:
        return None if self.amount.data is None else int((self.amount.data * 100).to_integral_value())


class CheckInForm(FlaskForm):
    code = StringField(_l("Ticket code"), validators=[DataRequired(message=_l("Type or scan a ticket code.")),
                                                  Length(max=200)])


def _tier_id(raw) -> int | None:
    # Checkbox values are untrusted text: parse_id, not int() (superscripts, bigints).
    return raw if isinstance(raw, int) else parse_id(str(raw))


def _given(field) -> bool:
    return bool(field.raw_data and str(field.raw_data[0]).strip())


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


LIMIT = 1_000_000


class CodeForm(FlaskForm):
    """A discount or access code. Times are the venue's wall clock; `spec()` makes them instants."""

    kind = SelectField(_l("Kind"), default="discount", choices=[
        ("discount", _l("Discount code (takes money off)")), ("access", _l("Access code (unlocks hidden tiers)"))])
    code = StringField(_l("Code"), validators=[
        DataRequired(message=_l("Give the code buyers will type, e.g. EARLYBIRD.")),
        Regexp(r"^\s*[A-Za-z0-9][A-Za-z0-9_-]{2,39}\s*$",
               message=_l("A code is 3 to 40 letters, digits, '-' or '_', starting with a letter or digit."))],
        description=_l("Buyers may type it in any case; it is stored in capitals."))
    percent_off = IntegerField(_l("Percent off"), validators=[
        Optional(), NumberRange(min=1, max=100, message=_l("A percentage off is between 1 and 100."))])
    amount_off = FiniteDecimalField(_l("Amount off each ticket"), places=2, validators=[
        Optional(), NumberRange(min=Decimal("0.01"), max=100000,
            message=_l("An amount off runs from 0.01 to 100,000."))])
    tiers = CheckboxesField(_l("Tiers"), coerce=_tier_id, validate_choice=True,
                            description=_l("None ticked: every tier (discount codes)."))
    max_uses = IntegerField(_l("Total uses"), validators=[
        Optional(), NumberRange(min=1, max=LIMIT,
            message=_l("Total uses must be at least 1 (or empty for no limit)."))])
    per_buyer_max = IntegerField(_l("Uses per buyer"), validators=[
        Optional(),
        NumberRange(min=1, max=LIMIT, message=_l("Uses per buyer must be at least 1 (or empty for no limit)."))])
    min_quantity = IntegerField(_l("Minimum tickets"), validators=[
        Optional(), NumberRange(min=1, max=LIMIT,
            message=_l("Minimum tickets must be at least 1 (or empty for none)."))])
    valid_from = DateTimeLocalField(_l("Valid from (local time)"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    valid_until = DateTimeLocalField(_l("Valid until (local time)"), format="%Y-%m-%dT%H:%M", validators=[Optional()])

    def __init__(self, *args, event, fixed_kind: str | None = None, with_code: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not with_code:
            # Bulk codes are drawn at random, and an edit keeps the code buyers already have.
            del self.code
        self.event = event
        self.tiers.choices = [(t.id,
            gettext("%(tier)s (hidden)", tier=t.name) if t.hidden else t.name) for t in event.tiers]
        self.currency = event.tiers[0].currency if event.tiers else "EUR"
        self.amount_off.label.text = gettext("Amount off each ticket (%(currency)s)", currency=self.currency)
        if fixed_kind:
            # A code's kind never changes (its orders were counted as that kind).
            self.kind.data = fixed_kind
        self._instants: dict[str, datetime | None] = {}

    @property
    def is_discount(self) -> bool:
        return self.kind.data != "access"

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        # Both fields are Optional (which stops their own checks when empty): the either/or is the form's.
        percent, amount = _given(self.percent_off), _given(self.amount_off)
        if self.is_discount and percent == amount:
            self.percent_off.errors = [*self.percent_off.errors, (
                gettext("Give either a percentage or an amount off, not both.") if percent
                else gettext("Give a percentage off, or an amount off each ticket."))]
            return False
        return ok

    def validate_tiers(self, field):
        if not self.is_discount and not field.data:
            raise ValidationError(gettext("Tick the hidden tiers this access code unlocks."))

    def _instant(self, field) -> datetime | None:
        if field.data is None:
            return None
        if not MIN_YEAR < field.data.year < MAX_YEAR:
            raise ValidationError(
                gettext("Enter a date between %(first)s and %(last)s.", first=MIN_YEAR + 1, last=MAX_YEAR - 1))
        try:
            return from_local(field.data, self.event.timezone)
        except NonexistentLocalTime as gap:
            raise ValidationError(str(gap)) from None

    def validate_valid_from(self, field):
        self._instants["from"] = self._instant(field)

    def validate_valid_until(self, field):
        until = self._instants["until"] = self._instant(field)
        start = self._instants.get("from")
        if until is not None and start is not None and until <= start:
            raise ValidationError(gettext("The code's validity must end after it starts."))

    def show_code(self, code) -> None:
        """Fill the form from a stored code, times on the venue's clock."""
        self.kind.data = code.kind
        self.percent_off.data = code.percent_off
        self.amount_off.data = Decimal(code.amount_off_minor) / 100 if code.amount_off_minor else None
        self.tiers.data = list(code.tier_ids or [])
        self.max_uses.data, self.per_buyer_max.data = code.max_uses, code.per_buyer_max
        self.min_quantity.data = code.min_quantity
        tz = self.event.timezone
        self.valid_from.data = to_form(code.valid_from, tz) if code.valid_from else None
        self.valid_until.data = to_form(code.valid_until, tz) if code.valid_until else None

    def spec(self) -> CodeSpec:
        """The validated form as the service's CodeSpec (call after validate())."""
        discount = self.is_discount
        amount = self.amount_off.data
        return CodeSpec(
            kind="discount" if discount else "access",
            percent_off=self.percent_off.data if discount else None,
            amount_off_minor=int((amount * 100).to_integral_value()) if discount and amount is not None else None,
            tier_ids=tuple(self.tiers.data or ()),
            # The reserve gate checks an access code's window only: its limits would promise what nothing enforces.
            max_uses=self.max_uses.data if discount else None,
            per_buyer_max=self.per_buyer_max.data if discount else None,
            min_quantity=self.min_quantity.data if discount else None,
            valid_from=self._instants.get("from"), valid_until=self._instants.get("until"),
        )

    def refuse(self, message: str) -> None:
        """Put a service's refusal beside the field it is about (or above the form)."""
        text = message.lower()
        field = next((f for words, f in (
            (("already has a code", "a code is"), getattr(self, "code", None)),
            (("total uses",), self.max_uses),
            (("tier",), self.tiers),
            (("percentage", "amount off"), self.percent_off),
            (("validity",), self.valid_until),
            (("batch",), getattr(self, "batch", None)),
        ) if f is not None and any(w in text for w in words)), None)
        if field is None:
            self.form_errors.append(message)
        else:
            field.errors = [*field.errors, message]


class BulkCodeForm(CodeForm):
    """Many random codes with the same terms, named as one batch (the CSV's name)."""

    count = IntegerField(_l("How many"), default=100, validators=[
        InputRequired(message=_l("How many codes?")),
        NumberRange(min=1, max=BULK_MAX,
            message=_l("Generate between 1 and %(most)s codes at a time.", most=f"{BULK_MAX:,}"))])
    prefix = StringField(_l("Prefix"), validators=[
        Optional(), Regexp(r"^\s*[A-Za-z0-9][A-Za-z0-9_-]{0,19}\s*$",
                           message=_l("A prefix is up to 20 letters, digits, '-' or '_'."))],
        description=_l("Optional, e.g. VIP- gives VIP-7KQ2M9XR4T."))
    batch = StringField(_l("Batch name"), validators=[
        DataRequired(message=_l("Name the batch, e.g. newsletter-december: its CSV is downloaded by this name.")),
        Regexp(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,79}$",
               message=_l("A batch name is up to 80 letters, digits, spaces, '.', '-' or '_'."))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, with_code=False, **kwargs)


class SeatPropertyForm(FlaskForm):
    """A seat property given to (or taken from) seats from–to of one row of one section."""

    prop = SelectField(_l("Property"), choices=list(SEAT_PROPERTY_WORDS.items()), validate_choice=True,
                       validators=[DataRequired(message=_l("Choose a property."))])
    section = StringField(_l("Section"), validators=[DataRequired(message=_l("Which section?")), Length(max=60)])
    row = StringField(_l("Row"), validators=[DataRequired(message=_l("Which row? Its label, e.g. B.")), Length(max=10)])
    first = IntegerField(_l("Seats from"), validators=[
        InputRequired(message=_l("From which seat number?")),
        NumberRange(min=1, max=100_000, message=_l("A seat number."))])
    last = IntegerField(_l("to"), validators=[
        Optional(), NumberRange(min=1, max=100_000, message=_l("A seat number."))],
                        description=_l("Empty for one seat."))
    clear = BooleanField(_l("Take the property away instead"))

    def seat_range(self) -> SeatRange:
        return SeatRange(self.section.data.strip(), self.row.data.strip().upper(), self.first.data,
                         self.last.data or self.first.data)


class BestAvailableForm(FlaskForm):
    """Where best available measures from, and the orphan-seat rule."""

    focal_x = FiniteDecimalField(_l("Focal point across"), places=2, validators=[Optional()],
                                 description=_l("Seat positions, as the map counts them from the left;"
                                                " empty for the centre front."))
    focal_y = FiniteDecimalField(_l("Focal point deep"), places=2, validators=[Optional()],
                                 description=_l("Rows from the front (−1 is just before the first row)."))
    avoid_orphans = BooleanField(_l("Leave no single seat alone unless nothing else is left"), default=True)
