"""Flows end to end on the in-process `local-threads` cluster: the engine's observable behaviour."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dask.utils import key_split

from dagflow import (
    FlowRun,
    FutureMisuse,
    ParameterError,
    StateType,
    TaskFailed,
    UpstreamFailed,
    allow_failure,
    flow,
    get_run_logger,
    task,
    unmapped,
)
from dagflow.errors import DefinitionError, FlowFailed, FlowTimeout

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("threads_cluster")]

S = StateType


class Journal:
    """Side effects of tasks, kept in a file: tasks are pickled, so closures hold copies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def write(self, entry: str) -> None:
        with self.path.open("a") as fh:
            fh.write(entry + "\n")

    def entries(self) -> list[str]:
        return self.path.read_text().splitlines()

    def count(self, entry: str) -> int:
        return Counter(self.entries())[entry]


JOURNAL: list[Journal] = []


@pytest.fixture(autouse=True)
def journal(tmp_path: Path) -> Journal:
    JOURNAL[:] = [Journal(tmp_path / "journal.txt")]
    return JOURNAL[0]


@task
def inc(x: int) -> int:
    JOURNAL[0].write("inc")
    return x + 1


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def fail(message: str = "boom") -> int:
    raise ValueError(message)


@task
def describe(value: Any) -> str:
    return f"{type(value).__name__}:{value}"


def states(run: FlowRun, name: str) -> list[StateType]:
    return [tr.state for tr in run.tasks_named(name)]


def test_flow_returns_value_and_records_every_task() -> None:
    @flow
    def pipeline(n: int = 3) -> int:
        return total(inc.map(range(n)))

    run = pipeline.run(n=4)
    assert run.state is S.COMPLETED
    assert run.result() == 1 + 2 + 3 + 4
    assert states(run, "inc") == [S.COMPLETED] * 4
    assert states(run, "total") == [S.COMPLETED]
    for tr in run.task_runs.values():
        assert [t.to_state for t in tr.history] == [S.PENDING, S.RUNNING, S.COMPLETED]
        assert tr.started is not None
        assert tr.ended is not None
        assert tr.ended >= tr.started
    assert [t.to_state for t in run.history][-1] is S.COMPLETED
    assert pipeline(n=2) == 3


def test_keys_group_by_task_name_in_the_dashboard() -> None:
    @flow
    def keyed() -> list[Any]:
        futures = inc.map([1, 2])
        return [f.key for f in futures]

    first, second = keyed.run().result()
    assert first[0] == second[0]
    assert (first[1], second[1]) == (0, 1)
    assert key_split(first) == "inc"
    other = keyed.run().result()
    assert other[0][0] != first[0], "keys of two runs must never collide"


def test_map_with_unmapped_nested_futures_and_kwargs() -> None:
    @flow
    def shapes() -> Any:
        base = inc(10)  # 11
        mapped = add.map([1, 2, 3], y=unmapped(base))
        nested = describe({"a": [base, mapped[0]], "b": (mapped[1],)})
        over_futures = inc.map(mapped)
        return base, mapped, nested, over_futures

    base, mapped, nested, over = shapes()
    assert base == 11
    assert mapped == [12, 13, 14]
    assert nested == "dict:{'a': [11, 12], 'b': (13,)}"
    assert over == [13, 14, 15]


def test_result_submits_waves_without_recomputing() -> None:
    @flow
    def branching() -> int:
        first = inc(1)
        if first.result() == 2:  # wave 1
            second = inc(first)  # wave 2 refers to the earlier future
            return second.result() + first.result()
        return -1

    assert branching() == 5
    assert JOURNAL[0].count("inc") == 2


def test_map_over_a_future_fans_out_over_its_value() -> None:
    @task
    def items(n: int) -> list[int]:
        return list(range(n))

    @flow
    def dynamic(n: int) -> list[int]:
        return inc.map(items(n))

    assert dynamic(3) == [1, 2, 3]


