"""Variables in the database: named JSON values, set (upsert), read, listed, removed.

A value is stored as its JSON text; it is checked to be JSON (finite numbers, at most
`MAX_VALUE_CHARS` characters of it) before it is written, so what a run reads back is what was
set. Names follow `dagflow.core.config.check_name`. A run reads every variable once, when it
starts (`all_values`): one query per run, never one per task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.config import check_name
from dagflow.errors import NotFound, StoreError, UsageError
from dagflow.store.database import driver_reason, upsert_named
from dagflow.store.schema import variables

MAX_VALUE_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable and when it was last set."""

    name: str
    value: Any
    created: float
    updated: float


def not_found(name: str) -> NotFound:
    return NotFound(
        f"no variable named {name!r} (set one with: dagflow variables set {name} VALUE)"
    )


def encode_value(name: str, value: Any) -> str:
    """`value` as the JSON text stored, or a `UsageError` naming the variable."""
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"variable {name!r}: its value is not JSON ({exc})") from None
    if len(text) > MAX_VALUE_CHARS:
        raise UsageError(
            f"variable {name!r}: its value is {len(text):,} characters of JSON, "
            f"more than the {MAX_VALUE_CHARS:,} allowed"
        )
    return text


def checked_name(name: str) -> str:
    try:
        return check_name("variable", name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def set_value(engine: Engine, name: str, value: Any, now: float) -> None:
    text = encode_value(checked_name(name), value)
    try:
        with engine.begin() as conn:
            upsert_named(conn, variables, "name", name, {"value": text}, now)
    except DBAPIError as exc:
        raise StoreError(f"setting variable {name!r} failed: {driver_reason(exc)}") from None


def get(conn: Connection, name: str) -> Variable:
    row = conn.execute(select(variables).where(variables.c.name == name)).one_or_none()
    if row is None:
        raise not_found(name)
    return Variable(row.name, json.loads(row.value), row.created, row.updated)


def listed(conn: Connection) -> list[Variable]:
    rows = conn.execute(select(variables).order_by(variables.c.name))
    return [Variable(r.name, json.loads(r.value), r.created, r.updated) for r in rows]


def all_values(conn: Connection) -> dict[str, Any]:
    """Every variable's value, by name: what a run reads when it starts."""
    rows = conn.execute(select(variables.c.name, variables.c.value))
    return {name: json.loads(value) for name, value in rows}


def remove(engine: Engine, name: str) -> None:
    try:
        with engine.begin() as conn:
            gone = conn.execute(delete(variables).where(variables.c.name == name)).rowcount
    except DBAPIError as exc:
        raise StoreError(f"removing variable {name!r} failed: {driver_reason(exc)}") from None
    if gone != 1:
        raise not_found(name)
