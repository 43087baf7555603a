"""What reading the run history gives, wherever it is read from: the database or a server.

`RunHistory` is the small interface the `runs` and `logs` commands read through. The store
(`dagflow.store.Store`, on the database) and the HTTP client (`dagflow.client.Client`, through a
dagflow server) both implement it, and the runtime picks one from the settings once, so no
command asks where the history lives. `RunSummary` is one row of a listing: the run without its
task runs, and how many of them are in each state (counted by the database, not loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from dagflow.core.runs import FlowRun, LogEvent
from dagflow.core.states import StateType, Transition


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as a listing shows it: its record (no task runs) and its task runs' state counts."""

    run: FlowRun
    task_counts: dict[StateType, int] = field(default_factory=dict)

    @property
    def tasks(self) -> int:
        return sum(self.task_counts.values())

    @property
    def finished_tasks(self) -> int:
        return sum(n for state, n in self.task_counts.items() if state.is_final)

    @property
    def failed_tasks(self) -> int:
        return sum(n for state, n in self.task_counts.items() if state.is_failure)


@dataclass(frozen=True, slots=True)
class FlowSummary:
    """A flow the history knows: its last version, how many runs, and when it last ran."""

    name: str
    version: str | None
    created: float
    runs: int
    last_run: float | None


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """A recorded transition with its row id and whose it is (`task_key` None: the flow's)."""

    id: int
    task_key: str | None
    transition: Transition


@dataclass(frozen=True, slots=True)
class Setback:
    """A task attempt that failed (and was retried, or not), as `dagflow logs` shows it beside
    the run's log records; `traceback` is kept for a task run's last failure only."""

    key: str  # the task's logical key `task[n]`
    name: str | None
    state: StateType
    attempt: int
    time: float
    message: str
    error_type: str | None = None
    traceback: str | None = None


class RunHistory(Protocol):
    """Reading recorded runs; `ref` is a run id or a unique prefix of one."""

    def list_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """The newest runs first, optionally of one flow and/or in one state."""
        ...

    def get_flow_run(self, ref: str, *, task_history: bool = True) -> FlowRun:
        """One run with its task runs, their histories (unless `task_history=False`: a run of
        100,000 items has 300,000 steps) and a loader for its logs."""
        ...

    def resolve(self, ref: str) -> str:
        """The full id of the run `ref` names (`NotFound` if none or several)."""
        ...

    def run_state(self, run_id: str) -> StateType | None:
        """The run's current state, None if there is no such run."""
        ...

    def logs_after(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, LogEvent]]:
        """Log records after the one with id `after`, as (id, record), for following."""
        ...

    def setbacks(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, Setback]]:
        """Task retries and failures after history row `after`, as (row id, setback)."""
        ...

    def task_names(self, run_id: str) -> list[str]:
        """The names of a run's tasks, sorted."""
        ...

    def has_task(self, run_id: str, ref: str) -> bool:
        """Does the run have a task with this name or key?"""
        ...

    def request_cancel(self, ref: str) -> tuple[str, StateType]:
        """Cancel a run: its id, and its state after (CANCELLED, or CANCELLING until its driver
        stops it)."""
        ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a task run: from RUNNING to how it ended (`ended` None: still running)."""

    key: str
    name: str
    attempt: int
    started: float
    ended: float | None
    state: StateType  # RUNNING while it runs, then RETRYING, COMPLETED, FAILED, CRASHED, ...


@dataclass(frozen=True, slots=True)
class TaskGroup:
    """The task runs of one task name in a run: how many, in which states, from when to when."""

    name: str
    counts: dict[StateType, int]
    first_started: float | None
    last_ended: float | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def attempts_of(key: str, name: str, history: list[tuple[StateType, float, int]]) -> list[Attempt]:
    """The attempts a task run's history shows, as (to_state, time, attempt) in recorded order.

    An attempt starts at its RUNNING transition and ends at the next transition of the same
    attempt number (RETRYING, COMPLETED, FAILED, TIMED_OUT, CRASHED, CANCELLED, ...). A task that
    never ran (CACHED, UPSTREAM_FAILED, crashed before it started) has no attempt.
    """
    open_: dict[int, float] = {}
    done: list[Attempt] = []
    for state, time, number in history:
        if state is StateType.RUNNING:
            open_.setdefault(number, time)
        elif number in open_ and state is not StateType.PENDING:
            done.append(Attempt(key, name, number, open_.pop(number), time, state))
    running = [Attempt(key, name, n, t, None, StateType.RUNNING) for n, t in open_.items()]
    return sorted(done + running, key=lambda a: (a.attempt, a.started))
