"""The organiser's side of attendee details: whether names are asked, until when they change, the questions,
and whether (and until when) holders may transfer tickets.

Every change is audited. What the buyer sees of them, and the rules an answer
follows, are in services/selling/attendees.py.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from webapp.models import Event, Question, Tier
from webapp.models.attendees import QUESTION_KINDS
from webapp.services import audit
from webapp.services.errors import InvalidRequest, NotFound
from webapp.services.selling.attendees import NAME_MODES

MAX_OPTIONS = 30
MAX_QUESTIONS = 50


def questions_of(session: Session, event_id: int) -> list[Question]:
    return list(session.scalars(select(Question).where(Question.event_id == event_id)
                                .order_by(Question.sort_order, Question.id)))


def set_attendee_settings(session: Session, *, actor_id: int | None, event: Event, names: str,
                          edit_until: datetime | None) -> None:
    """Whether each ticket's attendee name is asked (off, asked, required), and until when it may change."""
    if names not in NAME_MODES:
        raise InvalidRequest(_("Attendee names are off, asked or required."))
    if edit_until is not None and edit_until > event.starts_at:
        raise InvalidRequest(_("Changes must stop at the start of the event or before."))
    before = audit.snapshot(event, ("attendee_names", "attendee_edit_until"))
    event.attendee_names = names
    event.attendee_edit_until = edit_until
    session.flush()
    audit.record(session, actor_id=actor_id, action="event.attendee_settings", entity="event", entity_id=event.id,
                 event_id=event.id, before=before, after={"attendee_names": names, "attendee_edit_until": edit_until})


def set_transfer_settings(session: Session, *, actor_id: int | None, event: Event, enabled: bool,
                          until: datetime | None) -> None:
    """Whether holders may pass tickets on, and until when (at the latest, doors: the start)."""
    if until is not None and until > event.starts_at:
        raise InvalidRequest(_("Transfers must stop at the start of the event or before."))
    before = audit.snapshot(event, ("transfers_enabled", "transfers_until"))
    event.transfers_enabled = enabled
    event.transfers_until = until
    session.flush()
    audit.record(session, actor_id=actor_id, action="event.transfer_settings", entity="event", entity_id=event.id,
                 event_id=event.id, before=before, after={"transfers_enabled": enabled, "transfers_until": until})


def add_question(session: Session, *, actor_id: int | None, event_id: int, label: str, kind: str, options: list[str],
                 required: bool, per_ticket: bool, tier_id: int | None) -> Question:
    """A new question, asked after the others."""
    label = " ".join(label.split())
    options = [" ".join(o.split()) for o in options if o.strip()]
    if not label or len(label) > 200:
        raise InvalidRequest(_("A question needs a text of 1 to 200 characters."))
    if kind not in QUESTION_KINDS:
        raise InvalidRequest(_("Choose what kind of answer the question takes."))
    if kind in ("choice", "choices"):
        if not options:
            raise InvalidRequest(_("A choice needs its options, one per line."))
        if len(options) > MAX_OPTIONS or any(len(o) > 100 for o in options) or len(set(options)) != len(options):
            raise InvalidRequest(_("Up to %(num)s different options of at most 100 characters each.", num=MAX_OPTIONS))
    else:
        options = []
    if tier_id is not None and session.scalar(
            select(Tier.id).where(Tier.id == tier_id, Tier.event_id == event_id)) is None:
        raise InvalidRequest(_("That tier is not one of this event's."))
    count, last = session.execute(select(func.count(), func.coalesce(func.max(Question.sort_order), 0))
                                  .where(Question.event_id == event_id)).one()
    if count >= MAX_QUESTIONS:
        raise InvalidRequest(_("An event asks at most %(num)s questions.", num=MAX_QUESTIONS))
    question = Question(event_id=event_id, tier_id=tier_id, label=label, kind=kind, options=options,
                        required=required, per_ticket=per_ticket, sort_order=last + 1)
    session.add(question)
    session.flush()
    audit.record(session, actor_id=actor_id, action="question.created", entity="question", entity_id=question.id,
                 event_id=event_id, after=audit.snapshot(question, ("label", "kind", "options", "required",
                                                                    "per_ticket", "tier_id")))
    return question


def delete_question(session: Session, *, actor_id: int, event_id: int, question_id: int) -> None:
    """No longer asked; answers already given stay with their orders and tickets, under the question's id."""
    question = session.scalar(select(Question).where(Question.id == question_id, Question.event_id == event_id))
    if question is None:
        raise NotFound(_("No such question."))
    before = audit.snapshot(question, ("label", "kind", "options", "required", "per_ticket", "tier_id"))
    session.execute(delete(Question).where(Question.id == question.id))
    audit.record(session, actor_id=actor_id, action="question.deleted", entity="question", entity_id=question_id,
                 event_id=event_id, before=before)
