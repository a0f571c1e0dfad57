"""Organisers and their teams: who acts for which organiser, with which role, over which ids.

A platform administrator (`users.is_admin`) creates organisers and may act
for any of them as its owner; everyone else acts only where they are a
member, with their member role, limited to the member's events if it has
some. What each role reaches is `CAPABILITIES`; the guards of the admin
areas (webapp/organiser_guard.py) ask `acting` and `owner_of` once per
request and nothing else.
"""
from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from webapp.models import Event, Organiser, OrganiserInvitation, OrganiserMember, Role, User
from webapp.services import audit, organiser_scope
from webapp.services.errors import InvalidRequest, NotFound
from webapp.services.messaging import links, outbox

# What each role may do. `view`: dashboards, lists and exports; `events`: events, tiers,
# layouts, codes, the waiting list and the waiting room; `orders`: find orders, resend
# tickets; `sell`: the box office's sales at the door, paid in person; `refund`: cancel and
# refund; `check_in`: the door; `settings`: webhooks, mail and the mail sender, the audit log,
# disputes, the team and its invitations.
CAPABILITIES: dict[str, frozenset[str]] = {
    Role.OWNER.value: frozenset({"view", "events", "orders", "sell", "refund", "check_in", "settings"}),
    Role.MANAGER.value: frozenset({"view", "events", "orders", "sell", "refund", "check_in"}),
    Role.BOX_OFFICE.value: frozenset({"orders", "sell", "check_in"}),
    Role.DOOR.value: frozenset({"check_in"}),
    Role.VIEWER.value: frozenset({"view"}),
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,59}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Acting:
    """Who a request acts for: the organiser, the role there, and the events it is limited to (None: all)."""

    organiser_id: int
    role: str
    event_ids: tuple[int, ...] | None
    platform_admin: bool
    organiser_name: str = ""

    def may(self, capability: str) -> bool:
        return capability in CAPABILITIES[self.role]

    def capped(self, role: str) -> Acting:
        """As this actor, but never more than `role` may (an API token made with that role); NotFound when
        the two roles share nothing to act with (the maker's role has changed since)."""
        mine, theirs = CAPABILITIES[self.role], CAPABILITIES.get(role, frozenset())
        if theirs <= mine:
            return Acting(self.organiser_id, role, self.event_ids, self.platform_admin, self.organiser_name)
        if mine <= theirs:
            return self
        raise NotFound(_("No such organiser."))

    def reaches_event(self, event_id: int | None) -> bool:
        return self.event_ids is None or event_id in self.event_ids


# One statement: the organiser asked for (or else the user's first), the user's membership
# there, and whether the organiser exists at all (for a platform administrator who is no member).
_ACTING = text("""
SELECT o.id AS organiser_id, o.name, m.role, m.event_ids
FROM organisers o
LEFT JOIN organiser_members m ON m.organiser_id = o.id AND m.user_id = :u
WHERE (m.user_id IS NOT NULL OR :admin)
ORDER BY (o.id = :o) DESC, (m.user_id IS NOT NULL) DESC, o.id
LIMIT 1
""")


def acting(session: Session, *, user_id: int, is_admin: bool, wanted: int | None) -> Acting | None:
    """What this user acts as, preferring the organiser they chose; None: no organiser at all."""
    row = session.execute(_ACTING, {"u": user_id, "admin": is_admin, "o": wanted or 0}).first()
    if row is None:
        return None
    if is_admin:
        # The platform administrator is every organiser's owner, whatever their membership says.
        return Acting(row.organiser_id, Role.OWNER.value, None, True, row.name)
    return Acting(row.organiser_id, row.role, tuple(row.event_ids) if row.event_ids is not None else None, False,
                  row.name)


