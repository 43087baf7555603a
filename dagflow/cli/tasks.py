"""A run's tasks as `dagflow runs show` lists them: failures first, mapped tasks grouped.

Pure functions over `TaskRun` values (no printing): `rows` orders and groups a run's task runs,
`attempts` reads one task run's attempts from its history, `find` names a task from what a user
typed. A mapped task is grouped by its `name` and `map_index` (never by parsing keys): one row
`work[0..299]` with its states counted (`295 COMPLETED, 5 FAILED`). The keys shown are
`TaskRun.key` as the store gives them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dagflow.core.runs import TaskRun
from dagflow.core.states import StateType
from dagflow.errors import UsageError

S = StateType
ROOT_FAILURES = frozenset({S.FAILED, S.TIMED_OUT, S.CRASHED})
SHOWN_FAILURES = 20  # failed tasks listed one by one above the groups (all with --all)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the task table: a task run, or a group of a mapped task's runs."""

    label: str
    states: tuple[tuple[StateType, int], ...]  # counts, most common first; one entry for a task
    attempts: str
    started: float | None
    duration: float | None
    error: str  # the (first) failure, "" if none
    error_type: str | None = None
    more_errors: int = 0  # other failures in a group
    task: TaskRun | None = None  # the task run, for a row of one

    @property
    def failed(self) -> bool:
        return any(state.is_failure for state, _ in self.states)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a task run, from its history: when it ran, and how it ended."""

    number: int
    started: float
    state: StateType  # how it ended (RETRYING: failed and retried), or RUNNING if it is running
    ended: float | None
    message: str


def failure_rank(task: TaskRun) -> int:
    """0 for a failure of the task's own (failed, timed out, crashed), 1 for an upstream's."""
    return 0 if task.state in ROOT_FAILURES else 1


def single(task: TaskRun) -> Row:
    return Row(
        task.key,
        ((task.state, 1),),
        str(task.attempts),
        task.started,
        task.duration,
        task.error or "" if task.state.is_failure else "",
        task.error_type if task.state.is_failure else None,
        task=task,
    )


def group(name: str, members: Sequence[TaskRun]) -> Row:
    """The row of a mapped task's runs: its index range, states counted, first failure."""
    indices = [t.map_index for t in members if t.map_index is not None]
    counts: dict[StateType, int] = {}
    for t in members:
        counts[t.state] = counts.get(t.state, 0) + 1
    states = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0].value)))
    failures = sorted((t for t in members if t.state.is_failure), key=failure_rank)
    starts = [t.started for t in members if t.started is not None]
    ends = [t.ended for t in members if t.ended is not None]
    span = max(ends) - min(starts) if starts and ends and len(ends) == len(members) else None
    low, high = min(t.attempts for t in members), max(t.attempts for t in members)
    first = failures[0] if failures else None
    return Row(
        f"{name}[{min(indices)}..{max(indices)}]",
        states,
        str(low) if low == high else f"{low}-{high}",
        min(starts) if starts else None,
        span,
        first.error or "" if first else "",
        first.error_type if first else None,
        max(0, len(failures) - 1),
    )


def rows(
    tasks: Iterable[TaskRun],
    states: frozenset[StateType] | None = None,
    grouped: bool = True,
) -> tuple[list[Row], int]:
    """The table of a run's tasks, and how many failed tasks were left out of the first part.

    Without `states`: the failed tasks one by one (their own failures before upstream ones, at
    most `SHOWN_FAILURES` when grouped), then every task by start time with each mapped task as
    one group (a single task already listed as a failure is not listed again; a mapped one is
    also counted in its group). With `states`: only tasks in those states, failures first.
    `grouped=False` lists every task run on its own.
    """
    chosen = sorted((t for t in tasks if states is None or t.state in states), key=_by_start)
    if states is not None:
        chosen.sort(key=lambda t: (not t.state.is_failure, failure_rank(t)))  # stable
        return (_grouped(chosen) if grouped else [single(t) for t in chosen]), 0
    failed = sorted((t for t in chosen if t.state.is_failure), key=failure_rank)
    shown = failed[:SHOWN_FAILURES] if grouped else failed
    listed = {id(t) for t in shown}
    if not grouped:
        return [single(t) for t in [*shown, *(t for t in chosen if id(t) not in listed)]], 0
    rest = [t for t in chosen if id(t) not in listed or t.map_index is not None]
    return [single(t) for t in shown] + _grouped(rest), len(failed) - len(shown)


def _grouped(tasks: Sequence[TaskRun]) -> list[Row]:
    """Rows in the order given, each mapped task as one group where its first run stands."""
    mapped: dict[str, list[TaskRun]] = {}
    order: list[TaskRun | str] = []
    for t in tasks:
        if t.map_index is None:
            order.append(t)
            continue
        if t.name not in mapped:
            order.append(t.name)
            mapped[t.name] = []
        mapped[t.name].append(t)
    return [single(item) if isinstance(item, TaskRun) else group(item, mapped[item])
            for item in order]  # fmt: skip


def _by_start(task: TaskRun) -> tuple[float, str]:
    return (task.started if task.started is not None else float("inf"), task.key)


def attempts(task: TaskRun) -> list[Attempt]:
    """The task run's attempts, read from its history: each RUNNING until the next transition.

    A transition that ends no attempt (PENDING, CACHED, UPSTREAM_FAILED, a cancellation before
    the task ran) is an attempt numbered 0 that took no time."""
    out: list[Attempt] = []
    running: tuple[int, float] | None = None
    for step in task.history:
        if running is not None:
            number, started = running
            out.append(Attempt(number, started, step.to_state, step.time, step.message))
            running = None
        if step.to_state is S.RUNNING:
            running = (step.attempt, step.time)
        elif step.to_state is not S.PENDING and (step.from_state in (None, S.PENDING)):
            out.append(Attempt(0, step.time, step.to_state, step.time, step.message))
    if running is not None:
        out.append(Attempt(running[0], running[1], S.RUNNING, None, ""))
    return out


def find(tasks: Sequence[TaskRun], ref: str, run_id: str) -> TaskRun:
    """The task run a user named: its key, `name[index]`, or the name of a task run once."""
    ref = ref.strip()
    for t in tasks:
        if t.key == ref:
            return t
    name, bracket, rest = ref.partition("[")
    if bracket and rest.endswith("]") and rest[:-1].isdigit():
        index = int(rest[:-1])
        matches = [t for t in tasks if t.name == name and t.map_index == index]
        if not matches and index == 0:
            matches = [t for t in tasks if t.name == name and t.map_index is None]
    else:
        matches = [t for t in tasks if t.name == ref]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        keys = ", ".join(t.key for t in matches[:3])
        raise UsageError(
            f"task {ref!r} names {len(matches)} task runs of run {run_id} ({keys}, ...); "
            "give one key"
        )
    names = sorted({t.name for t in tasks})
    known = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none"
    raise UsageError(f"no task {ref!r} in run {run_id}; its tasks: {known}")
