"""The verdict of a flow attempt, judged from its task runs (the run machine asks, `machine.py`).

A flow attempt completes unless a task failure went unhandled: neither seen by the body through
`.result()` nor passed on through `allow_failure`. Its message and root cause name the first
failure that was not only an upstream's; for a mapped task, how many of its items failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagflow.core.runs import TaskRun
from dagflow.core.states import StateType

S = StateType


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a flow attempt ended, judged from its task runs."""

    state: StateType
    message: str = ""
    root: TaskRun | None = None  # the failure the run reports


def _describe(root: TaskRun, task_runs: list[TaskRun]) -> str:
    """`task 'x' [x[0]] ended FAILED: KeyError: ...`; for a mapped task, how many of its items
    failed and the first of them."""
    if root.map_index is not None:
        items = [tr for tr in task_runs if tr.name == root.name and tr.map_index is not None]
        failed = sorted(
            (tr for tr in items if tr.state.is_failure and tr.state is not S.UPSTREAM_FAILED),
            key=lambda tr: tr.map_index or 0,
        )
        if len(items) > 1 and failed:
            first = failed[0]
            return (
                f"{len(failed)} of {len(items)} items of task {root.name!r} failed; first: "
                f"[{first.key}] ended {first.state}: {first.error}"
            )
    return f"task {root.name!r} [{root.key}] ended {root.state}: {root.error}"


def judge(this_attempt: list[TaskRun], handled: set[str]) -> Verdict:
    """How the flow attempt whose task runs are `this_attempt` ended.

    `handled` holds the Dask keys of failures that the body saw or passed on. A task that did
    not run because of a handled failure is still unhandled; the run then reports its root cause.
    """
    unhandled = [tr for tr in this_attempt if tr.state.is_failure and tr.dask_key not in handled]
    if not unhandled:
        return Verdict(S.COMPLETED)
    causes = [tr for tr in unhandled if tr.state is not S.UPSTREAM_FAILED] or [
        tr for tr in this_attempt if tr.state.is_failure and tr.state is not S.UPSTREAM_FAILED
    ]
    first = causes[0] if causes else unhandled[0]
    others = sum(1 for tr in unhandled if tr.name != first.name) if causes else 0
    more = f" (and {others} more failed tasks)" if others else ""
    return Verdict(S.FAILED, _describe(first, this_attempt) + more, first)


def failure_summary(this_attempt: list[TaskRun], root_key: str) -> tuple[str, TaskRun] | None:
    """The message naming the failed task run `root_key` (a logical key) and that task run;
    None if the attempt has no such failure."""
    root = next((tr for tr in this_attempt if tr.key == root_key), None)
    if root is None or not root.state.is_failure:
        return None
    return _describe(root, this_attempt), root
