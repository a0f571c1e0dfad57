"""Column helpers shared by the models of every area."""
from __future__ import annotations

import enum

from sqlalchemy import Enum, func


def enum_column(cls: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint: easier to migrate than a PG enum."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=20,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def utcnow_sql():
    return func.now()