# Whose row each id a URL names is: (organiser, event) for the id, or nothing when there is no such row.
_OWNERS = {
    "event_id": "SELECT organiser_id, id AS event_id FROM events WHERE id = :v",
    "invitation_id": "SELECT organiser_id, NULL::int AS event_id FROM organiser_invitations WHERE id = :v",
    "tier_id": "SELECT e.organiser_id, e.id AS event_id FROM tiers t JOIN events e ON e.id = t.event_id "
               "WHERE t.id = :v",
    "order_id": "SELECT e.organiser_id, e.id AS event_id FROM orders r JOIN events e ON e.id = r.event_id "
                "WHERE r.id = :v",
    "code_id": "SELECT e.organiser_id, e.id AS event_id FROM codes c JOIN events e ON e.id = c.event_id "
               "WHERE c.id = :v",
    "entry_id": "SELECT e.organiser_id, e.id AS event_id FROM waitlist_entries w "
                "JOIN events e ON e.id = w.event_id WHERE w.id = :v",
    "message_id": "SELECT e.organiser_id, e.id AS event_id FROM outbox_messages m "
                  "LEFT JOIN events e ON e.id = m.event_id WHERE m.id = :v",
    "question_id": "SELECT e.organiser_id, e.id AS event_id FROM questions q JOIN events e ON e.id = q.event_id "
                   "WHERE q.id = :v",
    "document_id": "SELECT e.organiser_id, e.id AS event_id FROM invoices i JOIN orders r ON r.id = i.order_id "
                   "JOIN events e ON e.id = r.event_id WHERE i.id = :v",
    "endpoint_id": "SELECT organiser_id, event_id FROM webhook_endpoints WHERE id = :v",
    "webhook_id": "SELECT organiser_id, event_id FROM webhook_endpoints WHERE id = :v",
    "delivery_id": "SELECT w.organiser_id, w.event_id FROM webhook_deliveries d "
                   "JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.id = :v",
}
_OWNER_STATEMENTS = {name: text(sql) for name, sql in _OWNERS.items()}
OWNED_ARGUMENTS = frozenset(_OWNERS)


def owner_of(session: Session, argument: str, value: int) -> tuple[int | None, int | None] | None:
    """(organiser id, event id) of the row a URL's id names; None: no such row."""
    row = session.execute(_OWNER_STATEMENTS[argument], {"v": value}).first()
    return None if row is None else (row.organiser_id, row.event_id)


def reaches(actor: Acting, session: Session, arguments: dict) -> bool:
    """Every id among a URL's arguments names a row of the actor's organiser (and events)."""
    for name, value in arguments.items():
        if name not in OWNED_ARGUMENTS:
            continue
        owner = owner_of(session, name, value)
        if owner is None:
            return False
        if owner[0] is None and actor.platform_admin:
            # A row of no organiser (mail to an account, say) is the platform administrator's.
            continue
        if owner[0] != actor.organiser_id:
            return False
        if owner[1] is not None and not actor.reaches_event(owner[1]):
            return False
        if owner[1] is None and actor.event_ids is not None:
            # Organiser-wide rows (an endpoint for all events) are not for members limited to some events.
            return False
    return True


def create(session: Session, *, slug: str, name: str, actor_id: int | None) -> Organiser:
    """A new organiser (a platform administrator's act). The caller commits."""
    slug, name = (slug or "").strip().lower(), (name or "").strip()
    if not _SLUG.match(slug):
        raise InvalidRequest(_("A slug is 2–60 lower-case letters, digits and hyphens, e.g. “city-hall”."))
    if not name or len(name) > 120:
        raise InvalidRequest(_("Name the organiser (up to 120 characters)."))
    if session.scalar(select(Organiser.id).where(Organiser.slug == slug)) is not None:
        raise InvalidRequest(_("The slug “%(slug)s” is taken.", slug=slug))
    organiser = Organiser(slug=slug, name=name)
    session.add(organiser)
    session.flush()
    audit.record(session, actor_id=actor_id, action="organiser.create", entity="organiser",
                 entity_id=organiser.id, after={"slug": slug, "name": name}, organiser_id=organiser.id)
    return organiser


def set_default_locale(session: Session, *, organiser_id: int, locale: str, languages: Collection[str],
                       actor_id: int | None) -> None:
    """The language the organiser's pages speak to a buyer who chose none (one of `languages`). The caller commits."""
    if locale not in languages:
        raise InvalidRequest(_("Choose one of the shop's languages: %(languages)s.", languages=", ".join(languages)))
    organiser = session.get(Organiser, organiser_id)
    if organiser is None:
        raise NotFound(_("No such organiser."))
    before = organiser.default_locale
    organiser.default_locale = locale
    session.flush()
    audit.record(session, actor_id=actor_id, action="organiser.language", entity="organiser", entity_id=organiser_id,
                 before={"default_locale": before}, after={"default_locale": locale}, organiser_id=organiser_id)


def switch(session: Session, *, actor_id: int, organiser_id: int) -> None:
    """Record that a platform administrator acts for another organiser from now on."""
    audit.record(session, actor_id=actor_id, action="organiser.switch", entity="organiser", entity_id=organiser_id,
                 organiser_id=organiser_id)


