"""Connections for statements that are a transaction of their own.

psycopg2 opens every transaction with its own BEGIN round trip, and the
request's session ends with a ROLLBACK or COMMIT round trip: three round
trips for a page that reads one row. A single statement needs no
transaction block: in autocommit it *is* its transaction, atomic as any.
The hot reads (polls, the hold and order pages) and the reserve statement
run this way; everything that changes more than one statement's worth
stays in an ordinary session transaction.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from webapp.extensions import db


@contextmanager
def single_statement() -> Iterator[Connection]:
    """A pooled connection in autocommit: each statement commits on its own.

    Autocommit is switched on the driver's connection directly and off again
    before it goes back to the pool: switching it through SQLAlchemy's
    isolation level would cost a `SET default_transaction_isolation` round
    trip at every return.
    """
    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        raw.autocommit = True
        try:
            yield connection
        finally:
            if not raw.closed:
                raw.autocommit = False
