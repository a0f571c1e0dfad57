"""The signed-in user comes from the signed session cookie, checked by one primary-key lookup."""
from __future__ import annotations

from sqlalchemy import event, update

from tests.support import login
from webapp.extensions import db
from webapp.models import User


def _statements(app, fn):
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = fn()
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    return response, seen


def test_logged_in_pages_check_the_session_with_one_lookup_that_also_reads_the_offers(app, client, factory):
    buyer = factory.user(name="Ada Lovelace")
    factory.ga_event(capacity=5)
    login(client, buyer.email)
    response, statements = _statements(app, lambda: client.get("/"))
    assert response.status_code == 200
    assert "Ada Lovelace" in response.get_data(as_text=True)  # the header still greets them
    # Not the ORM row: the session version and the admin flag by primary key,
    # once, with the offers banner's holds in the same statement.
    users = [" ".join(s.split()) for s in statements if "FROM users" in s]
    assert len(users) == 1 and users[0].startswith("SELECT session_version, is_admin, "), statements
    assert users[0].endswith("AS offers FROM users WHERE id = %(id)s")
    assert not [s for s in statements if "kind = 'offer'" in s and "FROM users" not in s], statements


def test_partials_check_the_session_with_a_two_column_lookup(app, client, factory):
    buyer = factory.user()
    event = factory.ga_event(capacity=5)
    login(client, buyer.email)
    response, statements = _statements(
        app, lambda: client.get(f"/events/{event.id}/tickets", headers={"HX-Request": "true"}))
    assert response.status_code == 200
    users = [" ".join(s.split()) for s in statements if "FROM users" in s]
    assert users == ["SELECT session_version, is_admin FROM users WHERE id = %(id)s"], statements


def test_anonymous_pages_do_not_query_users(app, client, factory):
    factory.ga_event(capacity=5)
    response, statements = _statements(app, lambda: client.get("/"))
    assert response.status_code == 200
    assert not [s for s in statements if "FROM users" in s], statements


def test_demoted_admin_loses_the_admin_pages_at_once(app, client, factory, session):
    admin = factory.user(is_admin=True)
    login(client, admin.email)
    assert client.get("/admin/").status_code == 200
    session.execute(update(User).where(User.id == admin.id).values(is_admin=False))
    session.commit()
    # Same session cookie, which still says "admin": the database decides.
    assert client.get("/admin/").status_code == 404


def test_a_buyer_cookie_cannot_reach_the_admin_pages(client, factory):
    buyer = factory.user()
    login(client, buyer.email)
    assert client.get("/admin/").status_code == 404
