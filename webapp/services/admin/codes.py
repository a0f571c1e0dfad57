"""The organiser's side of codes: create, edit and switch off codes, bulk batches, and each code's figures.

The rules a buyer meets (applying a discount, unlocking hidden tiers, a use
counted under the code row's lock) are selling/codes.py; this is what the
admin pages and the demo data do with codes.
"""
from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import Code, CodeKind, Tier
from webapp.services import audit
from webapp.services.errors import InvalidRequest, NotFound
from webapp.services.selling.codes import normalise

# Bulk codes: no 0/O or 1/I/L, which people misread from paper.
_BULK_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
BULK_MAX = 2000


@dataclass(frozen=True)
class CodeSpec:
    """A code as the admin describes it; `validate` says what is wrong in words."""

    kind: str
    percent_off: int | None = None
    amount_off_minor: int | None = None
    tier_ids: tuple[int, ...] = ()  # empty: every tier (discount codes)
    max_uses: int | None = None
    per_buyer_max: int | None = None
    min_quantity: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def validate(self, session: Session, event_id: int) -> None:
        if self.kind not in (CodeKind.DISCOUNT.value, CodeKind.ACCESS.value):
            raise InvalidRequest("Choose a discount code or an access code.")
        event_tiers = {t.id: t for t in session.scalars(select(Tier).where(Tier.event_id == event_id))}
        unknown = [t for t in self.tier_ids if t not in event_tiers]
        if unknown:
            raise InvalidRequest("Choose tiers of this event.")
        if self.kind == CodeKind.DISCOUNT.value:
            if (self.percent_off is None) == (self.amount_off_minor is None):
                raise InvalidRequest("Give either a percentage or an amount off, not both.")
            if self.percent_off is not None and not 1 <= self.percent_off <= 100:
                raise InvalidRequest("A percentage off is between 1 and 100.")
            if self.amount_off_minor is not None and self.amount_off_minor <= 0:
                raise InvalidRequest("An amount off is more than zero.")
        else:
            if self.percent_off is not None or self.amount_off_minor is not None:
                raise InvalidRequest("An access code unlocks tiers; it takes nothing off.")
            if not self.tier_ids:
                raise InvalidRequest("Choose the hidden tiers this access code unlocks.")
            shown = [event_tiers[t].name for t in self.tier_ids if not event_tiers[t].hidden]
            if shown:
                raise InvalidRequest(f"{', '.join(shown)} is not hidden: an access code only unlocks hidden tiers.")
        for label, value in (("Total uses", self.max_uses), ("Uses per buyer", self.per_buyer_max),
                             ("Minimum quantity", self.min_quantity)):
            if value is not None and value < 1:
                raise InvalidRequest(f"{label} must be at least 1 (or left empty for no limit).")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise InvalidRequest("The code's validity must end after it starts.")

    def columns(self) -> dict:
        return dict(kind=self.kind, percent_off=self.percent_off, amount_off_minor=self.amount_off_minor,
                    tier_ids=list(self.tier_ids) or None, max_uses=self.max_uses, per_buyer_max=self.per_buyer_max,
                    min_quantity=self.min_quantity, valid_from=self.valid_from, valid_until=self.valid_until)


def _audit_view(code: Code) -> dict:
    return {"code": code.code, "kind": code.kind, "percent_off": code.percent_off,
            "amount_off_minor": code.amount_off_minor, "tier_ids": code.tier_ids, "max_uses": code.max_uses,
            "per_buyer_max": code.per_buyer_max, "min_quantity": code.min_quantity,
            "valid_from": code.valid_from.isoformat() if code.valid_from else None,
            "valid_until": code.valid_until.isoformat() if code.valid_until else None, "active": code.active}


def _taken(session: Session, event_id: int, codes: list[str]) -> set[str]:
    return set(session.scalars(select(Code.code).where(Code.event_id == event_id, Code.code.in_(codes))))


