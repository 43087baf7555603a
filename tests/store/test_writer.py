"""The batched writer fed real events: what it records, once, in order, and through faults."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from dagflow.core.runs import FlowRunStarted, LogEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.store import Store, StoreWriter, open_store
from dagflow.store.schema import flow_runs, logs, state_history, task_runs
from tests.store.conftest import new_id, run_events, transitions

S = StateType


def count(store: Store, table: object, run_id: str | None = None) -> int:
    query = select(func.count()).select_from(table)  # type: ignore[arg-type]
    if run_id is not None:
        query = query.where(table.c.run_id == run_id)  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        return int(conn.scalar(query) or 0)


@pytest.fixture
def writer(store: Store) -> Iterator[StoreWriter]:
    w = StoreWriter(store.url, heartbeat_seconds=0.2, application_name=f"dagflow-test-{new_id()}")
    yield w
    w.close(timeout=30)


def test_a_run_is_recorded_with_states_attempts_logs_and_history(
    store: Store, writer: StoreWriter
) -> None:
    run_id = new_id()
    events = run_events(run_id, 5)
    writer.handle(events)
    writer.flush(30)
    run = store.get_flow_run(run_id)
    assert run.state is S.COMPLETED and run.flow_name == "etl" and run.flow_version == "1.0"
    assert run.parameters == {"n": 5}
    assert run.cluster_address == "inproc://x"
    assert [h.to_state for h in run.history] == [S.PENDING, S.RUNNING, S.COMPLETED]
    assert len(run.task_runs) == 5
    for i, task in enumerate(sorted(run.task_runs.values(), key=lambda t: t.map_index or 0)):
        assert task.name == "work" and task.map_index == i
        assert task.state is S.COMPLETED and task.attempts == 1 and task.worker == "w"
        assert task.duration == pytest.approx(0.1, abs=1e-3)
        assert [h.to_state for h in task.history] == [S.PENDING, S.RUNNING, S.COMPLETED]
    assert sorted(ev.message for ev in run.logs()) == [f"working on {i}" for i in range(5)]
    assert count(store, state_history, run_id) == transitions(events)


def test_an_event_delivered_twice_is_recorded_once(store: Store, writer: StoreWriter) -> None:
    run_id = new_id()
    events = run_events(run_id, 20)
    writer.handle(events[:30])
    writer.handle(events[20:50])  # overlaps the first batch
    writer.flush(30)
    writer.handle(events)  # everything again, after it was committed
    writer.flush(30)
    assert count(store, state_history, run_id) == transitions(events)
    assert count(store, logs, run_id) == 20
    assert count(store, task_runs, run_id) == 20
    assert store.get_flow_run(run_id).state is S.COMPLETED


def test_a_second_writer_replaying_the_stream_adds_nothing(store: Store) -> None:
    run_id = new_id()
    events = run_events(run_id, 10)
    for _ in range(2):
        w = StoreWriter(store.url)
        w.handle(events)
        w.close(30)
    assert count(store, state_history, run_id) == transitions(events)
    assert count(store, logs, run_id) == 10


def test_failures_keep_their_error_type_message_and_traceback(
    store: Store, writer: StoreWriter
) -> None:
    run_id, t = new_id(), time.time()
    key = "load-x[0]"
    writer.handle(
        [
            FlowRunStarted(run_id, "etl", None, {"when": object()}, t),
            StateEvent(run_id, None, None, S.PENDING, t),
            StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
            StateEvent(run_id, key, None, S.PENDING, t, 0, "", "load", 0),
            StateEvent(run_id, key, S.PENDING, S.RUNNING, t, 1, "", "load", 0),
            StateEvent(run_id, key, S.RUNNING, S.RETRYING, t + 1, 1, "IOError: flaky", "load", 0),
            StateEvent(run_id, key, S.RETRYING, S.RUNNING, t + 2, 2, "", "load", 0),
            StateEvent(
                run_id,
                key,
                S.RUNNING,
                S.FAILED,
                t + 3,
                2,
                "ValueError: bad row 7",
                "load",
                0,
                "w2",
                "ValueError",
                "Traceback (most recent call last):\n  ...",
            ),
            StateEvent(run_id, None, S.RUNNING, S.FAILED, t + 4, 1, "task 'load' failed"),
        ]
    )
    writer.flush(30)
    run = store.get_flow_run(run_id)
    assert run.state is S.FAILED and run.error == "task 'load' failed"
    assert run.parameters["when"]["$repr"].startswith("<object object")
    task = run.task_runs[key]
    assert (task.state, task.attempts, task.worker) == (S.FAILED, 2, "w2")
    assert (task.error_type, task.error) == ("ValueError", "ValueError: bad row 7")
    assert task.traceback is not None and task.traceback.startswith("Traceback")
    assert task.started == t and task.ended == t + 3
    assert [h.attempt for h in task.history] == [0, 1, 1, 2, 2]


def test_the_final_state_is_never_visible_before_the_runs_other_events(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    writer = StoreWriter(store.url, flush_interval=0.01)
    run_id = new_id()
    events = run_events(run_id, 400)
    seen_final: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60

    def watch() -> None:
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                state = conn.scalar(select(flow_runs.c.state).where(flow_runs.c.id == run_id))
                if state == "COMPLETED":
                    seen_final.append(
                        (
                            conn.scalar(
                                select(func.count())
                                .select_from(state_history)
                                .where(state_history.c.run_id == run_id)
                            )
                            or 0,
                            conn.scalar(
                                select(func.count())
                                .select_from(task_runs)
                                .where(
                                    task_runs.c.run_id == run_id, task_runs.c.state != "COMPLETED"
                                )
                            )
                            or 0,
                        )
                    )
                    return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for i in range(0, len(events), 7):
        writer.handle(events[i : i + 7])
    writer.close(30)
    watcher.join(60)
    store.close()
    assert seen_final == [(transitions(events), 0)]


def test_heartbeat_is_refreshed_while_a_run_is_active_and_stops_after(
    store: Store, writer: StoreWriter
) -> None:
    run_id = new_id()
    events = run_events(run_id, 2)
    writer.handle(events[:-1])  # everything but the final state
    writer.flush(30)

    def heartbeat() -> float:
        with store.engine.connect() as conn:
            return float(conn.scalar(select(flow_runs.c.heartbeat).where(flow_runs.c.id == run_id)))

    first = heartbeat()
    deadline = time.monotonic() + 30
    while heartbeat() == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert heartbeat() > first
    writer.handle(events[-1:])
    writer.flush(30)
    final = heartbeat()
    time.sleep(1.0)  # several heartbeat periods of this writer
    assert heartbeat() == final


def test_events_of_a_run_never_started_are_dropped_without_blocking_others(
    store: Store, writer: StoreWriter, caplog: pytest.LogCaptureFixture
) -> None:
    orphan, good = new_id(), new_id()
    writer.handle([StateEvent(orphan, "t-1[0]", None, S.PENDING, time.time(), 0, "", "t", 0)])
    writer.handle(run_events(good, 3))
    writer.flush(30)
    assert store.get_flow_run(good).state is S.COMPLETED
    assert count(store, task_runs, orphan) == 0
    assert "never started" in caplog.text
    assert writer.pending == 0


def test_handle_only_queues(store: Store, writer: StoreWriter) -> None:
    run_id = new_id()
    writer.handle(run_events(run_id, 1))
    assert writer.pending > 0 or count(store, flow_runs, run_id) == 1
    writer.flush(30)
    assert writer.pending == 0


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
print("released", flush=True)
"""