def set_member(session: Session, *, organiser_id: int, email: str, role: str,
               event_ids: list[int] | None = None, actor_id: int | None = None) -> OrganiserMember:
    """Give an existing account a role in the organiser (replacing the one it had). The caller commits."""
    if role not in CAPABILITIES:
        raise InvalidRequest(_("A role is owner, manager, box_office, door or viewer."))
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise InvalidRequest(_("No account has that e-mail address."))
    if event_ids is not None:
        event_ids = sorted(set(event_ids))
        known = set(session.scalars(select(Event.id).where(Event.organiser_id == organiser_id,
                                                           Event.id.in_(event_ids))))
        if not event_ids or known != set(event_ids):
            raise InvalidRequest(_("Pick the events from the list, or none for all of them."))
    member = session.get(OrganiserMember, (organiser_id, user.id))
    before = {"role": member.role, "event_ids": member.event_ids} if member else None
    if member is None:
        member = OrganiserMember(organiser_id=organiser_id, user_id=user.id, role=role, event_ids=event_ids)
        session.add(member)
    else:
        member.role, member.event_ids = role, event_ids
    session.flush()
    audit.record(session, actor_id=actor_id, action="member.set", entity="user", entity_id=user.id,
                 before=before, after={"role": role, "event_ids": event_ids}, organiser_id=organiser_id)
    return member


class InvitationGone(InvalidRequest):
    """A real invitation that no longer works: expired, withdrawn or used."""

    status_code = 410


def invite(session: Session, *, organiser_id: int, email: str, role: str, actor_id: int | None) -> int:
    """Mail an invitation to the team, with a link that expires (INVITATION_MAX_AGE_SECONDS); one pending per
    address, so a new one withdraws the last. Returns its id. The caller commits."""
    email = (email or "").strip().lower()
    if role not in CAPABILITIES:
        raise InvalidRequest(_("A role is owner, manager, box_office, door or viewer."))
    if not _EMAIL.match(email) or len(email) > 254:
        raise InvalidRequest(_("Enter the e-mail address to invite."))
    session.execute(update(OrganiserInvitation).where(
        OrganiserInvitation.organiser_id == organiser_id, OrganiserInvitation.email == email,
        OrganiserInvitation.accepted_at.is_(None), OrganiserInvitation.revoked_at.is_(None)
    ).values(revoked_at=func.now()))
    row = OrganiserInvitation(organiser_id=organiser_id, email=email, role=role, invited_by=actor_id)
    session.add(row)
    session.flush()
    token = links.invite_token(organiser_id=organiser_id, email=email, role=role, invitation_id=row.id)
    outbox.queue(session, template="organiser_invitation", recipient=email,
                 params={"organiser_id": organiser_id, "role": role, "token": token})
    audit.record(session, actor_id=actor_id, action="member.invite", entity="organiser", entity_id=organiser_id,
                 after={"email": email, "role": role, "invitation_id": row.id}, organiser_id=organiser_id)
    return row.id


def pending_invitations(session: Session, organiser_id: int, *, max_age: int) -> list[OrganiserInvitation]:
    """Invitations neither accepted, withdrawn nor expired, newest first (the team page)."""
    return list(session.scalars(
        select(OrganiserInvitation).where(
            OrganiserInvitation.organiser_id == organiser_id, OrganiserInvitation.accepted_at.is_(None),
            OrganiserInvitation.revoked_at.is_(None),
            OrganiserInvitation.created_at > func.now() - func.make_interval(0, 0, 0, 0, 0, 0, max_age))
        .order_by(OrganiserInvitation.id.desc())))


def revoke_invitation(session: Session, *, organiser_id: int, invitation_id: int, actor_id: int | None) -> str:
    """Withdraw a pending invitation: its link says so from now on. Returns the address. The caller commits."""
    email = session.scalar(
        update(OrganiserInvitation).where(
            OrganiserInvitation.id == invitation_id, OrganiserInvitation.organiser_id == organiser_id,
            OrganiserInvitation.accepted_at.is_(None), OrganiserInvitation.revoked_at.is_(None))
        .values(revoked_at=func.now()).returning(OrganiserInvitation.email))
    if email is None:
        raise NotFound(_("No such pending invitation."))
    audit.record(session, actor_id=actor_id, action="member.invitation_revoke", entity="organiser",
                 entity_id=organiser_id, after={"email": email, "invitation_id": invitation_id},
                 organiser_id=organiser_id)
    return email


@dataclass(frozen=True)
class Invitation:
    organiser: Organiser
    email: str
    role: str
    invitation_id: int


def read_invitation(session: Session, token: str, *, max_age: int) -> Invitation:
    """What an invitation link offers, or InvalidRequest (forged, expired, or for an organiser gone)."""
    try:
        data = links.read_invite_token(token, max_age=max_age)
    except SignatureExpired:
        raise InvitationGone(_("This invitation has expired: ask the organiser for a new one.")) from None
    except BadSignature:
        raise InvalidRequest(_("This invitation link is not valid.")) from None
    organiser = session.get(Organiser, data["o"])
    row = session.get(OrganiserInvitation, data["i"])
    if organiser is None or row is None or row.organiser_id != organiser.id:
        raise InvalidRequest(_("This invitation link is not valid."))
    if row.revoked_at is not None:
        raise InvitationGone(_("This invitation was withdrawn by the organiser: ask them for a new one if you"
                               " should still join."))
    if row.accepted_at is not None:
        raise InvitationGone(_("This invitation was already used."))
    return Invitation(organiser, data["e"], data["r"], row.id)


