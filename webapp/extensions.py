"""Unbound extension objects; `create_app` wires them to an app."""
import time

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from limits.storage import MemoryStorage
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Named constraints keep Alembic migrations reproducible.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
class WorkerMemoryStorage(MemoryStorage):
    """`limits`' in-process counters, without a timer thread per hit.

    The stock memory storage starts a short-lived thread to drop expired
    counters whenever the last one has finished: under steady traffic, a
    thread per rate-limited request, about 0.45 ms of CPU on a reserve (a
    third of the floor request). Counters already expire when read; this
    drops the stale ones inline, at most once a second. Used when no
    REDIS_URL is set, i.e. the limits are per worker process (see README).
    """

    STORAGE_SCHEME = ["worker-memory"]
    SWEEP_EVERY_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the base class's private hook
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_EVERY_SECONDS
            self._MemoryStorage__expire_events()


limiter = Limiter(key_func=get_remote_address)