def create_code(session: Session, *, event_id: int, raw_code: str, spec: CodeSpec, actor_id: int | None) -> Code:
    code_text = normalise(raw_code)
    if code_text is None:
        raise InvalidRequest("A code is 3 to 40 letters, digits, '-' or '_', starting with a letter or digit.")
    spec.validate(session, event_id)
    if _taken(session, event_id, [code_text]):
        raise InvalidRequest(f"This event already has a code {code_text}.")
    code = Code(event_id=event_id, code=code_text, created_by=actor_id, **spec.columns())
    try:
        with session.begin_nested():  # another admin making the same code at the same instant
            session.add(code)
            session.flush()
    except IntegrityError:
        raise InvalidRequest(f"This event already has a code {code_text}.") from None
    audit.record(session, actor_id=actor_id, event_id=event_id, action="code.create", entity="code",
                 entity_id=code.id, after=_audit_view(code))
    return code


def get_code(session: Session, *, event_id: int, code_id: int, lock: bool = False) -> Code:
    query = select(Code).where(Code.id == code_id, Code.event_id == event_id)
    code = session.scalars(query.with_for_update() if lock else query).first()
    if code is None:
        raise NotFound("No such code.")
    return code


_TAKEN = text(
    "SELECT (SELECT count(*) FROM orders WHERE code_id = :c AND status = 'confirmed')"
    "     + (SELECT count(*) FROM holds WHERE code_id = :c AND status = 'active')"
)


def update_code(session: Session, *, event_id: int, code_id: int, spec: CodeSpec, actor_id: int | None) -> Code:
    """Change a code's terms; holds that carry it keep the discount they were shown."""
    code = get_code(session, event_id=event_id, code_id=code_id, lock=True)
    if spec.kind != code.kind:
        raise InvalidRequest("A code's kind cannot change; make a new code instead.")
    spec.validate(session, event_id)
    if spec.max_uses is not None:
        # Under the code's lock, so no buyer takes a use between this count and the commit.
        taken = session.execute(_TAKEN, {"c": code.id}).scalar_one()
        if spec.max_uses < taken:
            raise InvalidRequest(
                f"{code.code} has {taken} uses taken already (paid orders and live reservations),"
                f" so its total uses cannot go below {taken}.")
    before = _audit_view(code)
    for key, value in spec.columns().items():
        setattr(code, key, value)
    session.flush()
    audit.record(session, actor_id=actor_id, event_id=event_id, action="code.update", entity="code",
                 entity_id=code.id, before=before, after=_audit_view(code))
    return code


def set_active(session: Session, *, event_id: int, code_id: int, active: bool, actor_id: int | None) -> Code:
    code = get_code(session, event_id=event_id, code_id=code_id, lock=True)
    if code.active != active:
        code.active = active
        session.flush()
        audit.record(session, actor_id=actor_id, event_id=event_id,
                     action="code.activate" if active else "code.deactivate", entity="code", entity_id=code.id,
                     before={"active": not active}, after={"active": active})
    return code


def generate_codes(session: Session, *, event_id: int, prefix: str, count: int, spec: CodeSpec,
                   actor_id: int | None, batch: str) -> list[Code]:
    """`count` new random codes with the same terms (e.g. 200 single-use codes), named as one batch."""
    if not 1 <= count <= BULK_MAX:
        raise InvalidRequest(f"Generate between 1 and {BULK_MAX} codes at a time.")
    prefix = (prefix or "").strip().upper()
    if prefix and not re.fullmatch(r"[A-Z0-9][A-Z0-9_-]{0,19}", prefix):
        raise InvalidRequest("A prefix is up to 20 letters, digits, '-' or '_'.")
    batch = (batch or "").strip()[:80] or None  # type: ignore[assignment]
    spec.validate(session, event_id)
    # A batch is downloaded again by its name: one name, one batch.
    if batch and session.scalar(select(Code.id).where(Code.event_id == event_id, Code.batch == batch).limit(1)):
        raise InvalidRequest(f"This event already has a batch called “{batch}”; name the new one differently.")
    wanted: list[str] = []
    while len(wanted) < count:
        fresh = {prefix + "".join(secrets.choice(_BULK_ALPHABET) for _ in range(10)) for _ in range(count)}
        fresh -= set(wanted) | _taken(session, event_id, list(fresh))
        wanted += sorted(fresh)[:count - len(wanted)]
    rows = [Code(event_id=event_id, code=c, created_by=actor_id, batch=batch, **spec.columns()) for c in wanted]
    session.add_all(rows)
    session.flush()
    audit.record(session, actor_id=actor_id, event_id=event_id, action="code.generate", entity="code",
                 entity_id=None, after={"count": count, "prefix": prefix, "batch": batch, **_audit_view(rows[0]),
                                        "code": None})
    return rows