def accept_invitation(session: Session, token: str, *, user_id: int, max_age: int) -> Organiser:
    """Join the team as the invitation says, if it was sent to this account's address. The caller commits."""
    invitation = read_invitation(session, token, max_age=max_age)
    user = session.get(User, user_id)
    if user is None or user.email != invitation.email:
        raise InvalidRequest(_("This invitation is for %(email)s: log in with that address to accept it.",
                               email=invitation.email))
    set_member(session, organiser_id=invitation.organiser.id, email=user.email, role=invitation.role,
               actor_id=user_id)
    # Under the row's lock, so one link makes one member, once.
    used = session.execute(update(OrganiserInvitation).where(
        OrganiserInvitation.id == invitation.invitation_id, OrganiserInvitation.accepted_at.is_(None),
        OrganiserInvitation.revoked_at.is_(None)).values(accepted_at=func.now())
        .returning(OrganiserInvitation.id)).first()
    if used is None:
        raise InvitationGone(_("This invitation was withdrawn or used a moment ago."))
    return invitation.organiser


def remove_member(session: Session, *, organiser_id: int, user_id: int, actor_id: int | None) -> None:
    """The member leaves the team, and every session they have ends at once. The caller commits."""
    removed = session.execute(delete(OrganiserMember).where(OrganiserMember.organiser_id == organiser_id,
                                                            OrganiserMember.user_id == user_id)
                              .returning(OrganiserMember.user_id)).first()
    if not removed:
        raise NotFound(_("No such member."))
    # As at logout: the session cookies carry the version, and every one issued before stops working.
    session.execute(update(User).where(User.id == user_id).values(session_version=User.session_version + 1))
    audit.record(session, actor_id=actor_id, action="member.remove", entity="user", entity_id=user_id,
                 organiser_id=organiser_id)


def members(session: Session, organiser_id: int) -> list[tuple[User, OrganiserMember]]:
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(User, OrganiserMember).join(OrganiserMember, OrganiserMember.user_id == User.id)
        .where(OrganiserMember.organiser_id == organiser_id).order_by(User.name)).all()]


def memberships(session: Session, *, user_id: int, is_admin: bool) -> list[Organiser]:
    """The organisers a user may act for (every one, for a platform administrator), by name."""
    query = select(Organiser).order_by(Organiser.name)
    if not is_admin:
        query = query.join(OrganiserMember, OrganiserMember.organiser_id == Organiser.id).where(
            OrganiserMember.user_id == user_id)
    return list(session.scalars(query.execution_options(**{organiser_scope.ACROSS_ORGANISERS: True})).all())


def all_organisers(session: Session) -> list[Organiser]:
    return list(session.scalars(select(Organiser).order_by(Organiser.name)).all())


def by_slug(session: Session, slug: str) -> Organiser | None:
    return session.scalar(select(Organiser).where(Organiser.slug == slug))


def by_id(session: Session, organiser_id: int) -> Organiser | None:
    return session.get(Organiser, organiser_id)


def set_mail_sender(session: Session, *, organiser_id: int, from_name: str, reply_to: str,
                    actor_id: int | None) -> Organiser:
    """The display name and Reply-To of the organiser's mail (empty: the install's). The caller commits."""
    from_name, reply_to = (from_name or "").strip(), (reply_to or "").strip().lower()
    if len(from_name) > 120 or any(c in from_name for c in "\r\n<>\"@"):
        raise InvalidRequest(_("The sender's name is up to 120 characters, without quotes, @ or angle brackets."))
    if reply_to and (not _EMAIL.match(reply_to) or len(reply_to) > 254):
        raise InvalidRequest(_("The Reply-To address does not look right."))
    organiser = session.get(Organiser, organiser_id)
    if organiser is None:
        raise NotFound(_("No such organiser."))
    before = {"mail_from_name": organiser.mail_from_name, "mail_reply_to": organiser.mail_reply_to}
    organiser.mail_from_name, organiser.mail_reply_to = from_name or None, reply_to or None
    session.flush()
    audit.record(session, actor_id=actor_id, action="organiser.mail_sender", entity="organiser",
                 entity_id=organiser_id, before=before,
                 after={"mail_from_name": organiser.mail_from_name, "mail_reply_to": organiser.mail_reply_to},
                 organiser_id=organiser_id)
    return organiser
