"""The outbox and the tracker without a cluster.

The outbox runs on a real Tornado event loop (as on a worker); the worker object around it is a
stand-in with `loop` and `log_event`. The tracker gets reports as the Dask topic hands them over
and passes the run machine's events to a sink, calls hooks and releases futures.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from tornado.ioloop import IOLoop

from dagflow import task
from dagflow.core.graph import RunGraph
from dagflow.core.machine import RunState
from dagflow.core.reports import LogReport, Report, log_wire
from dagflow.core.runs import FlowRun, LogEvent, RunEvent, StateEvent, TaskRun
from dagflow.core.states import StateType
from dagflow.engine.outbox import FLUSH_SECONDS, ChunkBox, Outbox
from dagflow.engine.tracker import RunTracker

S = StateType
RUN_ID = "ab12cd34" + "0" * 24


class Worker:
    """What the outbox needs of a worker: its event loop, and `log_event` (here: recorded)."""

    def __init__(self, loop: IOLoop) -> None:
        self.loop = loop
        self.sent: list[tuple[str, list[Any], float]] = []

    def log_event(self, topic: str, records: list[Any]) -> None:
        self.sent.append((topic, list(records), time.monotonic()))


@pytest.fixture
def worker() -> Iterator[Worker]:
    loop = IOLoop(make_current=False)
    thread = threading.Thread(target=loop.start, daemon=True)
    thread.start()
    yield Worker(loop)
    loop.add_callback(loop.stop)
    thread.join(5)
    loop.close()


def wait_until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_the_first_record_after_a_quiet_spell_goes_at_once(worker: Worker) -> None:
    box = Outbox(worker)
    start = time.monotonic()
    box.put("run-1", ("first",))
    wait_until(lambda: worker.sent)
    topic, records, sent_at = worker.sent[0]
    assert (topic, records) == ("run-1", [("first",)])
    assert sent_at - start < FLUSH_SECONDS


def test_records_that_follow_are_batched_per_topic(worker: Worker) -> None:
    box = Outbox(worker)
    box.put("run-1", 0)
    for i in range(1, 200):
        box.put("run-1" if i % 2 else "run-2", i)
    wait_until(lambda: sum(len(r) for _, r, _ in worker.sent) == 200)
    assert len(worker.sent) <= 4  # the first at once, then one message per topic per window
    assert sorted(i for _, records, _ in worker.sent for i in records) == list(range(200))


def test_a_chunks_batches_reach_the_outbox_in_the_order_they_were_put(worker: Worker) -> None:
    """The loop's flush of a chunk's box (a window passed) and the chunk thread's own (its end)
    race; the one that took the older records must hand them over first, or an item's COMPLETED
    overtakes its RUNNING (the driver refused that: PENDING -> COMPLETED)."""
    handed: list[list[Any]] = []
    first_taken = threading.Event()

    class SlowOutbox(Outbox):
        def put_many(self, topic: str, records: list[Any]) -> None:
            if not handed and not first_taken.is_set():
                first_taken.set()
                time.sleep(0.2)  # the other flush runs meanwhile
            handed.append(records)

    box = ChunkBox(SlowOutbox(worker), "run-1")
    running = Report("t-x", 0, S.RUNNING.value, 1.0, 1, "w", "starting")  # not folded
    box.put("run-1", running)
    older = threading.Thread(target=box.flush)
    older.start()
    assert first_taken.wait(5)
    completed = Report("t-x", 0, S.COMPLETED.value, 2.0, 1, "w")
    box.put("run-1", completed)
    box.close()  # the chunk thread's flush
    older.join(5)
    assert handed == [[running], [completed]]


# -- the tracker ------------------------------------------------------------------------------


class ListSink:
    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.flushed = 0

    def handle(self, events: Sequence[RunEvent]) -> None:
        self.events.extend(events)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed += 1


HOOKED: list[tuple[str, StateType]] = []


def on_done(task_: Any, run: TaskRun) -> None:
    HOOKED.append((run.key, run.state))


@task(on_completion=on_done, on_failure=on_done)
def work(x: int) -> int:
    return x


class Resolver:
    run_id = RUN_ID

    def resolve(self, future: Any, timeout: float | None) -> Any:
        raise AssertionError("not used")

    def wait_for_future(self, future: Any, timeout: float | None) -> None:
        raise AssertionError("not used")

    def future_state(self, future: Any) -> StateType:
        return S.PENDING


def test_the_tracker_folds_topic_batches_and_does_what_follows() -> None:
    HOOKED.clear()
    state = RunState(FlowRun(RUN_ID, "etl"))
    sink = ListSink()
    tracker = RunTracker(state, [sink])
    graph = RunGraph(Resolver(), "ab12cd341")
    graph.add_map(work, ([1, 2],), {})
    futures = [object(), object()]  # what the tracker holds until a task's end
    tracker.submitted(graph.take_pending(), futures)
    assert len(tracker.inflight) == 2
    tracker.start()
    name = "work-ab12cd341"
    tracker.on_reports(
        [
            list(Report(name, 0, "RUNNING", 1.0, 1, "w")),
            list(log_wire(LogReport(name, 0, 20, 1.1, "hi", "w"))),
            list(Report(name, 0, "COMPLETED", 1.2, 1, "w")),
            list(Report(name, 1, "RUNNING", 1.0, 1, "w")),
            list(Report(name, 1, "FAILED", 1.3, 1, "w", "ValueError: x", "ValueError")),
        ]
    )
    tracker.stop()
    kinds = [(type(ev).__name__, getattr(ev, "to_state", None)) for ev in sink.events]
    assert kinds.count(("StateEvent", S.PENDING)) == 2
    assert ("LogEvent", None) in kinds
    assert [ev.message for ev in sink.events if type(ev) is LogEvent] == ["hi"]
    finals = [ev for ev in sink.events if type(ev) is StateEvent and ev.to_state.is_final]
    assert {(ev.task_key, ev.to_state) for ev in finals} == {
        (f"{name}[0]", S.COMPLETED),
        (f"{name}[1]", S.FAILED),
    }
    assert sorted(HOOKED) == [("work[0]", S.COMPLETED), ("work[1]", S.FAILED)]  # logical keys
    assert tracker.inflight == {}  # released at their end
    assert list(tracker.failed) == [f"{name}[1]"]  # kept: the run may report its error
    assert sink.flushed == 1