def test_wait_for_orders_tasks_without_passing_data(journal: Journal) -> None:
    @task
    def first() -> None:
        time.sleep(0.2)
        journal.write("first")

    @task
    def second() -> None:
        journal.write("second")

    @flow
    def ordered() -> None:
        done = first()
        second(wait_for=[done])

    assert ordered.run().state is S.COMPLETED
    assert journal.entries() == ["first", "second"]


def test_retries_with_retry_on_and_recorded_attempts(journal: Journal) -> None:
    @task(retries=3, retry_delay=[0.01, 0.02], retry_on=(OSError,))
    def flaky() -> str:
        journal.write("flaky")
        if journal.count("flaky") < 3:
            raise OSError("disk hiccup")
        return "ok"

    @task(retries=3, retry_on=OSError)
    def wrong_kind() -> None:
        journal.write("wrong")
        raise KeyError("not retried")

    @flow
    def retrying() -> str:
        wrong_kind()
        return flaky()

    run = retrying.run()
    (tr,) = run.tasks_named("flaky")
    assert tr.state is S.COMPLETED
    assert tr.attempts == 3
    assert [t.to_state for t in tr.history] == [
        S.PENDING, S.RUNNING, S.RETRYING, S.RUNNING, S.RETRYING, S.RUNNING, S.COMPLETED,
    ]  # fmt: skip
    assert "OSError: disk hiccup" in tr.history[2].message
    assert journal.count("wrong") == 1, "an error not in retry_on is not retried"
    (wrong,) = run.tasks_named("wrong_kind")
    assert wrong.state is S.FAILED
    assert wrong.error_type == "KeyError"
    assert run.state is S.FAILED


def test_retry_delays_are_waited(journal: Journal) -> None:
    @task(retries=2, retry_delay=0.3, retry_backoff=2.0)
    def slow_flaky() -> None:
        journal.write(repr(time.monotonic()))
        if len(journal.entries()) < 3:
            raise RuntimeError("again")

    @flow
    def waits() -> None:
        slow_flaky()

    assert waits.run().state is S.COMPLETED
    stamps = [float(x) for x in journal.entries()]
    assert stamps[1] - stamps[0] >= 0.29
    assert stamps[2] - stamps[1] >= 0.59


def test_timeout_names_task_and_limit() -> None:
    @task(timeout=0.3)
    def sleepy() -> None:
        time.sleep(3)

    @flow
    def timing() -> None:
        sleepy()

    started = time.monotonic()
    run = timing.run()
    assert time.monotonic() - started < 2.5
    (tr,) = run.tasks_named("sleepy")
    assert tr.state is S.TIMED_OUT
    assert "sleepy" in (tr.error or "")
    assert "0.3s" in (tr.error or "")
    assert run.state is S.FAILED
    with pytest.raises(TimeoutError, match="sleepy"):
        run.result()


def test_upstream_failure_and_allow_failure() -> None:
    @flow
    def failing() -> str:
        bad = fail("kaput")
        inc(bad)  # not run
        return describe(allow_failure(bad))

    run = failing.run()
    assert states(run, "fail") == [S.FAILED]
    assert states(run, "inc") == [S.UPSTREAM_FAILED]
    assert JOURNAL[0].count("inc") == 0
    assert states(run, "describe") == [S.COMPLETED]
    # The flow returned, but `inc` failed because of `fail`, whose failure nobody handled.
    assert run.state is S.FAILED
    with pytest.raises(ValueError, match="kaput"):
        run.result()


def test_failure_handled_through_result_lets_the_flow_complete() -> None:
    @flow
    def handles() -> str:
        try:
            fail("expected").result()
        except ValueError as exc:
            return f"handled {exc}"
        return "not reached"

    run = handles.run()
    assert run.state is S.COMPLETED
    assert run.result() == "handled expected"


