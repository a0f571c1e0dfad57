"""Admin forms. The same form validates a whole submit and, inline, one field."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import URL, DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from webapp.parsing import FiniteDecimalField
from webapp.services.admin_events import MAX_GA_CAPACITY, LayoutRequest, RowRange
from webapp.services.events import BEST_ORDERS
from webapp.timezones import NonexistentLocalTime, from_local, is_valid_zone, to_form, zone_names

RANGE_LINES = 4


class EventForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(message="Give the event a title."), Length(max=200)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=5000)])
    venue = StringField("Venue", validators=[DataRequired(message="Where does it take place?"), Length(max=200)])
    # Admins think in the venue's clock; the database keeps the UTC instant.
    timezone = SelectField("Time zone", default="UTC", choices=lambda: list(zone_names()), validate_choice=False)
    starts_at = DateTimeLocalField(
        "Starts (local time)", format="%Y-%m-%dT%H:%M",
        validators=[DataRequired(message="Enter a date and time, e.g. 2027-05-01 19:30.")],
    )
    sales_end_at = DateTimeLocalField(
        "Sales end (UTC)", format="%Y-%m-%dT%H:%M", validators=[Optional()],
        description="Leave empty to stop sales when the event starts.",
    )
    image_url = StringField("Image URL", validators=[Optional(), URL(message="Enter a full http(s):// address."),
                                                      Length(max=500)])
    hold_minutes = FiniteDecimalField(
        "Hold minutes", places=2, default=Decimal(8),
        validators=[InputRequired(message="How long are seats held while a buyer pays?"),
                    NumberRange(min=1, max=60, message="Holds last between 1 and 60 minutes.")],
    )
    per_order_limit = IntegerField(
        "Tickets per order", default=8,
        validators=[InputRequired(message="Enter a whole number."),
                    NumberRange(min=1, max=50, message="Allow between 1 and 50 tickets per order.")],
    )
    per_buyer_limit = IntegerField(
        "Tickets per buyer", default=10,
        description="Across all of a buyer's orders, holds and waiting-list places for this event.",
        # Optional: a form sent without it keeps the event's setting (or the default).
        validators=[Optional(), NumberRange(min=1, max=1000, message="Allow between 1 and 1,000 tickets per buyer.")],
    )
    rehold_cooldown_seconds = IntegerField(
        "Re-hold cool-down (seconds)", default=60,
        description="How long a buyer waits before holding again the seats they released or let expire; 0 for none.",
        validators=[Optional(), NumberRange(min=0, max=3600, message="Between 0 and 3,600 seconds.")],
    )
    waitlist_enabled = BooleanField("Waiting list when sold out", default=True)
    offer_hours = FiniteDecimalField(
        "Waiting-list offer hours", places=2, default=Decimal(12),
        validators=[InputRequired(message="How long does someone in line have to buy an offer?"),
                    NumberRange(min=Decimal("0.25"), max=168, message="Offers last between 15 minutes and 168 hours.")],
    )
    waitlist_partial_offers = BooleanField("Offer part of a request when not enough is free")

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.creating = creating

    def validate_timezone(self, field):
        if not is_valid_zone(field.data or ""):
            raise ValidationError("Pick the venue time zone from the list, e.g. Europe/Vienna.")

    def validate_starts_at(self, field):
        if not field.data:
            return
        tz = self.timezone.data if is_valid_zone(self.timezone.data or "") else "UTC"
        try:
            starts = from_local(field.data, tz)
        except NonexistentLocalTime as gap:
            raise ValidationError(str(gap)) from None
        if self.creating and starts <= datetime.now(timezone.utc):
            raise ValidationError("A new event must start in the future.")

    def show_event(self, event) -> None:
        """Fill the start field with the event's local wall-clock time, as datetime-local shows it."""
        self.starts_at.data = to_form(event.starts_at, event.timezone)

    def values(self) -> dict:
        # Sent and filled in only (an absent field would take its default, not the event's setting).
        kept = {name: getattr(self, name).data for name in ("per_buyer_limit", "rehold_cooldown_seconds")
                if getattr(self, name).raw_data and getattr(self, name).data is not None}
        return kept | dict(
            title=self.title.data.strip(), description=(self.description.data or "").strip(),
            venue=self.venue.data.strip(), starts_at=from_local(self.starts_at.data, self.timezone.data),
            timezone=self.timezone.data,
            image_url=(self.image_url.data or "").strip() or None, hold_minutes=float(self.hold_minutes.data),
            per_order_limit=self.per_order_limit.data, waitlist_enabled=self.waitlist_enabled.data,
            offer_hours=float(self.offer_hours.data), waitlist_partial_offers=self.waitlist_partial_offers.data,
            sales_end_at=self.sales_end_at.data.replace(tzinfo=timezone.utc) if self.sales_end_at.data else None,
        )


