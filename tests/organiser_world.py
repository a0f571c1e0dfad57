"""Two organisers with a full set of rows each, and members in every role: what the isolation tests walk."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from tests.factories import Factory
from webapp.models import (
    ApiToken,
    Code,
    Organiser,
    OrganiserMember,
    OutboxMessage,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from webapp.services.admin import questions
from webapp.services.money import invoices
from webapp.services.people import api_tokens, organisers


@dataclass
class Side:
    organiser: Organiser
    ids: dict[str, int]
    # Strings only this organiser's pages may show.
    marks: tuple[str, ...]
    members: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def make_side(factory: Factory, slug: str, title: str) -> Side:
    session = factory.session
    organiser = Organiser(slug=slug, name=title)
    session.add(organiser)
    session.flush()
    # For all of the organiser's events: the order below is sent to it, and to no other organiser's.
    endpoint = WebhookEndpoint(organiser_id=organiser.id, url=f"https://hooks.{slug}.example/x",
                               event_types=["order.confirmed"], secret="whsec_x")
    session.add(endpoint)
    event = factory.ga_event(capacity=2, title=f"{title} Night", organiser_id=organiser.id)
    tier = event.tiers[0]
    buyer = factory.user(f"buyer-{slug}@example.com", name=f"Buyer of {title}")
    order = factory.order(event, buyer)
    factory.hold(event)
    entry = factory.waitlist_entry(event)
    code = Code(event_id=event.id, code=f"{slug.upper()}10", kind="discount", percent_off=10)
    session.add(code)
    session.flush()
    delivery = WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, event_type="order.confirmed", body="{}")
    message = OutboxMessage(event_id=event.id, recipient=buyer.email, subject=f"{title} mail", body="x")
    session.add_all([delivery, message])
    question = questions.add_question(session, actor_id=None, event_id=event.id, label=f"{title} diet", kind="text",
                                      options=[], required=False, per_ticket=True, tier_id=None)
    order.billing_name, order.billing_address = f"Buyer of {title}", "1 Main Street"
    document_id = invoices.issue_invoice(session, order)
    invitation_id = organisers.invite(session, organiser_id=organiser.id, email=f"invited-{slug}@example.com",
                                      role="door", actor_id=None)
    session.commit()
    side = Side(organiser, {"event_id": event.id, "tier_id": tier.id, "order_id": order.id, "code_id": code.id,
                           "entry_id": entry.id, "endpoint_id": endpoint.id, "webhook_id": endpoint.id,
                           "delivery_id": delivery.id, "message_id": message.id, "user_id": buyer.id,
                           "question_id": question.id, "document_id": document_id,
                           "invitation_id": invitation_id},
                (f"{title} Night", f"hooks.{slug}.example", f"buyer-{slug}@example.com"))
    for role in ("owner", "manager", "box_office", "door", "viewer"):
        member = factory.user(f"{role}-{slug}@example.com", name=f"{role} of {title}")
        session.add(OrganiserMember(organiser_id=organiser.id, user_id=member.id, role=role))
        session.commit()
        side.members[role] = member
        side.tokens[role] = api_tokens.create(session, user_id=member.id, is_admin=False, name=role,
                                              scope="admin", organiser_id=organiser.id).secret
        session.commit()
    assert session.scalar(select(ApiToken.role).where(ApiToken.user_id == side.members["door"].id)) == "door"
    return side
