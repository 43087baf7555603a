"""`FlowRun.running_time`: the time a run spent running, over its attempts and resumes."""

from __future__ import annotations

from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType, Transition

S = StateType


def run_with(*steps: tuple[StateType, float]) -> FlowRun:
    run = FlowRun("r", "f", started=steps[0][1], ended=steps[-1][1])
    previous = None
    for state, at in steps:
        run.history.append(Transition(previous, state, at))
        previous = state
    return run


def test_a_run_that_ran_once_ran_from_running_to_its_end() -> None:
    run = run_with((S.PENDING, 100.0), (S.RUNNING, 101.0), (S.COMPLETED, 104.5))
    assert run.running_time() == 3.5
    assert run.duration == 4.5  # the wall time, pending included


def test_the_time_between_a_crash_and_a_resume_is_not_running_time() -> None:
    run = run_with(
        (S.PENDING, 0.0),
        (S.RUNNING, 0.0),
        (S.CRASHED, 10.0),
        (S.PENDING, 3600.0),
        (S.RUNNING, 3600.0),
        (S.RETRYING, 3602.0),  # a flow retry's wait is part of running
        (S.RUNNING, 3603.0),
        (S.COMPLETED, 3605.0),
    )
    assert run.running_time() == 15.0
    assert run.duration == 3605.0


def test_a_running_run_counts_up_to_now_and_a_run_without_history_falls_back() -> None:
    run = run_with((S.PENDING, 0.0), (S.RUNNING, 1.0))
    run.ended = None
    assert run.running_time() is None
    assert run.running_time(now=5.0) == 4.0
    assert FlowRun("r", "f", started=1.0, ended=3.0).running_time() == 2.0
    never = run_with((S.PENDING, 0.0), (S.CANCELLED, 2.0))
    assert never.running_time() is None
