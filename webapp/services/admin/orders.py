"""Orders as admins see them: search, one order in full, cancel or refund (whole, some tickets, an amount)."""
from __future__ import annotations

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session, joinedload, selectinload

from webapp.models import EventStatus, Order, PaymentAttempt, Refund, Ticket, User
from webapp.parsing import like_pattern, parse_id
from webapp.services import audit
from webapp.services.errors import NotFound
from webapp.services.messaging import outbox
from webapp.services.money import checkout, refunds
from webapp.services.money.gateway import PaymentGateway
from webapp.services.selling.attendees import QuestionView, questions_from_rows, questions_json

RESULTS = 50


def search_orders(session: Session, q: str = "", *, event_id: int | None = None) -> list[Order]:
    """Orders whose buyer's name or e-mail contains `q` (a door sale's typed address too), that hold the ticket
    with code `q`, or numbered `q`; newest first."""
    query = (
        select(Order).join(User, User.id == Order.user_id)
        .options(joinedload(Order.user), joinedload(Order.event), selectinload(Order.tickets))
        .order_by(Order.id.desc()).limit(RESULTS)
    )
    if event_id is not None:
        query = query.where(Order.event_id == event_id)
    q = q.strip()
    if q:
        by_code = select(Ticket.order_id).where(Ticket.code == q).scalar_subquery()
        pattern = like_pattern(q.lower())
        conditions = [User.email.like(pattern, escape="\\"), Order.buyer_email.like(pattern, escape="\\"),
                      func.lower(User.name).like(pattern, escape="\\"), Order.id == by_code]
        order_id = parse_id(q.lstrip("#"))
        if order_id is not None:
            conditions.append(Order.id == order_id)
        query = query.where(or_(*conditions))
    return list(session.scalars(query).unique().all())


def get_order(session: Session, order_id: int) -> Order:
    order = session.scalars(
        select(Order).where(Order.id == order_id)
        .options(joinedload(Order.user), joinedload(Order.event),
                 selectinload(Order.tickets).joinedload(Ticket.unit),
                 selectinload(Order.tickets).joinedload(Ticket.tier))
    ).first()
    if order is None:
        raise NotFound("No such order.")
    return order


def questions_of(session: Session, order: Order) -> list[QuestionView]:
    """The event's questions, to name the order's answers."""
    return questions_from_rows(session.execute(text(f"SELECT {questions_json(':e')}"), {"e": order.event_id})
                               .scalar())


def payment_of(session: Session, order: Order) -> PaymentAttempt | None:
    return session.get(PaymentAttempt, order.payment_attempt_id)


def cancel_order(session: Session, gateway: PaymentGateway, *, actor_id: int, order_id: int, reason: str,
                 refund: bool) -> Order:
    """Cancel (optionally refunding) on the buyer's behalf; the units go to the waiting list first."""
    order = checkout.cancel_order(session, gateway, order_id=order_id, user_id=None,
                                  reason=reason[:200], refund=refund)
    tell_buyer(session, order)
    audit.record(session, actor_id=actor_id, action="order.refund" if refund else "order.cancel", entity="order",
                 entity_id=order.id, event_id=order.event_id, before={"status": "confirmed"},
                 after={"status": order.status.value, "reason": reason[:200], "amount_minor": order.total_minor})
    return order


def refund(session: Session, gateway: PaymentGateway, *, actor_id: int, order_id: int, reason: str,
           ticket_ids: list[int] | None = None, amount_minor: int | None = None, whole: bool = False) -> Refund:
    """Refund the whole order, some tickets or an amount; audited, the buyer mailed.

    Commits twice, as paying does: the refund row (with the buyer's mail and
    the credit note) before the gateway is asked, so that a crash in between
    leaves it to the sweep; then the gateway's answer. A refund that fails
    later is the admin's to see on the order page and in the log.
    """
    before = session.scalar(select(Order.status).where(Order.id == order_id))
    made = refunds.request_refund(session, order_id=order_id, reason=reason, actor_id=actor_id,
                                  ticket_ids=ticket_ids, amount_minor=amount_minor, whole=whole)
    order = made.order
    outbox.queue(session, template="refund_issued", recipient=select(User.email).where(
        User.id == order.user_id).scalar_subquery(), event_id=order.event_id,
        params={"order_id": order.id, "refund_id": made.id}, locale=order.locale)
    audit.record(session, actor_id=actor_id, action="order.refund", entity="order", entity_id=order.id,
                 event_id=order.event_id, before={"status": before.value if before else None},
                 after={"status": order.status.value, "reason": made.reason, "amount_minor": made.amount_minor,
                        "refund_id": made.id, "tickets": ticket_ids or []})
    session.commit()
    refunds.send_refund(session, gateway, made)
    session.commit()
    return made


def tell_buyer(session: Session, order: Order) -> None:
    """E-mail the buyer that the organiser cancelled their order, or the whole event (via the outbox)."""
    user = session.get(User, order.user_id)
    assert user is not None, "user_id is a NOT NULL foreign key to users"
    template = "event_cancelled" if order.event.status == EventStatus.CANCELLED else "order_cancelled"
    outbox.queue(session, template=template, recipient=user.email, event_id=order.event_id,
                 params={"order_id": order.id}, locale=order.locale)