@dataclass(frozen=True)
class CodeStats:
    code: Code
    uses: int  # confirmed orders carrying it
    holding: int  # live holds carrying it (uses taken, not yet paid)
    revenue_minor: int  # what its confirmed orders paid
    discount_minor: int  # what it took off them


_STATS = text(
    "SELECT c.id,"
    " coalesce(o.uses, 0) AS uses, coalesce(o.revenue, 0) AS revenue, coalesce(o.discount, 0) AS discount,"
    " coalesce(h.holding, 0) AS holding"
    " FROM codes c"
    # An order can carry both a discount code and the access code that unlocked
    # its tier: each code counts it (the discount is the discount code's).
    " LEFT JOIN (SELECT id, count(*) AS uses, sum(total_minor) AS revenue, sum(discount) AS discount FROM ("
    "              SELECT code_id AS id, total_minor, discount_minor AS discount FROM orders"
    "              WHERE event_id = :e AND status = 'confirmed' AND code_id IS NOT NULL"
    "              UNION ALL SELECT access_code_id, total_minor, 0 FROM orders"
    "              WHERE event_id = :e AND status = 'confirmed' AND access_code_id IS NOT NULL) u"
    "            GROUP BY id) o ON o.id = c.id"
    " LEFT JOIN (SELECT id, count(*) AS holding FROM ("
    "              SELECT code_id AS id FROM holds WHERE event_id = :e AND status = 'active' AND code_id IS NOT NULL"
    "              UNION ALL SELECT access_code_id FROM holds"
    "              WHERE event_id = :e AND status = 'active' AND access_code_id IS NOT NULL) u"
    "            GROUP BY id) h ON h.id = c.id"
    " WHERE c.event_id = :e"
)


def code_stats(session: Session, event_id: int) -> list[CodeStats]:
    """Every code of the event with its uses and revenue, newest first."""
    figures = {r.id: r for r in session.execute(_STATS, {"e": event_id})}
    codes = session.scalars(select(Code).where(Code.event_id == event_id).order_by(Code.id.desc())).all()
    return [CodeStats(c, figures[c.id].uses, figures[c.id].holding, figures[c.id].revenue,
                      figures[c.id].discount) for c in codes]


def batch_codes(session: Session, *, event_id: int, batch: str) -> list[Code]:
    """The codes of one bulk-generated batch, in code order (for its CSV)."""
    return list(session.scalars(select(Code).where(Code.event_id == event_id, Code.batch == batch)
                                .order_by(Code.code)))


def bulk_csv(codes: list[Code]) -> str:
    """The codes of a batch as CSV, one per line, for mail merges and printing."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "kind", "percent_off", "amount_off_minor", "max_uses", "per_buyer_max",
                     "valid_from", "valid_until"])
    for c in codes:
        writer.writerow([c.code, c.kind, c.percent_off or "", c.amount_off_minor or "", c.max_uses or "",
                         c.per_buyer_max or "", c.valid_from.isoformat() if c.valid_from else "",
                         c.valid_until.isoformat() if c.valid_until else ""])
    return out.getvalue()
