"""Pauses for approval in the database: opened by a run's driver, answered from anywhere.

The driver (`dagflow.engine.pausing`) opens a pause (WAITING) and polls its row. An approver
(`dagflow runs approve`, the API) answers the run's open pause: an approval with its input is
SUBMITTED, a rejection REJECTED. Only the driver holds the input's model, so it validates a
submitted input and settles the row: APPROVED, or WAITING again with the errors (the approver,
polling the row, shows them). Each change is a conditional UPDATE on the status read, so an
answer racing with a timeout or another answer changes the row once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError

from dagflow.core.pauses import Pause, PauseStatus
from dagflow.core.states import StateType
from dagflow.errors import StateConflict, StoreError, UsageError
from dagflow.store.database import driver_reason
from dagflow.store.deployments import insert_for
from dagflow.store.schema import flow_runs, run_pauses

OPEN = (PauseStatus.WAITING.value, PauseStatus.SUBMITTED.value)
MAX_INPUT_CHARS = 1_000_000


def _pause(row: Row[Any]) -> Pause:
    m = row._mapping
    return Pause(
        run_id=m["run_id"],
        number=m["number"],
        reason=m["reason"],
        input_schema=json.loads(m["input_schema"]) if m["input_schema"] else None,
        created=m["created"],
        deadline=m["deadline"],
        status=PauseStatus(m["status"]),
        submitted=json.loads(m["submitted"]) if m["submitted"] is not None else None,
        by=m["answered_by"] or "",
        error=m["error"] or "",
        decided=m["decided"],
    )


@contextmanager
def _writing(engine: Engine, what: str) -> Iterator[Connection]:
    """A transaction whose driver errors become one-line `StoreError`s."""
    try:
        with engine.begin() as conn:
            yield conn
    except DBAPIError as exc:
        raise StoreError(f"{what} failed: {driver_reason(exc)}") from None


def open_pause(
    engine: Engine,
    run_id: str,
    number: int,
    reason: str,
    input_schema: dict[str, Any] | None,
    deadline: float | None,
    now: float,
) -> None:
    """Record pause `number` of `run_id` as WAITING (again, for a resumed or retried run)."""
    values = {
        "reason": reason,
        "input_schema": json.dumps(input_schema) if input_schema is not None else None,
        "created": now,
        "deadline": deadline,
        "status": PauseStatus.WAITING.value,
        "submitted": None,
        "answered_by": None,
        "error": None,
        "decided": None,
    }
    with _writing(engine, "recording the pause") as conn:
        stmt = insert_for(conn)(run_pauses).values(run_id=run_id, number=number, **values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[run_pauses.c.run_id, run_pauses.c.number], set_=values
            )
        )


def read(conn: Connection, run_id: str, number: int) -> Pause:
    row = conn.execute(
        select(run_pauses).where(run_pauses.c.run_id == run_id, run_pauses.c.number == number)
    ).one()
    return _pause(row)


def latest(conn: Connection, run_id: str) -> Pause | None:
    """The run's last pause, if it ever paused."""
    row = conn.execute(
        select(run_pauses)
        .where(run_pauses.c.run_id == run_id)
        .order_by(run_pauses.c.number.desc())
        .limit(1)
    ).one_or_none()
    return _pause(row) if row is not None else None


def settle(
    engine: Engine, run_id: str, number: int, status: PauseStatus, error: str, now: float
) -> bool:
    """The driver's word on a pause: APPROVED, TIMED_OUT, or WAITING again with `error` (the
    submitted input was refused). False when the row was not open (someone answered first)."""
    where = [run_pauses.c.run_id == run_id, run_pauses.c.number == number]
    if status is PauseStatus.WAITING:
        where.append(run_pauses.c.status == PauseStatus.SUBMITTED.value)
        values: dict[str, Any] = {"status": status.value, "error": error, "submitted": None}
    else:
        where.append(run_pauses.c.status.in_(OPEN))
        values = {"status": status.value, "decided": now, "error": error or None}
    with _writing(engine, "recording the pause's outcome") as conn:
        return bool(conn.execute(update(run_pauses).where(*where).values(**values)).rowcount)


def answer(
    engine: Engine,
    run_id: str,
    approve: bool,
    value: Any,
    by: str,
    reason: str,
    now: float,
) -> Pause:
    """Approve (with input `value`) or reject run `run_id`'s open pause; the pause after.

    `StateConflict` when the run is not paused or its pause was already answered for good.
    """
    if approve:
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"the approval's input is not JSON ({exc})") from None
        if len(text) > MAX_INPUT_CHARS:
            raise UsageError(f"the approval's input is longer than {MAX_INPUT_CHARS:,} characters")
    with _writing(engine, "recording the answer") as conn:
        state = conn.scalar(select(flow_runs.c.state).where(flow_runs.c.id == run_id))
        number = conn.scalar(
            select(func.max(run_pauses.c.number)).where(
                run_pauses.c.run_id == run_id, run_pauses.c.status.in_(OPEN)
            )
        )
        if state != StateType.PAUSED.value or number is None:
            raise StateConflict(
                f"flow run {run_id} is {state}, not paused for approval; nothing to "
                f"{'approve' if approve else 'reject'}"
            )
        if approve:
            values: dict[str, Any] = {
                "status": PauseStatus.SUBMITTED.value,
                "submitted": text,
                "answered_by": by,
                "error": None,
            }
        else:
            values = {
                "status": PauseStatus.REJECTED.value,
                "answered_by": by,
                "error": reason,
                "decided": now,
            }
        changed = conn.execute(
            update(run_pauses)
            .where(
                run_pauses.c.run_id == run_id,
                run_pauses.c.number == number,
                run_pauses.c.status.in_(OPEN),
            )
            .values(**values)
        ).rowcount
        if not changed:
            raise StateConflict(f"flow run {run_id}'s pause was answered meanwhile")
        return read(conn, run_id, number)
