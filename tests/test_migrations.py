"""The migrations both ways: from an empty database to head, back down to 0005
(the first revision with SQL functions), and up again, landing on the same
schema each time; on the way every file of migrations/sql is loaded."""
from __future__ import annotations

from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from config import TestConfig
from migrations import functions
from webapp import create_app
from webapp.extensions import db

SCHEMA = {
    "functions": """
        SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'""",
    "triggers": "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal",
    "columns": """
        SELECT table_name || '.' || column_name,
               concat_ws(' ', data_type, is_nullable, column_default) FROM information_schema.columns
        WHERE table_schema = 'public'""",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": """
        SELECT conrelid::regclass || '.' || conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace""",
}


def schema() -> dict[str, dict[str, str]]:
    with db.engine.connect() as conn:
        return {kind: dict(conn.execute(text(query)).all()) for kind, query in SCHEMA.items()}


def differences(found: dict[str, dict[str, str]], expected: dict[str, dict[str, str]]) -> list[str]:
    return sorted(f"{kind} {name}" for kind in SCHEMA for name in found[kind].keys() | expected[kind].keys()
                  if found[kind].get(name) != expected[kind].get(name))


def test_upgrade_from_empty_down_to_0005_and_up_again(empty_database, monkeypatch):
    loaded = set()
    read = functions._read

    def recording(path, name):
        loaded.add(path)
        return read(path, name)

    monkeypatch.setattr(functions, "_read", recording)
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database}, config_class=TestConfig)
    with app.app_context():
        try:
            upgrade(revision="0005")
            at_0005 = schema()
            upgrade()
            at_head = schema()
            head = ScriptDirectory.from_config(app.extensions["migrate"].migrate.get_config()).get_current_head()
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head

            downgrade(revision="0005")
            assert differences(schema(), at_0005) == []
            upgrade()
            assert differences(schema(), at_head) == []
        finally:
            db.engine.dispose()
    assert at_0005["functions"] and at_head["functions"] != at_0005["functions"]
    # A frozen copy that no migration loads is dead text; a current file that
    # none loads is not what the database runs.
    assert loaded == set(functions.SQL.glob("*.sql")) | set(functions.HISTORY.glob("*.sql"))
