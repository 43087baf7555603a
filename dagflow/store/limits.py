"""Concurrency limits by tag in the database: at most N task runs carrying a tag at once.

The database only says what the limits are; a run reads them when it starts (`all_limits`, one
query) and its task calls enforce them on the cluster with Dask semaphores
(`dagflow.engine.slots`). A tag follows `dagflow.core.config.check_name`; N is at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.config import check_name
from dagflow.errors import NotFound, StoreError, UsageError
from dagflow.store.database import driver_reason, upsert_named
from dagflow.store.schema import concurrency_limits as limits

MAX_SLOTS = 1_000_000


@dataclass(frozen=True, slots=True)
class ConcurrencyLimit:
    tag: str
    slots: int
    created: float
    updated: float


def checked(tag: str, slots: object) -> int:
    try:
        check_name("tag", tag)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if isinstance(slots, bool) or not isinstance(slots, int) or not 1 <= slots <= MAX_SLOTS:
        raise UsageError(
            f"concurrency limit of tag {tag!r} must be a whole number from 1 to {MAX_SLOTS:,}, "
            f"got {slots!r}"
        )
    return slots


def set_limit(engine: Engine, tag: str, slots: int, now: float) -> None:
    checked(tag, slots)
    try:
        with engine.begin() as conn:
            upsert_named(conn, limits, "tag", tag, {"slots": slots}, now)
    except DBAPIError as exc:
        raise StoreError(f"setting the limit of tag {tag!r} failed: {driver_reason(exc)}") from None


def listed(conn: Connection) -> list[ConcurrencyLimit]:
    rows = conn.execute(select(limits).order_by(limits.c.tag))
    return [ConcurrencyLimit(r.tag, r.slots, r.created, r.updated) for r in rows]


def all_limits(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(limits.c.tag, limits.c.slots))
    return {str(tag): int(slots) for tag, slots in rows}


def remove(engine: Engine, tag: str) -> None:
    try:
        with engine.begin() as conn:
            gone = conn.execute(delete(limits).where(limits.c.tag == tag)).rowcount
    except DBAPIError as exc:
        raise StoreError(
            f"removing the limit of tag {tag!r} failed: {driver_reason(exc)}"
        ) from None
    if gone != 1:
        raise NotFound(f"no concurrency limit on tag {tag!r} (see: dagflow concurrency ls)")