def test_result_of_an_upstream_failed_task_raises_upstream_failed() -> None:
    @flow
    def chain() -> int:
        return inc(fail()).result()

    with pytest.raises(UpstreamFailed, match="upstream 'fail'"):
        chain()


def test_flow_call_raises_the_task_error() -> None:
    @flow
    def plain() -> None:
        fail("from task")

    with pytest.raises(ValueError, match="from task"):
        plain()


def test_unpicklable_argument_names_task_and_type() -> None:
    @flow
    def bad_arg() -> Any:
        return describe(threading.Lock())

    run = bad_arg.run()
    assert run.state is S.FAILED
    assert "describe" in (run.error or "")
    assert "lock" in (run.error or "")


def test_unpicklable_result_names_task_and_type() -> None:
    @task
    def make_lock() -> Any:
        return threading.Lock()

    @flow
    def bad_result() -> None:
        make_lock()

    run = bad_result.run()
    (tr,) = run.tasks_named("make_lock")
    assert tr.state is S.FAILED
    assert "make_lock" in (tr.error or "")
    assert "lock" in (tr.error or "")


def test_future_used_as_value_says_call_result() -> None:
    @flow
    def misuse() -> None:
        fut = inc(1)
        if fut:
            pass

    with pytest.raises(FutureMisuse, match=r"\.result\(\)"):
        misuse()

    @flow
    def arithmetic() -> None:
        inc(1) + 1  # type: ignore[operator]

    with pytest.raises(FutureMisuse, match=r"\.result\(\)"):
        arithmetic()


def test_future_from_another_run_is_refused() -> None:
    leaked: list[Any] = []

    @flow
    def producer() -> None:
        leaked.append(inc(1))

    @flow
    def consumer() -> int:
        return inc(leaked[0])

    producer()
    with pytest.raises(FutureMisuse, match="belongs to flow run"):
        consumer()


def test_invalid_parameters_raise_before_anything_runs() -> None:
    ran: list[int] = []

    @flow
    def typed(n: int, ratio: float = 1.0) -> int:
        ran.append(n)
        return n

    with pytest.raises(ParameterError) as info:
        typed(n="x", ratio="y")  # type: ignore[arg-type]
    assert "n:" in str(info.value)
    assert "ratio:" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert ran == []
    assert typed(n="3") == 3  # type: ignore[arg-type]


def test_flow_retries_rerun_the_body() -> None:
    bodies: list[int] = []  # the body runs on the driver: a plain list is fine

    @flow(retries=2, retry_delay=0.01)
    def recovering() -> int:
        bodies.append(1)
        if len(bodies) < 2:
            fail("first attempt")
        return inc(1)

    run = recovering.run()
    assert run.state is S.COMPLETED
    assert run.result() == 2
    assert len(bodies) == 2
    assert run.attempts == 2
    assert S.RETRYING in [t.to_state for t in run.history]


def test_flow_timeout() -> None:
    @task
    def nap() -> None:
        time.sleep(2)

    @flow(timeout=0.5)
    def too_slow() -> None:
        nap().result()

    run = too_slow.run()
    assert run.state is S.TIMED_OUT
    with pytest.raises(FlowTimeout, match=r"0\.5s"):
        run.result()


def test_flow_body_error_fails_the_run() -> None:
    @flow
    def broken() -> None:
        inc(1)
        raise RuntimeError("body broke")

    run = broken.run()
    assert run.state is S.FAILED
    assert run.error == "RuntimeError: body broke"
    assert states(run, "inc") == [S.COMPLETED]
    with pytest.raises(RuntimeError, match="body broke"):
        run.result()


def test_subflow_is_a_linked_run() -> None:
    @flow
    def child(x: int) -> int:
        return inc(x)

    @flow
    def parent() -> int:
        return child(1) + child(2)

    run = parent.run()
    assert run.result() == 5
    assert len(run.subflow_runs) == 2
    assert {sub.parent_run_id for sub in run.subflow_runs} == {run.id}
    assert all(sub.state is S.COMPLETED for sub in run.subflow_runs)