class TierForm(FlaskForm):
    kind = SelectField("Kind", choices=[("general", "General admission"), ("seated", "Numbered seats")],
                       default="general")
    name = StringField("Name", validators=[DataRequired(message="Name the tier."), Length(max=80)])
    price = FiniteDecimalField("Price (€)", places=2, validators=[
        InputRequired(message="Enter a price, e.g. 45.00."),
        NumberRange(min=0, max=100000, message="Prices run from 0 to 100,000."),
    ])
    colour = StringField("Colour", default="#3b82f6",
                         validators=[Regexp(r"^#[0-9a-fA-F]{6}$", message="Pick a colour like #3b82f6.")])
    capacity = IntegerField("Capacity", validators=[
        Optional(), NumberRange(min=0, max=MAX_GA_CAPACITY, message=f"Capacity runs from 0 to {MAX_GA_CAPACITY:,}."),
    ])

    def validate_capacity(self, field):
        if self.kind.data == "general" and field.data is None:
            raise ValidationError("How many places does this tier have?")

    @property
    def price_minor(self) -> int:
        return int((self.price.data * 100).to_integral_value())


class LayoutForm(FlaskForm):
    sections = StringField("Section names", default="Stalls",
                           validators=[DataRequired(message="Name at least one section."), Length(max=400)],
                           description="Comma-separated; each section gets the same rows and seats.")
    rows = IntegerField("Rows per section", default=10, validators=[
        InputRequired(message="How many rows?"), NumberRange(min=1, max=60, message="Use 1 to 60 rows.")])
    seats_per_row = IntegerField("Seats per row", default=12, validators=[
        InputRequired(message="How many seats per row?"), NumberRange(min=1, max=80, message="Use 1 to 80 seats.")])
    first_row_label = StringField("First row label", default="A", validators=[
        DataRequired(message="Which letter does the first row have?"),
        Regexp(r"^[A-HJ-NP-Za-hj-np-z]$", message="One letter from A to Z (I and O are skipped)."),
    ])
    best_order = SelectField("Best seats first", choices=list(BEST_ORDERS.items()), default="front_centre",
                             validators=[Optional()], validate_choice=True,
                             description="The order “best available” offers these seats in.")

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
                                    self.best_order) for e in field.errors]
        if problems:
            return None, problems
        ranges = []
        for i, (tier, first, last) in enumerate(self.range_lines(formdata), start=1):
            if not tier:
                continue
            try:
                ranges.append(RowRange(int(tier), int(first or 1), int(last or self.rows.data)))
            except ValueError:
                problems.append(f"Line {i}: rows are numbers, counted from 1.")
        if problems:
            return None, problems
        names = tuple(n.strip() for n in self.sections.data.split(",") if n.strip())
        return LayoutRequest(names, self.rows.data, self.seats_per_row.data, self.first_row_label.data.upper(),
                             tuple(ranges), self.best_order.data or "front_centre"), []


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired(message="Say why, for the buyers and the log."),
                                               Length(max=160)])


class CheckInForm(FlaskForm):
    code = StringField("Ticket code", validators=[DataRequired(message="Type or scan a ticket code."),
                                                  Length(max=200)])
