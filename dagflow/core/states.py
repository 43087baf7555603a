"""The state machine shared by task runs and flow runs, and the records of its transitions.

It owns the transition table: `next_state(current, target)` either returns `target` or raises
`InvalidTransition`, so an illegal transition is a bug that surfaces at once. `Transition` is the
unit of history: one per state change, with its time, attempt and message, in the order applied.
Nothing here reads a clock; callers pass times in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dagflow.errors import InvalidTransition


class StateType(str, enum.Enum):
    """A run's state; the string value is what the store and the CLI show."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    COMPLETED = "COMPLETED"
    CACHED = "CACHED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_failure(self) -> bool:
        return self in FAILURE_STATES

    @property
    def is_success(self) -> bool:
        return self in (StateType.COMPLETED, StateType.CACHED)


S = StateType

FINAL_STATES = frozenset(
    {S.COMPLETED, S.CACHED, S.FAILED, S.TIMED_OUT, S.UPSTREAM_FAILED, S.CANCELLED, S.CRASHED}
)
FAILURE_STATES = frozenset({S.FAILED, S.TIMED_OUT, S.UPSTREAM_FAILED, S.CRASHED})

# Where each state may go. Final states go nowhere, except that a failed, crashed or cancelled
# run may be resumed (back to PENDING), a crashed task attempt may be run again (RUNNING, when a
# lost worker's task is rescheduled), and a completed task whose result was lost with its worker
# is computed again (back to PENDING, as a new attempt).
TRANSITIONS: dict[StateType, frozenset[StateType]] = {
    S.SCHEDULED: frozenset({S.PENDING, S.CANCELLED, S.CRASHED}),
    S.PENDING: frozenset(
        {
            S.PENDING,  # still waiting, now with a reason (a concurrency slot of its tag)
            S.RUNNING,
            S.CACHED,
            S.UPSTREAM_FAILED,
            S.CANCELLING,
            S.CANCELLED,
            S.CRASHED,
            S.FAILED,
        }
    ),
    S.RUNNING: frozenset(
        {
            S.COMPLETED,
            S.CACHED,
            S.FAILED,
            S.TIMED_OUT,
            S.RETRYING,
            S.CANCELLING,
            S.CANCELLED,
            S.CRASHED,
            S.PAUSED,
            S.UPSTREAM_FAILED,
        }
    ),
    S.RETRYING: frozenset({S.RUNNING, S.CANCELLING, S.CANCELLED, S.CRASHED, S.FAILED}),
    # rejected, or not approved in time (FAILED); the flow's own timeout (TIMED_OUT)
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLING, S.CANCELLED, S.CRASHED, S.FAILED, S.TIMED_OUT}),
    S.CANCELLING: frozenset({S.CANCELLED, S.CRASHED, S.COMPLETED, S.FAILED}),
    S.COMPLETED: frozenset({S.PENDING}),
    S.CACHED: frozenset({S.PENDING}),
    S.UPSTREAM_FAILED: frozenset({S.PENDING}),
    S.FAILED: frozenset({S.PENDING}),
    S.TIMED_OUT: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
    S.CRASHED: frozenset({S.PENDING, S.RUNNING, S.FAILED}),
}


def can_transition(current: StateType | None, target: StateType) -> bool:
    """True when `current -> target` is legal; `None` is a run not yet created."""
    if current is None:
        return target in (S.SCHEDULED, S.PENDING)
    return target in TRANSITIONS[current]


def next_state(current: StateType | None, target: StateType) -> StateType:
    """Return `target` if the move is legal, else raise `InvalidTransition`."""
    if not can_transition(current, target):
        raise InvalidTransition(f"illegal state transition {current} -> {target}")
    return target


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded state change of a task run or flow run."""

    from_state: StateType | None
    to_state: StateType
    time: float
    attempt: int = 0
    message: str = ""


def replay(history: list[Transition]) -> StateType | None:
    """The state a history ends in, checking every step against the table."""
    state: StateType | None = None
    for step in history:
        state = next_state(state, step.to_state)
    return state
