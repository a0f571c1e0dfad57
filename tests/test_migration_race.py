"""Three containers starting together on an empty database: all of them come up,
the schema is migrated once, the demo data is seeded once."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import create_engine, text

from webapp.launcher import ROOT

pytestmark = pytest.mark.slow

# Each starts migrating at the same instant, whatever its import time was.
RACER = textwrap.dedent("""
    import os, sys, time
    from webapp.launcher import migrate_and_seed
    time.sleep(max(0.0, float(os.environ["START_AT"]) - time.time()))
    migrate_and_seed(seed=True)
""")


def test_three_concurrent_upgrades_on_an_empty_database_all_succeed(empty_database):
    env = dict(os.environ, DATABASE_URL=empty_database, SECRET_KEY="race-secret", LOG_LEVEL="WARNING",
               START_AT=str(time.time() + 4))
    racers = [subprocess.Popen([sys.executable, "-c", RACER], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [racer.communicate(timeout=120)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0], "\n----\n".join(outputs)
    assert sum("Demo data created." in output for output in outputs) == 1
    engine = create_engine(empty_database)
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        demo_users = conn.execute(text("SELECT count(*) FROM users")).scalar_one()
    engine.dispose()
    heads = subprocess.run([sys.executable, "-c", "from alembic.script import ScriptDirectory; from alembic.config "
                            "import Config; c = Config(); c.set_main_option('script_location', 'migrations'); "
                            "print(ScriptDirectory.from_config(c).get_current_head())"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    # The demo's accounts once each: buyer, admin, manager, door, box office.
    assert version == [heads] and demo_users == 5
