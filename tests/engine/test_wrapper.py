"""The task wrapper without a cluster: what it reports and returns for each kind of outcome.

The wrapper is called with the outbox it reports to; here that is a list, the one stand-in for
what a user never touches (the worker's outbox and its network). Everything else is real: the
user's functions, their retries and timeouts, result storage on disk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dagflow import get_run_logger, task
from dagflow.core.reports import LogReport, Report, parse_report
from dagflow.engine.failures import Failure
from dagflow.engine.results import ResultStorage
from dagflow.engine.wrapper import TaskCall
from dagflow.errors import UpstreamFailed

RUN_ID = "ab12cd34" + "0" * 24


class Box:
    """Collects what the wrapper puts in its outbox."""

    def __init__(self) -> None:
        self.records: list[tuple[str, Any]] = []

    def put(self, topic: str, record: Any) -> None:
        self.records.append((topic, record))

    def reports(self) -> list[Report | LogReport]:
        return [parse_report(list(record)) for _, record in self.records]

    def states(self) -> list[tuple[str, int]]:
        return [(r.state, r.attempt) for r in self.reports() if isinstance(r, Report)]


def execute(
    fn: Any,
    *args: Any,
    deps: list[Any] | None = None,
    soft: bool = False,
    storage: ResultStorage | None = None,
    persist: bool = False,
) -> tuple[Any, Box]:
    box = Box()
    call = TaskCall(fn, RUN_ID, "topic", "t-ab12cd341", persist=persist, storage=storage)
    value = call.execute(box, "tcp://w:1", 4, deps or [], soft, args, {})  # type: ignore[arg-type]
    return value, box


@task
def double(x: int) -> int:
    get_run_logger().info("doubling %d", x)
    return 2 * x


def test_a_success_reports_running_then_completed_and_its_log() -> None:
    value, box = execute(double, 21)
    assert value == 42
    assert box.states() == [("RUNNING", 1), ("COMPLETED", 1)]
    logs = [r for r in box.reports() if isinstance(r, LogReport)]
    assert [(r.name, r.item, r.message, r.worker) for r in logs] == [
        ("t-ab12cd341", 4, "doubling 21", "tcp://w:1")
    ]
    assert {topic for topic, _ in box.records} == {"topic"}


def test_retries_report_each_attempt_and_the_last_error_fails() -> None:
    attempts: list[float] = []

    @task(retries=2, retry_delay=0.01)
    def flaky() -> None:
        attempts.append(time.monotonic())
        raise OSError(f"attempt {len(attempts)}")

    value, box = execute(flaky)
    assert type(value) is Failure and value.state == "FAILED"
    assert isinstance(value.error, OSError) and str(value.error) == "attempt 3"
    assert box.states() == [
        ("RUNNING", 1),
        ("RETRYING", 1),
        ("RUNNING", 2),
        ("RETRYING", 2),
        ("RUNNING", 3),
        ("FAILED", 3),
    ]
    final = box.reports()[-1]
    assert isinstance(final, Report) and final.error_type == "OSError"
    assert final.traceback is not None and "attempt 3" in final.traceback
    assert attempts[1] - attempts[0] >= 0.01


def test_a_timeout_ends_timed_out() -> None:
    @task(timeout=0.05)
    def slow() -> None:
        time.sleep(1)

    value, box = execute(slow)
    assert type(value) is Failure and value.state == "TIMED_OUT"
    assert box.states() == [("RUNNING", 1), ("TIMED_OUT", 1)]


def test_a_failed_upstream_means_the_task_does_not_run() -> None:
    upstream = Failure("load", "load-x1[0]", "FAILED", ValueError("no"))
    value, box = execute(double, 1, deps=[upstream])
    assert type(value) is Failure and value.state == "UPSTREAM_FAILED"
    assert isinstance(value.error, UpstreamFailed)
    assert box.states() == [("UPSTREAM_FAILED", 0)]


def test_allow_failure_hands_the_task_the_error() -> None:
    @task
    def describe(items: list[Any]) -> list[str]:
        return [type(i).__name__ for i in items]

    failure = Failure("load", "load-x1[0]", "FAILED", ValueError("no"))
    value, _ = execute(describe, [1, failure], soft=True)
    assert value == ["int", "ValueError"]


def test_a_persisted_result_is_written_and_its_place_reported(tmp_path: Path) -> None:
    storage = ResultStorage(tmp_path.as_uri())
    value, box = execute(double, 2, storage=storage, persist=True)
    assert value == 4
    done = box.reports()[-1]
    assert isinstance(done, Report) and done.result is not None
    location, size, serializer, _, identity = done.result
    assert identity  # what the result was computed from, for a resumed run to compare
    assert location is not None and location.endswith(f"{RUN_ID}/t-ab12cd341-4.pkl")
    assert storage.read_location(location, "cloudpickle") == 4 and size and serializer


def test_an_unpicklable_result_fails_with_a_clear_error() -> None:
    import threading

    @task
    def lock() -> Any:
        return threading.Lock()

    value, _ = execute(lock)
    assert type(value) is Failure
    assert "cannot be pickled, so it cannot leave the worker" in str(value.error)
