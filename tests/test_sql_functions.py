"""The files in migrations/sql are the truth about the database's functions.

Each tb_* function of a database migrated to head has one file there, and
running that file's CREATE OR REPLACE changes nothing: PostgreSQL itself
renders the function before and after (`pg_get_functiondef`), so a file
edited without a migration to load it, or a migration that loaded something
else, fails here.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from migrations import functions
from webapp.extensions import db

FILES = sorted(functions.SQL.glob("*.sql"))
VERSIONS = functions.SQL.parent / "versions"

DEFINITIONS = text("""
    SELECT pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname = :name ORDER BY p.oid""")


def test_there_are_files():
    assert len(FILES) > 10


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_running_the_file_changes_nothing(app_ctx, path):
    with db.engine.connect() as conn:
        live = conn.execute(DEFINITIONS, {"name": path.stem}).scalars().all()
        # A migration runs the file through op.execute, so through text() too.
        conn.execute(text(path.read_text(encoding="utf-8")))
        replaced = conn.execute(DEFINITIONS, {"name": path.stem}).scalars().all()
        conn.rollback()
    assert live, f"no function {path.stem} in the database"
    # Another signature would have added an overload instead of replacing the live one.
    assert replaced == live


def test_every_function_has_a_file_and_every_file_a_function(app_ctx):
    live = set(db.session.execute(text(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public' AND p.proname LIKE 'tb\\_%'")).scalars())
    assert live == {path.stem for path in FILES}


def test_frozen_copies_are_named_after_a_revision_and_a_function():
    revisions = {re.match(r"(\d{4})_", path.name).group(1) for path in VERSIONS.glob("*.py")}
    for path in sorted(functions.HISTORY.glob("*")):
        name, revision, suffix = path.name.split(".")
        assert suffix == "sql" and revision in revisions, path
        assert functions.frozen(name, revision)


def test_no_migration_loads_another():
    for path in sorted(VERSIONS.glob("*.py")):
        source = path.read_text()
        assert "importlib" not in source and "spec_from_file_location" not in source, path
        others = {other.stem for other in VERSIONS.glob("*.py")} - {path.stem}
        assert not any(other in source for other in others), path


def test_a_current_file_edited_without_a_new_migration_is_refused(tmp_path, monkeypatch):
    # The migration that loads tb_hold_seats names the digest of the text it was written for.
    original = (functions.SQL / "tb_hold_seats.sql").read_text()
    edited = tmp_path / "tb_hold_seats.sql"
    edited.write_text(original.replace("$$", "$$ -- an edit\n", 1))
    monkeypatch.setattr(functions, "SQL", tmp_path)
    digest = functions.hashlib.sha256(original.encode()).hexdigest()[:12]
    with pytest.raises(ValueError, match="tb_hold_seats.sql changed"):
        functions.current("tb_hold_seats", digest)
    edited.write_text(original)
    assert functions.current("tb_hold_seats", digest) == original
