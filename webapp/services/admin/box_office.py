"""The box office: sell at the door, resend an order's tickets.

A door sale is the buyer's reserve and a payment at the counter in one
transaction. The reserve is the inventory's own (`reserve_in_session`: the
same SQL function, the same locks and the same limits per order as a buyer
online), made in the clerk's name; the payment is `checkout.pay_in_person`,
cash or the organiser's own card terminal, with no gateway asked, so the
order carries its channel (`box_office`) and its clerk, and the invariant
checker knows it was paid in person. A clerk's sales are not the clerk's
purchases: the per-buyer limit leaves them out (tb_buyer_count).

Searching orders is `admin_orders.search_orders`, walled off by the
request's organiser scope like every admin read.
"""
from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import Event, EventStatus, Order, OrderStatus, Tier, User
from webapp.services import audit
from webapp.services.errors import InvalidRequest, NotFound, PassRequired, SalesClosed
from webapp.services.messaging import outbox
from webapp.services.money import checkout
from webapp.services.selling import inventory

PAID_WITH = checkout.IN_PERSON
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def events_on_sale(session: Session) -> list[Event]:
    """The events the box office may sell now (the session's scope: the organiser's, or the member's)."""
    return list(session.scalars(select(Event).where(Event.status == EventStatus.ON_SALE)
                                .order_by(Event.starts_at, Event.id)))


def sellable_tiers(session: Session, event_id: int) -> list[Tier]:
    # Hidden tiers open with an access code, which the box office does not type for a buyer.
    return list(session.scalars(select(Tier).where(Tier.event_id == event_id, Tier.hidden.is_(False))
                                .order_by(Tier.sort_order, Tier.id)))


def read_buyer_email(raw: str | None) -> str | None:
    email = (raw or "").strip().lower()
    if not email:
        return None
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidRequest(_("That e-mail address does not look right; leave it empty to print the tickets only."))
    return email


def sell(session: Session, *, clerk_id: int, event_id: int, counts: dict[int, int], paid_with: str,
         buyer_email: str | None = None) -> Order:
    """Sell `counts` (tier id -> how many) of the event at the counter, paid `paid_with`; the caller commits.

    Standing places are taken as a buyer's are; numbered seats as the best free ones of their tier, together
    where they can be (the inventory's best-available reserve), one seated tier per sale. Refusals are the
    reserve's own (too few left, over the limit per order, sales closed), and nothing is written then.
    """
    if paid_with not in PAID_WITH:
        raise InvalidRequest(_("Say how it was paid: cash or card terminal."))
    email = read_buyer_email(buyer_email)
    wanted = {tier_id: n for tier_id, n in counts.items() if n > 0}
    if any(n < 0 for n in counts.values()) or not wanted:
        raise InvalidRequest(_("Choose how many tickets to sell."))
    tiers = {t.id: t for t in sellable_tiers(session, event_id)}
    if not set(wanted) <= set(tiers):
        raise InvalidRequest(_("Pick the tickets from this event's list."))
    seated = [tier_id for tier_id in wanted if tiers[tier_id].seated]
    if seated and len(wanted) > 1:
        raise InvalidRequest(_("Sell the numbered seats of one tier at a time, apart from standing places."))
    try:
        if seated:
            hold = inventory.reserve_in_session(session, user_id=clerk_id, event_id=event_id,
                                                best=(seated[0], wanted[seated[0]]))
        else:
            hold = inventory.reserve_in_session(session, user_id=clerk_id, event_id=event_id, quantities=wanted)
    except PassRequired:
        raise SalesClosed(_("The waiting room is on for this event: the box office sells once it is off.")) from None
    order = checkout.pay_in_person(session, hold_id=hold.id, clerk_id=clerk_id, paid_with=paid_with,
                                   buyer_email=email)
    audit.record(session, actor_id=clerk_id, action="order.box_office_sale", entity="order", entity_id=order.id,
                 event_id=event_id, after={"tickets": hold.quantity, "amount_minor": order.total_minor,
                                           "paid_with": paid_with, "buyer_email": email})
    return order


def recipient_of(session: Session, order: Order) -> str | None:
    """Where an order's tickets go: the address the clerk typed for a door sale, else the buyer's account."""
    if order.channel == "box_office":
        return order.buyer_email
    return session.scalar(select(User.email).where(User.id == order.user_id))


def resend_tickets(session: Session, *, order_id: int, actor_id: int, to: str | None = None) -> str:
    """Mail the order's tickets again, through the outbox, audited; returns the address. The caller commits.

    `to`: for a door sale with no address yet, the one the buyer gives now (kept on the order).
    """
    order = session.get(Order, order_id)
    if order is None:
        raise NotFound(_("No such order."))
    if order.status != OrderStatus.CONFIRMED:
        if order.status == OrderStatus.REFUNDED:
            raise InvalidRequest(_("Order #%(id)s is refunded: it has no tickets to send.", id=order.id))
        raise InvalidRequest(_("Order #%(id)s is cancelled: it has no tickets to send.", id=order.id))
    typed = read_buyer_email(to)
    if typed and order.channel == "box_office":
        order.buyer_email = typed
    recipient = recipient_of(session, order)
    if not recipient:
        raise InvalidRequest(_("This door sale has no e-mail address: type the buyer's to send the tickets."))
    outbox.queue(session, template="order_confirmation", recipient=recipient, event_id=order.event_id,
                 params={"order_id": order.id}, defer=True)
    audit.record(session, actor_id=actor_id, action="order.resend_tickets", entity="order", entity_id=order.id,
                 event_id=order.event_id, after={"recipient": recipient})
    return recipient
