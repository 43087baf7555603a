"""A flow run paused for approval: what it waits for, and what an approver's answer can be.

A pause is numbered within its run (the body's first `dagflow.pause(...)` is 1). It is WAITING
until someone answers: an approval with input is SUBMITTED, and the run's driver, which holds
the input's model, validates it: APPROVED (the flow goes on with the input), or back to WAITING
with the validation errors named (the run stays paused). A rejection is REJECTED at once; a
pause nobody answers in time is TIMED_OUT (or APPROVED, if the flow asked for that).

`PauseBoard` is what the engine needs of the place pauses are kept (the run history, through
`dagflow.store`), so the engine never imports the store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol


class PauseStatus(str, enum.Enum):
    WAITING = "waiting"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"

    @property
    def is_open(self) -> bool:
        return self in (PauseStatus.WAITING, PauseStatus.SUBMITTED)


@dataclass(frozen=True, slots=True)
class Pause:
    """One pause of a run, as recorded."""

    run_id: str
    number: int
    reason: str
    input_schema: dict[str, Any] | None  # JSON schema of the input the flow expects, if any
    created: float
    deadline: float | None
    status: PauseStatus
    submitted: Any = None  # the input an approver gave (JSON), while SUBMITTED
    by: str = ""  # who answered (the CLI, the API)
    error: str = ""  # why the last input was refused, while WAITING again
    decided: float | None = None


class PauseBoard(Protocol):
    """Where a driver records its run's pauses and reads the answers."""

    def open_pause(
        self,
        run_id: str,
        number: int,
        reason: str,
        input_schema: dict[str, Any] | None,
        deadline: float | None,
    ) -> None: ...

    def read_pause(self, run_id: str, number: int) -> Pause: ...

    def settle_pause(
        self, run_id: str, number: int, status: PauseStatus, error: str = ""
    ) -> None: ...
