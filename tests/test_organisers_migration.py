"""Migration 0025 moves today's data into one default organiser and loses nothing."""
from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from config import TestConfig
from tests.factories import Factory
from webapp import create_app
from webapp.extensions import db
from webapp.models import WebhookEndpoint
from webapp.services.people import api_tokens

COUNTED = ("users", "events", "tiers", "units", "holds", "orders", "tickets", "payment_attempts",
           "waitlist_entries", "codes", "webhook_endpoints", "webhook_deliveries", "audit_log", "api_tokens",
           "door_assignments", "outbox_messages")


def counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        found = {table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in COUNTED}
        found["units by status"] = dict(conn.execute(text("SELECT status, count(*) FROM units GROUP BY 1")).all())
        found["orders total"] = conn.execute(text("SELECT coalesce(sum(total_minor), 0) FROM orders")).scalar_one()
    return found


def test_upgrading_a_database_in_use_keeps_every_row_and_gives_it_to_the_default_organiser(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database}, config_class=TestConfig)
    with app.app_context():
        try:
            # A database in use, taken down to the previous head with its rows in it.
            upgrade()
            make = Factory(db.session)
            admin = make.user("boss@example.com", is_admin=True)
            door = make.user("door@example.com")
            event = make.ga_event(capacity=3)
            seated = make.seated_event(rows=2, seats_per_row=3)
            make.order(event)
            make.order(seated, seats=make.seat_ids(seated)[:2])
            make.hold(event)
            make.hold(event)
            make.waitlist_entry(event)
            db.session.add(WebhookEndpoint(organiser_id=1, url="https://hooks.example.com/x",
                                           event_types=["order.confirmed"], secret="whsec_x"))
            api_tokens.create(db.session, user_id=admin.id, is_admin=True, name="script", scope="admin")
            db.session.commit()
            seated_id, door_id = seated.id, door.id
            db.session.remove()
            downgrade(revision="0022")
            # Door staff as 0011 kept them (0029 made them members and dropped the table).
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO door_assignments (event_id, user_id) VALUES (:e, :u)"),
                             {"e": seated_id, "u": door_id})
            before = counts()
            assert before["orders"] == 2 and before["holds"] >= 4 and before["waitlist_entries"] == 1

            upgrade(revision="0026")
            assert counts() == before
            with db.engine.connect() as conn:
                owners = conn.execute(text(
                    "SELECT (SELECT count(*) FROM organisers), "
                    "(SELECT count(DISTINCT organiser_id) FROM events), "
                    "(SELECT count(*) FROM events WHERE organiser_id = o.id), "
                    "(SELECT count(*) FROM webhook_endpoints WHERE organiser_id = o.id) "
                    "FROM organisers o WHERE slug = 'default'")).one()
                assert tuple(owners) == (1, 1, 2, 1)
                team = dict(conn.execute(text(
                    "SELECT u.email, m.role || ':' || coalesce(array_to_string(m.event_ids, ','), 'all') "
                    "FROM organiser_members m JOIN users u ON u.id = m.user_id")).all())
                assert team == {"boss@example.com": "owner:all", "door@example.com": f"door:{seated_id}"}
            with db.engine.connect() as conn:
                token = conn.execute(text("SELECT organiser_id, role FROM api_tokens")).one()
            assert tuple(token) == (1, "owner")
            upgrade()
        finally:
            db.session.remove()
            db.engine.dispose()