@pytest.mark.slow
def test_sqlite_locked_by_another_process_for_5s_loses_and_repeats_nothing(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(sqlite_url)
    writer = StoreWriter(store.url, max_backoff=0.5)
    path = sqlite_url.removeprefix("sqlite:///")
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, path, "5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        runs = [new_id() for _ in range(10)]
        expected = 0
        for run_id in runs:
            events = run_events(run_id, 50)
            expected += transitions(events)
            for i in range(0, len(events), 25):
                writer.handle(events[i : i + 25])
                writer.handle(events[i : i + 5])  # some delivered twice
            time.sleep(0.05)
        assert locker.poll() is None, "the stream must have been handled while the lock was held"
        assert writer.pending > 0
        assert writer.wait_committed(60)
        assert locker.wait(30) == 0
        assert writer.failed_attempts > 1  # it did meet the lock, and retried
        said = [r.getMessage() for r in caplog.records if r.name == "dagflow.store.writer"]
        assert len([m for m in said if "cannot write to the run history" in m]) == 1, said
        assert len([m for m in said if "recovered after" in m]) == 1, said
        with store.engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(state_history)) == expected
            rows = conn.execute(
                select(flow_runs.c.state, func.count()).group_by(flow_runs.c.state)
            ).all()
        assert [tuple(r) for r in rows] == [("COMPLETED", 10)]
    finally:
        if locker.poll() is None:
            locker.terminate()
            try:
                locker.wait(5)
            except subprocess.TimeoutExpired:
                locker.kill()
                locker.wait(5)
        writer.close(30)
        store.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_connection_killed_mid_stream_loses_and_repeats_nothing(pg_url: str) -> None:
    store = open_store(pg_url)
    app = f"dagflow-kill-{new_id()[:8]}"
    writer = StoreWriter(store.url, flush_interval=0.02, application_name=app)
    database = store.url.database
    runs = [new_id() for _ in range(20)]
    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        while not stop.is_set():
            with store.engine.begin() as conn:
                pids = conn.scalars(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :app AND datname = :db"
                    ),
                    {"app": app, "db": database},
                ).all()
            kills.extend(1 for ok in pids if ok)
            stop.wait(0.15)

    writer.handle(run_events(runs[0], 10))
    assert writer.wait_committed(30)
    thread = threading.Thread(target=killer)
    thread.start()
    expected = transitions(run_events(runs[0], 10))
    try:
        for run_id in runs[1:]:
            events = run_events(run_id, 40)
            expected += transitions(events)
            for i in range(0, len(events), 10):
                writer.handle(events[i : i + 10])
                writer.handle(events[i : i + 3])  # some delivered twice
                time.sleep(0.005)
    finally:
        stop.set()
        thread.join(30)
    assert kills, "the writer's connection was never found to kill"
    assert writer.wait_committed(60)
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(state_history)) == expected
        states = conn.execute(select(flow_runs.c.state, func.count()).group_by(flow_runs.c.state))
        assert [tuple(r) for r in states] == [("COMPLETED", 20)]
    writer.close(30)
    store.close()


def test_log_events_are_ordered_by_time(store: Store, writer: StoreWriter) -> None:
    run_id, t = new_id(), time.time()
    writer.handle([FlowRunStarted(run_id, "f", None, {}, t)])
    writer.handle([LogEvent(run_id, None, None, 20, t + 2, "second")])
    writer.handle([LogEvent(run_id, None, None, 30, t + 1, "first")])
    writer.flush(30)
    assert [ev.message for ev in store.get_flow_run(run_id).logs()] == ["first", "second"]
