"""An event as the buyer pages read it: a snapshot of its row and its tiers, kept per row version.

A page view then neither loads nor maps ORM objects for the event; one short
statement tells whether the snapshot kept is still the rows as they are.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlalchemy.orm import Session, selectinload

from webapp.models import Event, EventStatus, Tier
from webapp.services.selling.recently_used import RecentlyUsed


class _Snapshot:
    """Plain, read-only copies of a model's columns; the model's properties work on it too."""

    _model: type

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str):
        attr: object = getattr(self._model, name, None)
        if isinstance(attr, property) and attr.fget is not None:
            return attr.fget(self)
        raise AttributeError(name)

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (shared between requests)")


S = TypeVar("S", bound=_Snapshot)


class TierSnapshot(_Snapshot):
    _model = Tier


class EventSnapshot(_Snapshot):
    """Reads like an `Event` (columns, `tiers` in their order, `is_seated`, `on_sale`)."""

    _model = Event


def _copy(model: type, obj, cls: type[S], **extra) -> S:
    mapper: Any = sa_inspect(model)
    keys: list[str] = [column.key for column in mapper.column_attrs]
    return cls({key: getattr(obj, key) for key in keys} | extra)


# The row versions of the event and its tiers: any UPDATE moves a row's xmin,
# so a snapshot found under this key is the rows as they are now. The creation
# time tells apart an id reused in a rebuilt database.
# The organiser's default language leads the key: the buyer's page needs it
# (webapp/i18n.py), and reading it here costs no statement of its own.
_EVENT_ROW_VERSION = text(
    "SELECT (SELECT o.default_locale FROM organisers o WHERE o.id = e.organiser_id) || '/' ||"
    " e.created_at::text || '/' || e.xmin::text || '/' || coalesce("
    "  (SELECT string_agg(t.id || '.' || t.xmin::text, ',' ORDER BY t.id) FROM tiers t WHERE t.event_id = e.id), '')"
    " FROM events e WHERE e.id = :e"
)
_EVENTS: RecentlyUsed[tuple[int, str], EventSnapshot] = RecentlyUsed(kept=256)


def event_snapshot(session: Session, event_id: int) -> EventSnapshot | None:
    """The event and its tiers as they are now, or None; one short statement when seen before."""
    version = session.execute(_EVENT_ROW_VERSION, {"e": event_id}).scalar()
    if version is None:
        return None
    key = (event_id, version)
    snapshot = _EVENTS.get(key)
    if snapshot is not None:
        return snapshot
    event = session.get(Event, event_id, options=[selectinload(Event.tiers)])
    if event is None:
        return None
    # Built from rows read after the version: the same rows or newer ones,
    # and newer rows carry a newer key, so this key never shows older data.
    tiers = tuple(_copy(Tier, t, TierSnapshot) for t in event.tiers)
    snapshot = _copy(Event, event, EventSnapshot, tiers=tiers, organiser_locale=version.split("/", 1)[0])
    _EVENTS.put(key, snapshot)
    return snapshot


def public_event(session: Session, event_id: int, *, staff: bool | Callable[[], bool] = False,
                 unlocked: Collection[int] = ()) -> EventSnapshot | None:
    """An event as buyers may see it, with its tiers: drafts exist for staff only.

    `staff` may be a callable, asked only for a draft (a page's user check is then not forced).
    Hidden tiers are left out unless `unlocked` (by the buyer's access codes) names them, so
    every page drawn from the snapshot (picker, map legend, waiting list, totals) leaves them out too.
    """
    event = event_snapshot(session, event_id)
    if event is None or (event.status == EventStatus.DRAFT and not (staff() if callable(staff) else staff)):
        return None
    if any(t.hidden for t in event.tiers):
        visible = tuple(t for t in event.tiers if not t.hidden or t.id in unlocked)
        locked = frozenset(t.id for t in event.tiers if t not in visible)
        return EventSnapshot({**event.__dict__, "tiers": visible, "has_hidden_tiers": True,
                              "locked_tier_ids": locked, "is_seated": event.is_seated})
    return event
