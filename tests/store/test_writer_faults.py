"""One bad event never costs its neighbours: text a database refuses, values too long for a column.

On SQLite and on the real PostgreSQL server: the events come as the engine emits them, with text
a user's code can produce (a file name decoded with `os.fsdecode`, a NUL character, a 300-character
name, a worker address of 2,000 characters); every other event of the batch is recorded as it
was, and the bad ones are recorded repaired.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from dagflow.core.runs import FlowRunStarted, LogEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.store import Store, StoreWriter
from dagflow.store.schema import flow_runs, task_runs
from tests.store.conftest import new_id, run_events

S = StateType
BAD_NAME = os.fsdecode(b"report-\xff.csv")  # a lone surrogate: no encoding takes it as is


@pytest.fixture
def writer(store: Store) -> Iterator[StoreWriter]:
    w = StoreWriter(store.url, heartbeat_seconds=0.2, application_name=f"dagflow-test-{new_id()}")
    yield w
    w.close(timeout=30)


def test_undecodable_text_is_repaired_and_its_neighbours_recorded(
    store: Store, writer: StoreWriter
) -> None:
    run_id = new_id()
    events = run_events(run_id, 5)
    key = f"work-{run_id[:8]}1[2]"
    t = time.time()
    bad = [
        LogEvent(run_id, key, "work", 20, t + 0.16, f"wrote {BAD_NAME}", "w"),
        LogEvent(run_id, key, "work", 20, t + 0.17, "a NUL \x00 inside", "w"),
    ]
    events[10:10] = bad  # in the middle of the stream, inside one batch
    writer.handle(events)
    assert writer.wait_committed(30)
    run = store.get_flow_run(run_id)
    assert run.state is S.COMPLETED and len(run.task_runs) == 5
    assert all(tr.state is S.COMPLETED for tr in run.task_runs)
    messages = {ev.message for ev in run.logs()}
    assert {f"working on {i}" for i in range(5)} <= messages
    assert "wrote report-\\udcff.csv" in messages  # repaired, readable, not dropped
    assert "a NUL \\x00 inside" in messages
    assert writer.dropped == 0


def test_a_failure_message_with_bad_text_keeps_its_run(store: Store, writer: StoreWriter) -> None:
    run_id = new_id()
    t = time.time()
    key = f"load-{run_id[:8]}1[0]"
    writer.handle(
        [
            FlowRunStarted(run_id, "etl", None, {"path": BAD_NAME}, t),
            StateEvent(run_id, None, None, S.PENDING, t),
            StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
            StateEvent(run_id, key, None, S.PENDING, t, 0, "", "load"),
            StateEvent(run_id, key, S.PENDING, S.RUNNING, t, 1, "", "load", None, "w"),
            StateEvent(run_id, key, S.RUNNING, S.FAILED, t, 1, f"OSError: {BAD_NAME}", "load",
                       None, "w", "OSError", f"Traceback ...\nOSError: {BAD_NAME}\n"),
            StateEvent(run_id, None, S.RUNNING, S.FAILED, t, 1, f"OSError: {BAD_NAME}"),
        ]
    )  # fmt: skip
    assert writer.wait_committed(30)
    run = store.get_flow_run(run_id)
    assert run.state is S.FAILED and run.error == "OSError: report-\\udcff.csv"
    [task] = run.task_runs
    assert task.state is S.FAILED and task.traceback is not None
    assert "report-\\udcff.csv" in task.traceback


def test_values_longer_than_their_column_are_cut_with_a_marker(
    store: Store, writer: StoreWriter
) -> None:
    run_id = new_id()
    long_name = "P" * 300
    t = time.time()
    key = f"work-{run_id[:8]}1[0]"
    writer.handle(
        [
            FlowRunStarted(run_id, long_name, "v" * 400, {}, t, dashboard_link="h" * 3000),
            StateEvent(run_id, None, None, S.PENDING, t),
            StateEvent(run_id, key, None, S.PENDING, t, 0, "", "work"),
            StateEvent(run_id, key, S.PENDING, S.RUNNING, t, 1, "", "work", None, "w" * 2000),
            StateEvent(run_id, key, S.RUNNING, S.FAILED, t, 1, "E: x", "work", None, "w" * 2000,
                       "E" * 1000),
            StateEvent(run_id, None, S.PENDING, S.FAILED, t, 1, "E: x"),
        ]
    )  # fmt: skip
    assert writer.wait_committed(30)
    with store.engine.connect() as conn:
        row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).one()
        task = conn.execute(select(task_runs).where(task_runs.c.run_id == run_id)).one()
    assert row.state == "FAILED"
    assert len(row.flow_name) == 255 and row.flow_name.endswith("characters cut]")
    assert len(row.flow_version) == 255 and len(row.dashboard_link) == 1024
    assert len(task.error_type) == 255 and "more characters cut" in task.error_type
    assert len(task.worker) == 512
