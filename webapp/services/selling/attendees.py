"""Attendee names and the organiser's questions: what a hold page asks, what an answer may be, and changing them.

The organiser decides per event whether each ticket's attendee name is
asked (`events.attendee_names`: off, asked, required) and defines questions
per event or per tier (`questions`), each asked once per order or once per
ticket. The buyer answers on the hold page, in the pay form: the answers are
read here into one plain structure,

    {"order": {"<question id>": value},
     "tickets": {"<unit id>": {"name": "...", "answers": {"<question id>": value}}}}

kept on the hold when its payment starts (checkout.begin_payment) and
copied onto the order and its tickets when it is confirmed, whoever confirms
it (the checkout or the sweep). Tickets are named by their unit in forms,
before and after buying: a unit has at most one valid ticket.

A value is what its kind says: text (a string), number (an int or a float),
choice (one of the options), choices (a list of them, in the options' order),
checkbox (true; unticked is no answer, and a required one is a consent),
date (ISO, YYYY-MM-DD). An unanswered optional question is left out.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from webapp.models import Order, OrderStatus, Ticket, TicketStatus
from webapp.services import audit
from webapp.services.errors import BookingError, NotFound

NAME_MODES = ("off", "asked", "required")
MAX_NAME = 120
MAX_TEXT = 500
_TICKED = {"on", "yes", "true", "1", "y"}


@dataclass(frozen=True)
class QuestionView:
    id: int
    label: str
    kind: str
    options: tuple[str, ...] = ()
    required: bool = False
    per_ticket: bool = True
    tier_id: int | None = None

    def applies_to(self, tier_ids: Iterable[int]) -> bool:
        return self.tier_id is None or self.tier_id in set(tier_ids)

    def shown(self, value: Any) -> str:
        """An answer as pages, files and mail show it."""
        if value is None:
            return ""
        if self.kind == "checkbox":
            return "Yes" if value else ""
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)


def questions_from_rows(rows: Iterable[Mapping[str, Any]] | None) -> list[QuestionView]:
    """Questions from the JSON rows the read statements aggregate (`QUESTIONS_JSON`)."""
    return [QuestionView(r["id"], r["label"], r["kind"], tuple(r.get("options") or ()), r["required"],
                         r["per_ticket"], r.get("tier_id")) for r in rows or []]


def questions_json(event_column: str) -> str:
    """A subquery: the event's questions as a JSON list, in the organiser's order (one index walk)."""
    return f"""(SELECT json_agg(json_build_object('id', q.id, 'label', q.label, 'kind', q.kind,
                    'options', q.options, 'required', q.required, 'per_ticket', q.per_ticket,
                    'tier_id', q.tier_id) ORDER BY q.sort_order, q.id)
                FROM questions q WHERE q.event_id = {event_column})"""


def ticket_field(unit_id: int, what: str) -> str:
    """A ticket's field in the forms: `what` is "name" or "q<question id>"."""
    return f"ticket-{unit_id}-{what}"


def order_field(question_id: int) -> str:
    return f"order-q{question_id}"


@dataclass(frozen=True)
class TicketAsk:
    """What one ticket is asked: its name (per the event's mode) and its per-ticket questions."""

    unit_id: int
    tier_id: int
    label: str
    questions: list[QuestionView]


@dataclass(frozen=True)
class Asked:
    """Everything a hold (or an order) asks, in the page's order."""

    names: str
    order_questions: list[QuestionView]
    tickets: list[TicketAsk]

    @property
    def anything(self) -> bool:
        return self.names != "off" or bool(self.order_questions) or any(t.questions for t in self.tickets)

    def fields(self) -> dict[str, tuple[QuestionView | None, str]]:
        """Every field name, with its question (None: the attendee name) and what it is about."""
        found: dict[str, tuple[QuestionView | None, str]] = {}
        for q in self.order_questions:
            found[order_field(q.id)] = (q, "order")
        for ticket in self.tickets:
            if self.names != "off":
                found[ticket_field(ticket.unit_id, "name")] = (None, ticket.label)
            for q in ticket.questions:
                found[ticket_field(ticket.unit_id, f"q{q.id}")] = (q, ticket.label)
        return found


