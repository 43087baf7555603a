"""Task and flow behaviours a Prefect user relies on (issue #9), one test each, on both local
clusters: `local-threads` (in-process workers) and `local` (worker processes, where reports,
prints and code travel between processes). How code is shipped to worker processes, and the
tracebacks that name the user's file, are in `test_shipping.py`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import dagflow
from dagflow import (
    StateType,
    UpstreamFailed,
    allow_failure,
    flow,
    get_flow_run,
    task,
)
from dagflow.errors import DefinitionError, FlowFailed, FlowTimeout, ParameterError

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("cluster")]


@pytest.fixture(params=["local-threads", "local"])
def cluster(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DAGFLOW_CLUSTER", request.param)
    return str(request.param)


S = StateType


@task
def echo(x: Any) -> Any:
    return x


@task
def fails_on_two(x: int) -> int:
    if x == 2:
        raise ValueError("two is not allowed")
    return x


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def add(x: int, y: int) -> int:
    return x + y


@task(retries=0)
def boom() -> int:
    raise KeyError("the key was missing")


# ---------------------------------------------------------------- 1. state is final after wait


def test_a_futures_state_is_final_once_wait_or_result_returned() -> None:
    seen: dict[str, list[StateType]] = {"wait": [], "result": [], "failed": []}

    @flow
    def states() -> None:
        for i in range(15):
            f = echo(i)
            f.wait()
            seen["wait"].append(f.state)
            g = echo(i)
            g.result()
            seen["result"].append(g.state)
        bad = fails_on_two(2)
        bad.wait()
        seen["failed"].append(bad.state)
        with pytest.raises(ValueError):
            bad.result()
        seen["failed"].append(bad.state)

    states()
    assert set(seen["wait"]) == {S.COMPLETED}
    assert set(seen["result"]) == {S.COMPLETED}
    assert seen["failed"] == [S.FAILED, S.FAILED]


# ---------------------------------------------------------------- 2. allow_failure in maps


def test_allow_failure_per_item_of_a_map_lets_the_run_complete() -> None:
    @flow
    def per_item() -> list[Any]:
        return echo.map([allow_failure(x) for x in fails_on_two.map([1, 2, 3])])

    run = per_item(return_state=True)
    assert run.state is S.COMPLETED, run.error
    values = run.result()
    assert values[0] == 1 and values[2] == 3
    assert isinstance(values[1], ValueError)


def test_allow_failure_around_a_list_of_futures_maps_over_it() -> None:
    @flow
    def whole_list() -> list[Any]:
        return echo.map(allow_failure(fails_on_two.map([1, 2, 3])))

    run = whole_list(return_state=True)
    assert run.state is S.COMPLETED, run.error
    assert [type(v) for v in run.result()] == [int, ValueError, int]


def test_allow_failure_around_a_list_passed_whole_lets_the_run_complete() -> None:
    @flow
    def whole() -> Any:
        return echo(allow_failure(fails_on_two.map([1, 2, 3])))

    run = whole(return_state=True)
    assert run.state is S.COMPLETED, run.error
    assert [type(v) for v in run.result()] == [int, ValueError, int]


# ---------------------------------------------------------------- 3. parameter errors


def test_one_parameter_error_names_every_bad_field() -> None:
    @flow
    def etl(rows: int = 10) -> int:
        return rows

    with pytest.raises(ParameterError) as caught:
        etl(rows="many", colour="red")  # type: ignore[call-arg]
    message = str(caught.value)
    assert "rows" in message and "colour" in message
    assert len(message.splitlines()) == 1


# ---------------------------------------------------------------- 4. flow timeout


def test_a_flow_timeout_returns_at_the_timeout_and_submits_nothing_after(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "after"

    @task
    def touch(path: str) -> None:
        Path(path).write_text("ran")

    @flow(timeout=0.5)
    def slow(path: str) -> None:
        time.sleep(3)
        touch(path).result()

    start = time.monotonic()
    run = slow(str(marker), return_state=True)
    took = time.monotonic() - start
    assert run.state is S.TIMED_OUT
    assert took < 2.5, took
    time.sleep(3)  # the body's thread wakes up after its sleep: its task call is refused
    assert not marker.exists()
    with pytest.raises(FlowTimeout, match=r"0\.5"):
        slow(str(marker))


# ---------------------------------------------------------------- 5. the root cause


def test_a_flow_failed_by_an_upstream_failure_raises_the_root_cause() -> None:
    @flow
    def chained() -> int:
        return echo(boom()).result()

    with pytest.raises(UpstreamFailed) as caught:
        chained()
    assert isinstance(caught.value.__cause__, KeyError)
    assert "boom" in str(caught.value) and "KeyError: 'the key was missing'" in str(caught.value)

    run = chained(return_state=True)
    assert run.state is S.FAILED
    assert run.error_type == "KeyError"
    assert run.error is not None and not run.error.startswith("UpstreamFailed")
    assert "boom" in run.error and "the key was missing" in run.error
    stored = get_flow_run(run.id)
    assert stored.error_type == "KeyError" and stored.error == run.error


def test_an_upstream_failure_chains_its_root_cause() -> None:
    @flow
    def handled() -> str:
        try:
            echo(boom()).result()
        except UpstreamFailed as exc:
            return f"{type(exc.__cause__).__name__}: {exc.__cause__}"
        return "no error"

    run = handled.run()
    assert run.state is S.COMPLETED  # the body handled the failure and its root cause
    assert run.result() == "KeyError: 'the key was missing'"


def test_a_map_failure_says_how_many_items_failed_and_the_first_error() -> None:
    @task
    def odd_fails(x: int) -> int:
        if x % 2:
            raise ValueError(f"item {x} is odd")
        return x

    @flow
    def mapped() -> list[int]:
        return add.map(odd_fails.map(range(6)), 1)

    run = mapped(return_state=True)
    assert run.state is S.FAILED and run.error_type == "ValueError"
    assert "3 of 6" in (run.error or "") and "item 1 is odd" in (run.error or "")


# ---------------------------------------------------------------- 6. cache_expiration


def test_a_bad_cache_expiration_names_cache_expiration() -> None:
    with pytest.raises(DefinitionError, match="cache_expiration"):

        @task(cache_expiration=-5)
        def cached() -> int:
            return 1


# ---------------------------------------------------------------- 9. persisted flow result


def test_a_persisted_flow_value_is_read_back_from_the_history() -> None:
    @flow(persist_results=True)
    def kept() -> dict[str, int]:
        return {"answer": add(40, 2).result()}

    run = kept(return_state=True)
    assert get_flow_run(run.id).result() == {"answer": 42}


# ---------------------------------------------------------------- 10. task_runs iterate


def test_task_runs_iterate_task_runs_live_and_read_back() -> None:
    @flow
    def three() -> None:
        echo.map([1, 2, 3])

    run = three(return_state=True)
    for source in (run, get_flow_run(run.id)):
        names = [(t.name, t.state, t.attempts) for t in source.task_runs]
        assert names == [("echo", S.COMPLETED, 1)] * 3
        assert source.task_runs["echo[1]"].map_index == 1


# ---------------------------------------------------------------- 11. methods


class Pipeline:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    @task
    def scale(self, x: int) -> int:
        return x * self.factor

    @flow
    def run(self, xs: list[int]) -> list[int]:
        return [f.result() for f in self.scale.map(xs)] + [self.scale(10).result()]


def test_task_and_flow_on_methods_bind_self() -> None:
    assert Pipeline(3).run([1, 2]) == [3, 6, 30]
    assert Pipeline(2).scale(5) == 10  # outside a flow, too


# ---------------------------------------------------------------- 12. wait/result timeouts


def test_wait_returns_at_its_timeout_and_result_raises_timeout_error() -> None:
    seen: dict[str, Any] = {}

    @flow
    def patient() -> float:
        f = nap(1.5)
        start = time.monotonic()
        f.wait(0.2)
        seen["waited"] = time.monotonic() - start
        seen["state"] = f.state
        with pytest.raises(TimeoutError):
            f.result(timeout=0.2)
        return f.result()

    assert patient() == 1.5
    assert seen["waited"] < 1.0
    assert seen["state"] in (S.PENDING, S.RUNNING)


# ---------------------------------------------------------------- 13. map broadcasting


def test_map_broadcasts_constants_inside_a_flow_as_outside() -> None:
    @flow
    def inside() -> list[int]:
        return [f.result() for f in add.map([1, 2, 3], 5)]

    assert inside() == [6, 7, 8]
    assert add.map([1, 2, 3], 5) == [6, 7, 8]
    assert add.map([1, 2], y=10) == [11, 12]
    with pytest.raises(DefinitionError, match="iterable"):
        add.map(1, 2)

    @flow
    def nothing_to_map() -> None:
        add.map(1, 2)

    with pytest.raises(DefinitionError, match="iterable"):
        nothing_to_map()


# ---------------------------------------------------------------- 14. flow retry reuses results


def test_a_flow_retry_reuses_persisted_results_of_the_failed_attempt(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    counter.write_text("")
    flag = tmp_path / "failed-once"

    @task(persist_result=True)
    def expensive(path: str) -> int:
        with open(path, "a") as fh:
            fh.write("x")
        return 7

    @task
    def flaky(x: int, flag_path: str) -> int:
        if not Path(flag_path).exists():
            Path(flag_path).write_text("1")
            raise RuntimeError("first attempt fails")
        return x

    @flow(retries=1)
    def retried(path: str, flag_path: str) -> int:
        return flaky(expensive(path), flag_path).result()

    run = retried(str(counter), str(flag), return_state=True)
    assert run.state is S.COMPLETED and run.result() == 7
    assert counter.read_text() == "x"  # computed once, reused by the second flow attempt


# ---------------------------------------------------------------- 15. model defaults


class Window(BaseModel):
    days: int
    label: str = "w"


def test_a_model_parameter_is_coerced_from_a_dict_default() -> None:
    @flow
    def windowed(window: Window = {"days": 3}) -> str:  # type: ignore[assignment]  # noqa: B006
        return f"{type(window).__name__}:{window.days}:{window.label}"

    assert windowed() == "Window:3:w"


# ---------------------------------------------------------------- 16/19. subflows


def test_a_subflow_accepts_wait_for_and_resolves_parent_futures(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    journal.write_text("")

    @task
    def note(word: str, path: str) -> str:
        time.sleep(0.2)
        with open(path, "a") as fh:
            fh.write(word + "\n")
        return word

    @flow
    def child(word: str, path: str) -> str:
        return note(word.upper(), path).result()

    @flow
    def parent(path: str) -> str:
        first = note("first", path)
        return child(first, path, wait_for=[note("second", path)])

    assert parent(str(journal)) == "FIRST"
    assert journal.read_text().splitlines()[-1] == "FIRST"


# ---------------------------------------------------------------- 17. stderr prints


def test_log_prints_captures_stderr_at_warning() -> None:
    @task(log_prints=True)
    def chatty() -> None:
        print("to stdout")
        print("to stderr", file=sys.stderr)

    @flow(log_prints=True)
    def printing() -> None:
        print("flow stderr", file=sys.stderr)
        chatty().result()

    run = printing(return_state=True)
    levels = {ev.message: ev.level for ev in run.logs()}
    assert levels["to stdout"] == 20
    assert levels["to stderr"] == 30
    assert levels["flow stderr"] == 30


def test_the_public_names_are_exported() -> None:
    assert dagflow.allow_failure is allow_failure
    assert issubclass(FlowFailed, Exception)


@task
def kept_value(x: int) -> int:
    return x


def held_on_cluster(cluster: str, prefix: str) -> int:
    """How many tasks named `prefix` the cluster's scheduler still keeps (results a client
    wants); other tests share the cluster, so only this task's keys count."""
    from dagflow.clusters import get_cluster

    def count(dask_scheduler: Any = None) -> int:
        return sum(1 for ts in dask_scheduler.tasks.values() if ts.prefix.name == prefix)

    return int(get_cluster(cluster).client.run_on_scheduler(count))


def test_a_finished_run_leaves_no_result_on_the_cluster(cluster: str) -> None:
    """A failed body's traceback holds its futures in a reference cycle; when the run ends
    they are let go at once, not at Python's next full garbage collection (a long-lived
    process would pile results up on the workers)."""

    @flow
    def keeps(n: int) -> int:
        values = kept_value.map(range(n))
        total = sum(v.result() for v in values)
        raise ValueError(f"refusing {total}")

    import gc

    gc.disable()  # what is released must be released without the cycle collector
    try:
        for n in (5, 5, 40):  # 40 items run in chunks (futures of items of a chunk)
            with pytest.raises(ValueError, match=f"refusing {n * (n - 1) // 2}"):
                keeps(n)
        deadline = time.monotonic() + 10
        while held_on_cluster(cluster, "kept_value") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held_on_cluster(cluster, "kept_value") == 0
    finally:
        gc.enable()


def test_a_future_used_after_its_run_ended_says_so(cluster: str) -> None:
    kept: list[Any] = []

    @flow
    def leaks() -> int:
        future = echo(1)
        kept.append(future)
        return future.result()

    assert leaks() == 1
    with pytest.raises(DefinitionError, match="its flow run has ended"):
        kept[0].result()
