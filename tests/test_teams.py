"""Teams, the rest: pending invitations listed and withdrawn (the link then says so), and the organiser's own
mail sender (display name and Reply-To, the envelope still the install's)."""
from __future__ import annotations

import re
from email.utils import parseaddr

import pytest
from flask import g
from sqlalchemy import select

from tests.organiser_world import Side, make_side
from tests.support import login
from webapp.models import AuditLog, Organiser, OrganiserInvitation, OrganiserMember, OutboxMessage
from webapp.services.messaging import mail, outbox


@pytest.fixture
def world(factory) -> tuple[Side, Side]:
    return make_side(factory, "alpha", "Alpha"), make_side(factory, "bravo", "Bravo")


def _csrf(client, path: str = "/admin/team") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def _link_of(session, email: str) -> str:
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)
                              .order_by(OutboxMessage.id.desc())).first()
    link = re.search(r"http\S+/account/invitations/\S+", message.body).group(0)
    return link[link.index("/account/"):]


def test_pending_invitations_are_listed_and_a_withdrawn_link_says_so(client, factory, world, session):
    alpha, bravo = world
    login(client, alpha.members["owner"].email)
    csrf = _csrf(client)
    assert client.post("/admin/team/invite", data={"email": "late@example.com", "role": "door",
                                                   "csrf_token": csrf}).status_code == 303
    first = _link_of(session, "late@example.com")
    # Invited again: the newer link replaces the older, which is withdrawn.
    client.post("/admin/team/invite", data={"email": "late@example.com", "role": "box_office", "csrf_token": csrf})
    second = _link_of(session, "late@example.com")
    page = client.get("/admin/team").get_data(as_text=True)
    pending = page[page.index('id="pending-invitations"'):page.index('id="mail-sender"')]
    assert pending.count("<td>late@example.com</td>") == 1 and "box office" in pending
    assert "invited-alpha@example.com" in pending and "invited-bravo@example.com" not in pending

    row = session.scalars(select(OrganiserInvitation).where(OrganiserInvitation.email == "late@example.com",
                                                            OrganiserInvitation.revoked_at.is_(None))).one()
    assert client.post(f"/admin/team/invitations/{row.id}/revoke", data={"csrf_token": csrf}).status_code == 303
    page = client.get("/admin/team").get_data(as_text=True)
    assert "late@example.com" not in page[page.index('id="pending-invitations"'):page.index('id="mail-sender"')]
    # Another organiser's invitation cannot be withdrawn from here, nor one already withdrawn.
    assert client.post(f"/admin/team/invitations/{bravo.ids['invitation_id']}/revoke",
                       data={"csrf_token": csrf}).status_code == 404
    assert client.post(f"/admin/team/invitations/{row.id}/revoke", data={"csrf_token": csrf}).status_code == 404
    assert "member.invitation_revoke" in session.scalars(select(AuditLog.action)).all()
    client.post("/logout", data={"csrf_token": csrf})

    invited = factory.user("late@example.com")
    g.pop("_login_user", None)
    csrf = login(client, invited.email)
    for link in (first, second):
        withdrawn = client.get(link)
        assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.get_data(as_text=True)
        assert client.post(link, data={"csrf_token": csrf}).status_code == 410
    assert session.get(OrganiserMember, (alpha.organiser.id, invited.id)) is None
    forged = client.get(second[:-3] + "xyz")
    assert forged.status_code == 400 and "not valid" in forged.get_data(as_text=True)


def test_an_invitation_link_works_once(client, factory, world, session):
    alpha, _ = world
    invited = factory.user("invited-alpha@example.com")
    csrf = login(client, invited.email)
    link = _link_of(session, "invited-alpha@example.com")
    assert client.post(link, data={"csrf_token": csrf}).status_code == 303
    assert session.get(OrganiserMember, (alpha.organiser.id, invited.id)).role == "door"
    again = client.get(link)
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)


@pytest.mark.parametrize("role", ["manager", "box_office", "door", "viewer"])
def test_only_owners_withdraw_invitations_and_set_the_mail_sender(client, world, role):
    alpha, _ = world
    csrf = login(client, alpha.members[role].email)
    assert client.post(f"/admin/team/invitations/{alpha.ids['invitation_id']}/revoke",
                       data={"csrf_token": csrf}).status_code == 403
    assert client.post("/admin/team/mail-sender", data={"csrf_token": csrf, "mail_from_name": "X"}).status_code == 403


def test_mail_about_an_organisers_events_goes_out_under_its_name(app, client, world, session):
    alpha, bravo = world
    login(client, alpha.members["owner"].email)
    csrf = _csrf(client)
    assert client.post("/admin/team/mail-sender", data={"csrf_token": csrf, "mail_from_name": "Alpha <evil>",
                                                        "mail_reply_to": ""}).status_code == 400
    assert client.post("/admin/team/mail-sender", data={"csrf_token": csrf, "mail_from_name": "Alpha",
                                                        "mail_reply_to": "not-an-address"}).status_code == 400
    saved = client.post("/admin/team/mail-sender", data={"csrf_token": csrf, "mail_from_name": "Alpha Box Office",
                                                         "mail_reply_to": "Hello@Alpha.example"})
    assert saved.status_code == 303
    session.expire_all()
    assert (session.get(Organiser, alpha.organiser.id).mail_reply_to) == "hello@alpha.example"

    install = parseaddr(app.config["MAIL_FROM"])[1]
    ours = outbox.queue(session, template="order_confirmation", recipient="buyer-alpha@example.com",
                        event_id=alpha.ids["event_id"], params={"order_id": alpha.ids["order_id"]})
    theirs = outbox.queue(session, template="order_confirmation", recipient="buyer-bravo@example.com",
                          event_id=bravo.ids["event_id"], params={"order_id": bravo.ids["order_id"]})
    invitation = session.scalars(select(OutboxMessage).where(
        OutboxMessage.recipient == "invited-alpha@example.com")).one()
    session.commit()
    built = {name: mail.build(message, [], mail.sender_of(session, message))
             for name, message in (("ours", ours), ("theirs", theirs), ("invitation", invitation))}
    assert parseaddr(built["ours"]["From"]) == ("Alpha Box Office", install)
    assert built["ours"]["Reply-To"] == "hello@alpha.example"
    assert parseaddr(built["invitation"]["From"]) == ("Alpha Box Office", install)
    assert built["theirs"]["From"] == app.config["MAIL_FROM"] and built["theirs"]["Reply-To"] is None
    assert session.scalar(select(AuditLog.after).where(AuditLog.action == "organiser.mail_sender")) == {
        "mail_from_name": "Alpha Box Office", "mail_reply_to": "hello@alpha.example"}
