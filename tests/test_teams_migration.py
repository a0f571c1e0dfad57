"""Migration 0029: door staff become door members of the event's organiser, and nothing else is lost."""
from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from config import TestConfig
from tests.factories import Factory
from webapp import create_app
from webapp.extensions import db
from webapp.models import Organiser, OrganiserMember

TEAM = ("SELECT o.slug, u.email, m.role || ':' || coalesce(array_to_string(m.event_ids, ','), 'all')"
        " FROM organiser_members m JOIN users u ON u.id = m.user_id JOIN organisers o ON o.id = m.organiser_id")


def test_door_assignments_become_door_members_and_come_back_on_downgrade(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database}, config_class=TestConfig)
    with app.app_context():
        try:
            upgrade()
            make = Factory(db.session)
            other = Organiser(slug="other", name="Other")
            db.session.add(other)
            db.session.flush()
            first, second = make.ga_event(capacity=2), make.ga_event(capacity=2)
            elsewhere = make.ga_event(capacity=2, organiser_id=other.id)
            make.order(first)
            admin = make.user("boss@example.com", is_admin=True)
            limited = make.user("limited@example.com")   # a door member for `first` already
            manager = make.user("manager@example.com")   # a wider role: kept as it is
            fresh = make.user("fresh@example.com")       # door staff at two organisers' events
            db.session.add_all([
                OrganiserMember(organiser_id=first.organiser_id, user_id=limited.id, role="door",
                                event_ids=[first.id]),
                OrganiserMember(organiser_id=first.organiser_id, user_id=manager.id, role="manager"),
            ])
            db.session.commit()
            ids = dict(first=first.id, second=second.id, elsewhere=elsewhere.id, admin=admin.id, limited=limited.id,
                       manager=manager.id, fresh=fresh.id)
            db.session.remove()
            downgrade(revision="0026")
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO door_assignments (event_id, user_id) VALUES"
                                  " (:second, :admin), (:second, :limited), (:first, :manager), (:first, :fresh),"
                                  " (:second, :fresh), (:elsewhere, :fresh)"), ids)
                orders_before = conn.execute(text("SELECT count(*), sum(total_minor) FROM orders")).one()

            upgrade()
            with db.engine.connect() as conn:
                team = {(slug, email): what for slug, email, what in conn.execute(text(TEAM)).all()}
                assert team == {
                    ("default", "limited@example.com"): f"door:{ids['first']},{ids['second']}",
                    ("default", "manager@example.com"): "manager:all",
                    ("default", "fresh@example.com"): f"door:{ids['first']},{ids['second']}",
                    ("other", "fresh@example.com"): f"door:{ids['elsewhere']}",
                }
                assert conn.execute(text("SELECT to_regclass('door_assignments')")).scalar() is None
                assert tuple(conn.execute(text("SELECT count(*), sum(total_minor) FROM orders")).one()) \
                    == tuple(orders_before)
                assert conn.execute(text("SELECT DISTINCT channel FROM orders")).scalars().all() == ["online"]

            downgrade(revision="0026")
            with db.engine.connect() as conn:
                back = set(conn.execute(text("SELECT event_id, user_id FROM door_assignments")).all())
            assert (ids["second"], ids["fresh"]) in back and (ids["elsewhere"], ids["fresh"]) in back
            assert (ids["first"], ids["limited"]) in back
            upgrade()
        finally:
            db.session.remove()
            db.engine.dispose()