def asked(names: str, questions: list[QuestionView], lines: Iterable[tuple[int, int, str]]) -> Asked:
    """What to ask of these lines (unit id, tier id, label): per-tier questions only where their tier is."""
    lines = list(lines)
    tiers = {tier_id for _, tier_id, _ in lines}
    return Asked(
        names,
        [q for q in questions if not q.per_ticket and q.applies_to(tiers)],
        [TicketAsk(unit_id, tier_id, label, [q for q in questions if q.per_ticket and q.applies_to([tier_id])])
         for unit_id, tier_id, label in lines],
    )


class AnswersInvalid(BookingError):
    """Some attendee names or answers need correcting: nothing was charged or changed."""

    status_code = 400

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("Some attendee details need your attention: see the messages beside them.")

    @property
    def facts(self) -> dict[str, Any]:
        return {"fields": self.errors}


class AnswersLocked(BookingError):
    """The order was cancelled, or the organiser's deadline for changes has passed."""

    status_code = 409


def read_name(mode: str, raw: list[str]) -> tuple[str | None, str | None]:
    """The attendee name typed (or None), and what is wrong with it."""
    value = " ".join((raw[0] if raw else "").split())
    if not value:
        return None, _("Enter the attendee's name.") if mode == "required" else None
    if len(value) > MAX_NAME:
        return None, _("A name is at most %(count)s characters.", count=MAX_NAME)
    return value, None


def read_value(question: QuestionView, raw: list[str]) -> tuple[Any, str | None]:
    """One answer as its kind keeps it (None: unanswered), and what is wrong with it."""
    typed = [v.strip() for v in raw if v.strip()]
    if not typed:
        if question.required:
            return None, (_("Tick this box to go on.") if question.kind == "checkbox" else
                          _("Choose at least one.") if question.kind == "choices" else _("This answer is required."))
        return None, None
    first = typed[0]
    if question.kind == "text":
        if len(first) > MAX_TEXT:
            return None, _("At most %(count)s characters.", count=MAX_TEXT)
        return first, None
    if question.kind == "number":
        try:
            number = float(first.replace(",", "."))
        except ValueError:
            return None, _("Enter a number, such as 42 or 3.5.")
        if not math.isfinite(number) or abs(number) > 1e12:
            return None, _("Enter a number, such as 42 or 3.5.")
        return int(number) if number.is_integer() else number, None
    if question.kind == "choice":
        if len(typed) > 1 or first not in question.options:
            return None, _("Choose one of the options.")
        return first, None
    if question.kind == "choices":
        if any(v not in question.options for v in typed):
            return None, _("Choose among the options.")
        return [o for o in question.options if o in typed], None
    if question.kind == "checkbox":
        if first.lower() not in _TICKED:
            return None, _("Tick the box, or leave it empty.")
        return True, None
    if question.kind == "date":
        try:
            return date.fromisoformat(first).isoformat(), None
        except ValueError:
            return None, "Enter a date as YYYY-MM-DD."
    return None, "This question cannot be answered."


