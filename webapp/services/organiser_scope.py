"""The one place where admin reads and writes are walled off by organiser.

A session given a scope (`enter`) has every ORM statement it runs, loads,
`session.get`, bulk UPDATE and DELETE alike, narrowed to the organiser's
rows with `with_loader_criteria`: a table with `organiser_id` by that
column, a table with `event_id` by the organiser's events (and, for a
member limited to some events, by those). So an admin query that forgets to
filter still cannot see another organiser's rows. The admin guards enter the
scope at the start of each request; buyers' paths never do, and pay
nothing: events are public.

Raw SQL (`text()`) is not narrowed; the guards check every id a URL names
before the view runs (`organisers.owner_of`), and the tables below that
are not scoped are listed in `UNSCOPED` (tests/test_organiser_scope.py
fails when a table holding an organiser's data is in neither list).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from webapp.extensions import db
from webapp.models import Event, Organiser, WebhookDelivery, WebhookEndpoint

_KEY = "organiser_scope"
# An execution option for the one read that must cross the wall on purpose: a user's own
# memberships in every organiser, for the switcher (organisers.memberships).
ACROSS_ORGANISERS = "across_organisers"

# Tables that hold no organiser's data: the people, the tenants themselves, and what the
# payment provider sends before it is matched to a payment.
# The gateways' own ledgers; a refund's tickets, reached only through their refund (scoped by its event);
# the app processes' measure of the shop's queue, the whole install's.
UNSCOPED = frozenset({"users", "organisers", "gateway_charges", "gateway_refunds", "stripe_events", "stripe_intents",
                      "refund_tickets", "shop_delays"})


@dataclass(frozen=True)
class Scope:
    organiser_id: int
    # None: every event of the organiser.
    event_ids: tuple[int, ...] | None = None
    # A platform administrator also sees the rows that belong to no organiser (account mail, say).
    platform: bool = False


def enter(session: Session, organiser_id: int, event_ids: list[int] | tuple[int, ...] | None = None, *,
          platform: bool = False) -> Scope:
    """From now on this session sees only this organiser's rows (and only these events', if given);
    `platform`: and the rows of no organiser, as a platform administrator may."""
    scope = Scope(organiser_id, tuple(event_ids) if event_ids is not None else None, platform)
    session.info[_KEY] = scope
    return scope


def leave(session: Session) -> None:
    session.info.pop(_KEY, None)


def current(session: Session) -> Scope | None:
    return session.info.get(_KEY)


def organiser_for_new_rows(session: Session) -> int:
    """Whose a new event or endpoint is when none is named: the scope's organiser, else the first one
    (scripts, the demo and tests work outside any scope)."""
    scope = current(session)
    if scope is not None:
        return scope.organiser_id
    found = session.scalar(select(Organiser.id).order_by(Organiser.id).limit(1))
    if found is None:
        raise LookupError("There is no organiser yet: a platform administrator makes one first.")
    return found


def _events_of(scope: Scope):
    events = select(Event.id).where(Event.organiser_id == scope.organiser_id)
    if scope.event_ids is not None:
        events = events.where(Event.id.in_(scope.event_ids))
    return events


def _mappers():
    # Flask-SQLAlchemy's model base has the registry; its type says less.
    return db.Model.registry.mappers  # type: ignore[attr-defined]


def scoped_tables() -> dict[str, str]:
    """Each scoped table, with the column that walls it off."""
    tables: dict[str, str] = {}
    for mapper in _mappers():
        columns = mapper.local_table.c
        if "organiser_id" in columns:
            tables[mapper.local_table.name] = "organiser_id"
        elif "event_id" in columns:
            tables[mapper.local_table.name] = "event_id"
        elif mapper.class_ is WebhookDelivery:
            tables[mapper.local_table.name] = "endpoint_id"
    return tables


def _criteria(scope: Scope) -> list:
    events = _events_of(scope)
    options = []
    for mapper in _mappers():
        cls, columns = mapper.class_, mapper.local_table.c
        if cls is Event:
            condition = Event.organiser_id == scope.organiser_id
            if scope.event_ids is not None:
                condition = condition & Event.id.in_(scope.event_ids)
        elif cls is WebhookDelivery:
            # A delivery may have no event (an endpoint for all of them): its endpoint's organiser owns it.
            condition = WebhookDelivery.endpoint_id.in_(
                select(WebhookEndpoint.id).where(WebhookEndpoint.organiser_id == scope.organiser_id))
        elif "organiser_id" in columns:
            condition = cls.organiser_id == scope.organiser_id
            if scope.platform and columns.organiser_id.nullable:
                condition = condition | cls.organiser_id.is_(None)
        elif "event_id" in columns:
            condition = cls.event_id.in_(events)
            if scope.platform and columns.event_id.nullable:
                condition = condition | cls.event_id.is_(None)
        else:
            continue
        options.append(with_loader_criteria(cls, condition, include_aliases=True))
    return options


@event.listens_for(Session, "do_orm_execute")
def _narrow_to_the_organiser(state: ORMExecuteState) -> None:
    scope = state.session.info.get(_KEY)
    if scope is None or not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load or state.execution_options.get(ACROSS_ORGANISERS):
        # The parent statement's criteria already travel with its lazy and column loads.
        return
    state.statement = state.statement.options(*_criteria(scope))
