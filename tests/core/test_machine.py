"""The run machine, without a cluster: reports in, recorded state events out, in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagflow import allow_failure, task
from dagflow.core.graph import RunGraph
from dagflow.core.machine import WORKER_LOST, Outcome, RunState
from dagflow.core.reports import LogReport, Report, ResultInfo, log_wire, parse_report
from dagflow.core.runs import FlowRun, LogEvent, StateEvent
from dagflow.core.states import StateType, replay
from dagflow.errors import InvalidTransition

S = StateType
RUN_ID = "ab12cd34" + "0" * 24
TOKEN = "ab12cd341"


@task
def load(x: int) -> int:
    return x


@task
def combine(xs: list[int]) -> int:
    return sum(xs)


class Resolver:
    """The graph only needs the run id from its resolver to build calls."""

    run_id = RUN_ID

    def resolve(self, future: Any, timeout: float | None) -> Any:
        raise AssertionError("not used: nothing is resolved in these tests")

    def wait_for_future(self, future: Any, timeout: float | None) -> None:
        raise AssertionError("not used")

    def future_state(self, future: Any) -> StateType:
        return S.PENDING


class Run:
    """A run machine with one wave submitted: `load.map(range(n))`, then `combine` of them all."""

    def __init__(self, n: int = 3, *, soft: bool = False) -> None:
        self.state = RunState(FlowRun(RUN_ID, "etl"))
        self.state.attempt = 1
        self.state.flow_transition(S.PENDING, 0.0)
        self.state.flow_transition(S.RUNNING, 0.0)
        graph = RunGraph(Resolver(), TOKEN)
        items = graph.add_map(load, (list(range(n)),), {})
        upstream = [allow_failure(f) for f in items] if soft else items
        graph.add_call(combine, (upstream,), {})
        self.keys = [f"load-{TOKEN}[{i}]" for i in range(n)]
        self.events = self.state.submitted(graph.take_pending(), 1.0)

    def report(self, key: str, state: StateType, t: float, attempt: int = 1, worker: str = "w1",
               **extra: Any) -> Outcome:  # fmt: skip
        name, _, index = key.rpartition("[")
        r = Report(name, int(index[:-1]), state.value, t, attempt, worker, **extra)
        return self.state.reports([r])

    def task(self, key: str) -> Any:
        tr = self.state.task_run(key)
        assert tr is not None
        return tr

    def history(self, key: str) -> list[tuple[StateType, int]]:
        return [(step.to_state, step.attempt) for step in self.task(key).history]


def states(outcome: Outcome) -> list[tuple[str | None, StateType, int]]:
    return [
        (ev.task_key, ev.to_state, ev.attempt) for ev in outcome.events if type(ev) is StateEvent
    ]


# -- submission and the plain path ------------------------------------------------------------


def test_a_submitted_wave_is_pending_one_event_per_task() -> None:
    run = Run(3)
    assert [(ev.task_key, ev.to_state) for ev in run.events] == [
        (k, S.PENDING) for k in [*run.keys, f"combine-{TOKEN}[0]"]
    ]
    assert run.task(run.keys[2]).map_index == 2
    assert run.task(f"combine-{TOKEN}[0]").map_index is None


def test_running_then_completed_is_recorded_and_the_task_finishes() -> None:
    run = Run(1)
    key = run.keys[0]
    assert states(run.report(key, S.RUNNING, 2.0)) == [(key, S.RUNNING, 1)]
    done = run.report(key, S.COMPLETED, 3.0, result=ResultInfo("file:///r", 10, "json", None))
    assert states(done) == [(key, S.COMPLETED, 1)]
    assert [(tr.key, tr.dask_key) for tr in done.finished] == [("load[0]", key)]
    tr = run.task(key)
    assert (tr.state, tr.started, tr.ended, tr.worker) == (S.COMPLETED, 2.0, 3.0, "w1")
    assert (tr.result_location, tr.result_size, tr.result_serializer) == ("file:///r", 10, "json")


def test_a_report_delivered_twice_is_recorded_once() -> None:
    run = Run(1)
    key = run.keys[0]
    run.report(key, S.RUNNING, 2.0)
    assert run.report(key, S.RUNNING, 2.0).events == []
    run.report(key, S.COMPLETED, 3.0)
    again = run.report(key, S.COMPLETED, 3.0)
    assert again.events == [] and again.finished == []
    assert run.history(key) == [(S.PENDING, 0), (S.RUNNING, 1), (S.COMPLETED, 1)]


def test_reports_of_keys_never_submitted_are_ignored() -> None:
    run = Run(1)
    assert run.report(f"load-{TOKEN}[99]", S.RUNNING, 2.0).events == []
    assert run.report("load-ffffffff1[0]", S.RUNNING, 2.0).events == []


def test_retries_are_attempts_of_one_task_run() -> None:
    run = Run(1)
    key = run.keys[0]
    run.report(key, S.RUNNING, 1.0, 1)
    run.report(key, S.RETRYING, 1.1, 1, message="OSError: x (retry 1/2 in 0.00s)")
    run.report(key, S.RUNNING, 1.2, 2)
    run.report(key, S.RETRYING, 1.3, 2)
    run.report(key, S.RUNNING, 1.4, 3)
    run.report(key, S.COMPLETED, 1.5, 3)
    assert run.history(key)[-1] == (S.COMPLETED, 3)
    assert run.task(key).attempts == 3
    assert replay(run.task(key).history) is S.COMPLETED


def test_a_timed_out_task_fails_with_its_error() -> None:
    run = Run(1)
    key = run.keys[0]
    run.report(key, S.RUNNING, 1.0)
    out = run.report(key, S.TIMED_OUT, 2.0, message="TaskTimeout: late", error_type="TaskTimeout")
    tr = run.task(key)
    assert (tr.state, tr.error_type, tr.error) == (S.TIMED_OUT, "TaskTimeout", "TaskTimeout: late")
    assert out.finished == [tr]


def test_cached_and_upstream_failed_tasks_never_ran() -> None:
    run = Run(2)
    run.report(run.keys[0], S.CACHED, 1.0, 0)
    run.report(run.keys[1], S.UPSTREAM_FAILED, 1.0, 0, error_type="UpstreamFailed")
    assert run.history(run.keys[0]) == [(S.PENDING, 0), (S.CACHED, 0)]
    assert run.task(run.keys[1]).state is S.UPSTREAM_FAILED


def test_an_impossible_report_is_a_bug_and_raises() -> None:
    run = Run(1)
    with pytest.raises(InvalidTransition, match="PENDING -> RETRYING"):
        run.report(run.keys[0], S.RETRYING, 1.0)


def test_log_reports_become_log_events_of_the_task() -> None:
    run = Run(1)
    out = run.state.reports([LogReport(f"load-{TOKEN}", 0, 20, 1.5, "hello", "w1")])
    [ev] = out.events
    assert type(ev) is LogEvent
    assert (ev.task_key, ev.task_name, ev.message, ev.worker) == (
        run.keys[0],
        "load",
        "hello",
        "w1",
    )
    assert run.state.flow_run.log_records == [ev]


def test_reports_survive_their_wire_form() -> None:
    report = Report(
        "load-x1", 3, "COMPLETED", 1.0, 1, "w", "", None, None, ResultInfo("u", 1, "json", None)
    )
    assert parse_report([*report[:-1], list(report.result or ())]) == report
    log = LogReport("load-x1", 3, 20, 1.0, "m", "w")
    assert parse_report(list(log_wire(log))) == log


# -- lost workers ------------------------------------------------------------------------------


def test_a_worker_lost_mid_task_leaves_a_crashed_attempt_then_the_rerun() -> None:
    run = Run(1)
    key = run.keys[0]
    run.report(key, S.RUNNING, 1.0, worker="w1")
    lost = run.state.worker_lost("w1", [key], 2.0)
    assert states(lost) == [(key, S.CRASHED, 1)]
    assert lost.finished == []  # Dask runs it again: not the task's end
    assert lost.events[0].error_type == WORKER_LOST
    assert run.report(key, S.RUNNING, 1.5, worker="w1").events == []  # a late word from w1
    run.report(key, S.RUNNING, 3.0, 1, worker="w2")
    done = run.report(key, S.COMPLETED, 4.0, 1, worker="w2")
    assert run.history(key) == [
        (S.PENDING, 0),
        (S.RUNNING, 1),
        (S.CRASHED, 1),
        (S.RUNNING, 2),
        (S.COMPLETED, 2),
    ]
    assert done.finished == [run.task(key)]


def test_running_again_elsewhere_means_the_first_worker_was_lost() -> None:
    run = Run(1)
    key = run.keys[0]
    run.report(key, S.RUNNING, 1.0, worker="w1")
    out = run.report(key, S.RUNNING, 2.0, worker="w2")
    assert states(out) == [(key, S.CRASHED, 1), (key, S.RUNNING, 2)]
    assert "worker w1 was lost" in out.events[0].message


def test_a_worker_lost_before_the_first_report_crashes_that_attempt() -> None:
    run = Run(1)
    key = run.keys[0]
    assert states(run.state.worker_lost("w1", [key], 2.0)) == [(key, S.CRASHED, 1)]
    run.report(key, S.RUNNING, 3.0, worker="w2")
    assert run.history(key)[-1] == (S.RUNNING, 2)


def test_a_lost_worker_does_not_touch_finished_tasks_or_other_workers_tasks() -> None:
    run = Run(2)
    run.report(run.keys[0], S.RUNNING, 1.0, worker="w1")
    run.report(run.keys[0], S.COMPLETED, 1.5, worker="w1")
    run.report(run.keys[1], S.RUNNING, 1.0, worker="w2")
    assert run.state.worker_lost("w1", run.keys, 2.0).events == []


def test_a_task_that_keeps_killing_workers_fails_in_dask() -> None:
    run = Run(1)
    key, total = run.keys[0], f"combine-{TOKEN}[0]"
    run.report(key, S.RUNNING, 1.0, worker="w1")
    run.state.worker_lost("w1", [key], 2.0)
    failed = run.state.future_erred(key, key, "KilledWorker", "KilledWorker: boom", 3.0)
    assert states(failed) == [(key, S.FAILED, 1)]
    down = run.state.future_erred(total, key, "KilledWorker", "KilledWorker: boom", 3.0)
    assert states(down) == [(total, S.UPSTREAM_FAILED, 0)]
    assert "upstream load[0] failed" in down.events[0].message  # users see logical keys


# -- cancellation, lost reports ------------------------------------------------------------------


def test_cancellation_settles_what_has_no_end_and_later_reports_are_dropped() -> None:
    run = Run(2)
    run.report(run.keys[0], S.RUNNING, 1.0)
    run.report(run.keys[1], S.RUNNING, 1.0)
    run.report(run.keys[1], S.COMPLETED, 1.5)
    settled = run.state.settle([*run.keys, f"combine-{TOKEN}[0]"], S.CANCELLED, "cancelled", 2.0)
    assert {(k, s) for k, s, _ in states(settled)} == {
        (run.keys[0], S.CANCELLED),
        (f"combine-{TOKEN}[0]", S.CANCELLED),
    }
    assert run.report(run.keys[0], S.COMPLETED, 3.0).events == []


def test_a_task_whose_reports_were_lost_is_read_back_legally() -> None:
    run = Run(1)
    key = run.keys[0]
    out = run.state.read_back(key, S.COMPLETED, "state read from the cluster", None, 5.0)
    assert [s for _, s, _ in states(out)] == [S.RUNNING, S.COMPLETED]
    assert replay(run.task(key).history) is S.COMPLETED


def test_a_result_lost_after_the_attempt_closed_is_not_computed_again_for_it() -> None:
    run = Run(2)
    for key in run.keys:
        run.report(key, S.RUNNING, 1.0, worker="w1")
        run.report(key, S.COMPLETED, 1.5, worker="w1")
    # before the close: the loss reopens the task, the attempt waits for it again
    reopened = run.state.recomputed("w1", [run.keys[0]], 2.0)
    assert [tr.dask_key for tr in reopened.reopened] == [run.keys[0]]
    assert run.task(run.keys[0]).state is S.PENDING
    run.report(run.keys[0], S.RUNNING, 2.5, worker="w2")
    run.report(run.keys[0], S.COMPLETED, 3.0, worker="w2")
    run.state.future_erred(f"combine-{TOKEN}[0]", None, "KilledWorker", "KilledWorker: x", 3.0)
    assert states(run.state.close(1, 4.0)) == []  # every task had its end
    # after it: a late loss leaves the recorded end as it is (no PENDING after the run's end)
    late = run.state.recomputed("w2", run.keys, 5.0)
    assert late.events == [] and late.reopened == []
    assert [run.task(k).state for k in run.keys] == [S.COMPLETED, S.COMPLETED]


def test_closing_an_attempt_ends_what_has_no_end_crashed_saying_why() -> None:
    run = Run(3)
    done, running, lost = run.keys
    run.report(done, S.RUNNING, 1.0)
    run.report(done, S.COMPLETED, 1.5)
    run.state.recomputed("w1", [done], 2.0)  # reopened, and the attempt ended before its rerun
    run.report(running, S.RUNNING, 1.0)
    run.report(lost, S.RUNNING, 1.0, worker="w1")
    run.state.worker_lost("w1", [lost], 2.0)  # CRASHED, waiting for Dask to run it again
    out = run.state.close(1, 3.0)
    assert {(k, s) for k, s, _ in states(out)} == {
        (done, S.CRASHED),
        (running, S.CRASHED),
        (f"combine-{TOKEN}[0]", S.CRASHED),
    }
    assert "the flow attempt ended before" in (run.task(running).error or "")
    assert "its result was lost with worker w1" in (run.task(done).history[-1].message)
    assert all(tr.state.is_final for tr in run.state.flow_run.all_task_runs.values())
    # the lost attempt's rerun reports after the close are too late: its CRASHED end stands
    assert run.report(lost, S.RUNNING, 4.0, worker="w2").events == []
    assert run.task(lost).state is S.CRASHED


def test_a_new_flow_attempt_takes_losses_of_its_own_tasks_again() -> None:
    run = Run(1)
    run.report(run.keys[0], S.RUNNING, 1.0)
    run.report(run.keys[0], S.COMPLETED, 1.5)
    run.state.close(1, 2.0)
    run.state.attempt = 2
    graph = RunGraph(Resolver(), "tok2")
    graph.add_map(load, ([0],), {})
    run.state.submitted(graph.take_pending(), 3.0)
    key = "load-tok2[0]"
    assert run.state.close(1, 3.2).events == []  # an old attempt's end leaves the new one's alone
    assert run.task(key).state is S.PENDING
    run.report(key, S.RUNNING, 3.5)
    run.report(key, S.COMPLETED, 4.0)
    again = run.state.recomputed("w1", [run.keys[0], key], 5.0)
    assert [tr.dask_key for tr in again.reopened] == [key]


# -- the verdict and the flow's own states --------------------------------------------------------


def test_the_verdict_is_completed_when_every_failure_was_handled() -> None:
    run = Run(2)
    for key in run.keys:
        run.report(key, S.RUNNING, 1.0)
    run.report(run.keys[0], S.COMPLETED, 2.0)
    run.report(run.keys[1], S.FAILED, 2.0, message="ValueError: no", error_type="ValueError")
    unhandled = run.state.verdict(TOKEN, set())
    assert unhandled.state is S.FAILED and unhandled.root is run.task(run.keys[1])
    assert "ValueError: no" in unhandled.message
    assert run.state.verdict(TOKEN, {run.keys[1]}).state is S.COMPLETED


def test_the_verdict_names_the_root_cause_not_the_upstream_victim() -> None:
    run = Run(1)
    key, total = run.keys[0], f"combine-{TOKEN}[0]"
    run.report(key, S.RUNNING, 1.0)
    run.report(key, S.FAILED, 2.0, message="OSError: disk", error_type="OSError")
    run.report(total, S.UPSTREAM_FAILED, 2.1, 0, error_type="UpstreamFailed")
    verdict = run.state.verdict(TOKEN, {key})  # the body saw the failure; the victim did not
    assert verdict.state is S.FAILED and verdict.root is run.task(key)
    assert verdict.message.startswith("task 'load' [load[0]] ended FAILED: OSError: disk")


def test_the_verdict_only_judges_its_own_attempt() -> None:
    run = Run(1)
    run.report(run.keys[0], S.RUNNING, 1.0)
    run.report(run.keys[0], S.FAILED, 2.0)
    assert run.state.verdict("ab12cd342", set()).state is S.COMPLETED
    assert run.state.verdict("ab12cd3411", set()).state is S.COMPLETED


def test_flow_transitions_follow_the_table_and_cancelling_ends_cancelled() -> None:
    run = Run(1)
    with pytest.raises(InvalidTransition):
        run.state.flow_transition(S.PENDING, 1.0)
    run.state.flow_transition(S.CANCELLING, 1.0, "Ctrl-C")
    ev = run.state.flow_transition(S.FAILED, 2.0, "late failure")
    assert ev.to_state is S.CANCELLED and run.state.flow_run.state is S.CANCELLED


def test_a_resumed_run_starts_from_its_recorded_end_and_continues_attempts() -> None:
    state = RunState(FlowRun(RUN_ID, "etl"), prior_attempts={"load[0]": 2})
    state.resumed(S.CRASHED, 1, 0.0)
    state.attempt += 1
    state.flow_transition(S.PENDING, 1.0)
    assert state.flow_run.history[0].to_state is S.CRASHED
    graph = RunGraph(Resolver(), "ab12cd342")
    graph.add_map(load, ([0],), {})
    state.submitted(graph.take_pending(), 1.0)
    state.reports([Report("load-ab12cd342", 0, "RUNNING", 2.0, 1, "w")])
    tr = state.task_run("load-ab12cd342[0]")
    assert tr is not None and tr.attempts == 3


# -- properties ------------------------------------------------------------------------------------

PATHS = [
    [S.RUNNING, S.COMPLETED],
    [S.RUNNING, S.RETRYING, S.RUNNING, S.FAILED],
    [S.RUNNING, S.RETRYING, S.RUNNING, S.RETRYING, S.RUNNING, S.COMPLETED],
    [S.RUNNING, S.TIMED_OUT],
    [S.CACHED],
    [S.UPSTREAM_FAILED],
]


def _reports(path: list[StateType]) -> list[Report]:
    out, attempt = [], 0
    for i, state in enumerate(path):
        if state is S.RUNNING:
            attempt += 1
        n = attempt if state not in (S.CACHED, S.UPSTREAM_FAILED) else 0
        out.append(Report(f"load-{TOKEN}", 0, state.value, float(i), n, "w1"))
    return out


@given(
    path=st.sampled_from(PATHS),
    repeats=st.lists(st.integers(min_value=0, max_value=5), max_size=6),
    batch=st.integers(min_value=1, max_value=4),
)
def test_duplicated_deliveries_record_each_transition_once(
    path: list[StateType], repeats: list[int], batch: int
) -> None:
    run = Run(1)
    reports = _reports(path)
    stream: list[Report] = []
    for i, report in enumerate(reports):
        stream.append(report)
        stream.extend(reports[j] for j in repeats if j <= i)  # re-deliver earlier reports
    recorded: list[tuple[StateType, int]] = []
    for start in range(0, len(stream), batch):
        out = run.state.reports(stream[start : start + batch])
        recorded += [(ev.to_state, ev.attempt) for ev in out.events if type(ev) is StateEvent]
    assert recorded == [(S(r.state), r.attempt) for r in reports]
    assert run.task(run.keys[0]).state is path[-1]
    assert replay(run.task(run.keys[0]).history) is path[-1]