def read_answers(ask: Asked, form: Mapping[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Everything a form answers (see the module's docstring), and the message per field that is wrong."""
    errors: dict[str, str] = {}
    order: dict[str, Any] = {}
    for q in ask.order_questions:
        value, error = read_value(q, form.get(order_field(q.id), []))
        if error:
            errors[order_field(q.id)] = error
        elif value is not None:
            order[str(q.id)] = value
    tickets: dict[str, Any] = {}
    for ticket in ask.tickets:
        entry: dict[str, Any] = {"answers": {}}
        if ask.names != "off":
            name, error = read_name(ask.names, form.get(ticket_field(ticket.unit_id, "name"), []))
            if error:
                errors[ticket_field(ticket.unit_id, "name")] = error
            entry["name"] = name
        for q in ticket.questions:
            value, error = read_value(q, form.get(ticket_field(ticket.unit_id, f"q{q.id}"), []))
            if error:
                errors[ticket_field(ticket.unit_id, f"q{q.id}")] = error
            elif value is not None:
                entry["answers"][str(q.id)] = value
        tickets[str(ticket.unit_id)] = entry
    return {"order": order, "tickets": tickets}, errors


def field_error(ask: Asked, field_name: str, form: Mapping[str, list[str]]) -> str | None:
    """One field's message for inline validation, with the submit path's rules; KeyError for no such field."""
    question, _about = ask.fields()[field_name]
    raw = form.get(field_name, [])
    return read_name(ask.names, raw)[1] if question is None else read_value(question, raw)[1]


def typed_values(answers: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Saved answers (or the API's, in the same shape) as form values: to fill the fields again, or to check."""
    values: dict[str, list[str]] = {}
    if not answers:
        return values
    for qid, value in (answers.get("order") or {}).items():
        values[f"order-q{qid}"] = _as_typed(value)
    for unit_id, entry in (answers.get("tickets") or {}).items():
        if entry.get("name") is not None:
            values[f"ticket-{unit_id}-name"] = [entry["name"]]
        for qid, value in (entry.get("answers") or {}).items():
            values[f"ticket-{unit_id}-q{qid}"] = _as_typed(value)
    return values


def _as_typed(value: Any) -> list[str]:
    if value is None or value is False:
        return []
    if value is True:
        return ["on"]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


@dataclass
class ChangedAnswers:
    order_id: int
    changed_tickets: list[int] = field(default_factory=list)
    order_changed: bool = False


_EDITABLE = text("""
SELECT now() < coalesce(e.attendee_edit_until, e.starts_at) AS editable, e.attendee_names,
       {questions} AS questions
FROM events e WHERE e.id = :e
""".format(questions=questions_json("e.id")))


def change_answers(session: Session, *, order_id: int, user_id: int | None, actor_id: int | None,
                   form: Mapping[str, list[str]]) -> ChangedAnswers:
    """Change an order's attendee names and answers after buying, each change audited. The caller commits.

    `user_id` restricts the order to its buyer, who may change them until the
    event's `attendee_edit_until` (the start, if unset); None is an organiser,
    who may at any time. Everything the form answers is checked first: one
    wrong field changes nothing.
    """
    query = select(Order).where(Order.id == order_id).with_for_update()
    if user_id is not None:
        query = query.where(Order.user_id == user_id)
    order = session.scalars(query).first()
    if order is None:
        raise NotFound(_("No such order."))
    if order.status != OrderStatus.CONFIRMED:
        raise AnswersLocked(_("This order was cancelled: its attendee details can no longer be changed."))
    settings = session.execute(_EDITABLE, {"e": order.event_id}).one()
    if user_id is not None and not settings.editable:
        raise AnswersLocked(_("Attendee details for this event can no longer be changed."))
    tickets = list(session.scalars(select(Ticket).where(Ticket.order_id == order.id,
                                                       Ticket.status == TicketStatus.VALID)
                                   .order_by(Ticket.id).with_for_update()))
    ask = asked(settings.attendee_names, questions_from_rows(settings.questions),
                [(t.unit_id, t.tier_id, f"Ticket {t.id}") for t in tickets])
    answers, errors = read_answers(ask, form)
    if errors:
        raise AnswersInvalid(errors)
    result = ChangedAnswers(order.id)
    if answers["order"] != (order.answers or {}):
        audit.record(session, actor_id=actor_id, action="order.answers_changed", entity="order", entity_id=order.id,
                     event_id=order.event_id, before={"answers": order.answers or {}},
                     after={"answers": answers["order"]})
        order.answers = answers["order"]
        result.order_changed = True
    for ticket in tickets:
        entry = answers["tickets"][str(ticket.unit_id)]
        before = {"attendee_name": ticket.attendee_name, "answers": ticket.answers or {}}
        after = {"attendee_name": entry.get("name") if ask.names != "off" else ticket.attendee_name,
                 "answers": entry["answers"]}
        if before == after:
            continue
        audit.record(session, actor_id=actor_id, action="ticket.attendee_changed", entity="ticket",
                     entity_id=ticket.id, event_id=order.event_id, before=before, after=after)
        session.execute(update(Ticket).where(Ticket.id == ticket.id).values(
            attendee_name=after["attendee_name"], answers=after["answers"]))
        result.changed_tickets.append(ticket.id)
    session.flush()
    return result


def on_tickets(answers: Mapping[str, Any] | None, unit_id: int) -> tuple[str | None, dict[str, Any]]:
    """The name and per-ticket answers a hold's saved answers give the ticket of this unit."""
    entry = ((answers or {}).get("tickets") or {}).get(str(unit_id)) or {}
    return entry.get("name"), entry.get("answers") or {}