def test_logs_from_tasks_and_flow_reach_the_run() -> None:
    @task(log_prints=True)
    def chatty(x: int) -> int:
        get_run_logger().info("processing %d", x)
        print("printed", x)
        return x

    @flow
    def logging_flow() -> int:
        get_run_logger().warning("flow says hi")
        return chatty(7)

    run = logging_flow.run()
    messages = [(rec.task_name, rec.message) for rec in run.logs()]
    assert ("chatty", "processing 7") in messages
    assert ("chatty", "printed 7") in messages
    assert (None, "flow says hi") in messages


def test_task_outside_a_flow_runs_in_process_with_retries() -> None:
    tries: list[int] = []  # in-process: no pickling

    @task(retries=2)
    def direct(x: int) -> int:
        tries.append(x)
        if len(tries) < 2:
            raise ValueError("once")
        return x * 2

    assert direct(21) == 42
    assert len(tries) == 2
    assert direct.fn(1) == 2


def test_task_failed_carries_run_id_for_crashed_futures() -> None:
    err = TaskFailed("x", task="t", run_id="r", cause="c")
    assert (err.task, err.run_id, err.cause) == ("t", "r", "c")


def test_map_length_mismatch_is_a_definition_error() -> None:
    @flow
    def mismatch() -> None:
        add.map([1, 2], [1])

    with pytest.raises(DefinitionError, match="differ in length"):
        mismatch()


def test_failed_flow_message_names_the_task() -> None:
    @flow
    def failing_many() -> None:
        fail.map(["a", "b"])

    run = failing_many.run()
    assert run.state is S.FAILED
    assert "fail" in (run.error or "")
    assert "2 of 2 items of task 'fail' failed; first: [fail[0]]" in (run.error or "")
    with pytest.raises((ValueError, FlowFailed)):
        run.result()


def test_a_run_is_one_dask_span_across_its_waves() -> None:
    from dagflow.clusters import get_cluster

    @flow
    def waves() -> int:
        first = inc(1).result()  # wave 1
        return inc(first)  # wave 2

    run = waves.run()
    assert run.result() == 3
    scheduler = get_cluster("local-threads").cluster.scheduler
    spans = [s for s in scheduler.extensions["spans"].spans.values() if run.id in s.name]
    assert len(spans) == 1
    assert spans[0].name == ("waves", run.id)


def test_unpicklable_callable_names_task_and_type() -> None:
    lock = threading.Lock()

    def holds_lock() -> bool:
        return lock.locked()

    locked = task(name="holds_lock")(holds_lock)

    @flow
    def bad_callable() -> bool:
        return locked()

    with pytest.raises(DefinitionError, match=r"task 'holds_lock'.*not picklable.*lock"):
        bad_callable()


@task
def count_items(xs: list[Any]) -> int:
    return len(xs)


def test_a_cycle_through_a_changed_argument_is_refused_before_anything_runs(
    journal: Journal,
) -> None:
    @flow
    def cyclic() -> int:
        g = inc(1)
        box: list[Any] = [g]
        f = count_items(box)
        box.append(f)  # f now takes itself as an input
        return f.result()

    run = cyclic.run()
    assert run.state is S.FAILED
    assert run.error is not None and "cycle: task 'count_items' [count_items[0]]" in run.error
    assert "would wait for itself" in run.error
    with pytest.raises(DefinitionError):
        run.result()
    assert len(run.task_runs) == 0  # nothing of the wave was sent, nothing recorded as run
    assert journal.count("inc") == 0


def test_a_later_future_put_into_an_argument_is_a_dependency_not_a_cycle() -> None:
    @flow
    def later() -> int:
        box: list[Any] = []
        f = count_items(box)
        box.append(inc(1))
        return f.result()

    assert later() == 1
