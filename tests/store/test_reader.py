"""Reading runs back: naming by prefix, listing, crash detection, what resume and caching read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.errors import StoreError
from dagflow.store import Store, StoreWriter, open_store
from dagflow.store.schema import flow_runs, task_runs
from tests.store.conftest import new_id, run_events, troubled_run_events

S = StateType


@pytest.fixture
def writer(store: Store) -> Iterator[StoreWriter]:
    w = StoreWriter(store.url)
    yield w
    w.close(30)


def record(writer: StoreWriter, *event_lists: list) -> None:  # type: ignore[type-arg]
    for events in event_lists:
        writer.handle(events)
    writer.flush(30)


def test_a_run_is_named_by_its_id_or_a_unique_prefix(store: Store, writer: StoreWriter) -> None:
    a, b = "aaaa" + new_id()[4:], "aabb" + new_id()[4:]
    record(writer, run_events(a, 1), run_events(b, 1))
    assert store.get_flow_run(a).id == a
    assert store.get_flow_run("aaaa").id == a
    with pytest.raises(StoreError, match=r"run id 'aa' is ambiguous: it matches .*aaaa.*") as info:
        store.get_flow_run("aa")
    assert b in str(info.value)
    with pytest.raises(StoreError, match=r"no flow run with id 'zz_%'"):
        store.get_flow_run("zz_%")
    with pytest.raises(StoreError, match="no run id given"):
        store.get_flow_run("  ")


def test_runs_are_listed_newest_first_and_filtered(store: Store, writer: StoreWriter) -> None:
    t = time.time()
    ids = [new_id() for _ in range(4)]
    record(
        writer,
        run_events(ids[0], 2, flow="etl", t0=t),
        run_events(ids[1], 2, flow="etl", final=S.FAILED, t0=t + 1),
        run_events(ids[2], 3, flow="report", t0=t + 2),
        run_events(ids[3], 1, flow="etl", t0=t + 3),
    )
    assert [r.id for r in store.list_flow_runs()] == ids[::-1]
    assert [r.id for r in store.list_flow_runs(flow="etl")] == [ids[3], ids[1], ids[0]]
    assert [r.id for r in store.list_flow_runs(state="failed")] == [ids[1]]
    assert [r.id for r in store.list_flow_runs(flow="etl", limit=1)] == [ids[3]]
    listed = store.list_flow_runs(flow="report")[0]
    assert isinstance(listed, FlowRun)
    assert len(listed.task_runs) == 3 and listed.counts() == {S.COMPLETED: 3}
    with pytest.raises(StoreError, match=r"unknown state 'DONE' \(one of SCHEDULED"):
        store.list_flow_runs(state="DONE")


def test_a_running_run_with_a_stale_heartbeat_is_shown_and_recorded_crashed(
    store: Store, writer: StoreWriter
) -> None:
    stale, alive = new_id(), new_id()
    events = run_events(stale, 3, t0=time.time() - 60)
    # The driver died after the second task finished and the third started.
    record(writer, events[:-2], run_events(alive, 1)[:-1])
    writer.close(30)  # the driver's writer is gone: nothing beats for `stale` any more
    old = time.time() - 3600
    with store.engine.begin() as conn:
        conn.execute(update(flow_runs).where(flow_runs.c.id == stale).values(heartbeat=old))

    run = store.get_flow_run(stale)
    assert run.state is S.CRASHED
    assert run.history[-1].from_state is S.RUNNING and run.history[-1].to_state is S.CRASHED
    assert run.history[-1].message.startswith("heartbeat stale since ")
    assert run.error is not None and "driver was lost" in run.error
    states = sorted(t.state.value for t in run.task_runs.values())
    assert states == ["COMPLETED", "COMPLETED", "CRASHED"]
    crashed = next(t for t in run.task_runs.values() if t.state is S.CRASHED)
    assert crashed.history[-1].to_state is S.CRASHED

    # Recorded, not only shown: the rows say CRASHED, and reading again adds no history.
    with store.engine.connect() as conn:
        assert conn.scalar(select(flow_runs.c.state).where(flow_runs.c.id == stale)) == "CRASHED"
        assert (
            conn.scalar(
                select(task_runs.c.state).where(
                    task_runs.c.run_id == stale, task_runs.c.task_key == crashed.dask_key
                )
            )
            == "CRASHED"
        )
    again = open_store(store.url).get_flow_run(stale)
    assert [h.to_state for h in again.history].count(S.CRASHED) == 1
    # A run whose heartbeat is fresh is left alone.
    assert store.get_flow_run(alive).state is S.RUNNING
    assert [r.state for r in store.list_flow_runs(state="CRASHED")] == [S.CRASHED]


def test_crash_detection_applies_to_listing(store: Store, writer: StoreWriter) -> None:
    run_id = new_id()
    record(writer, run_events(run_id, 1)[:3])
    writer.close(30)
    with store.engine.begin() as conn:
        conn.execute(update(flow_runs).values(heartbeat=time.time() - 3600))
    assert [r.state for r in store.list_flow_runs()] == [S.CRASHED]


def test_reopen_run_accepts_only_runs_that_ended_badly(store: Store, writer: StoreWriter) -> None:
    ok, failed = new_id(), new_id()
    record(writer, run_events(ok, 1), run_events(failed, 2, final=S.FAILED))
    with pytest.raises(StoreError, match=f"flow run {ok} is COMPLETED; only a run that ended"):
        store.reopen_run(ok)
    reopened = store.reopen_run(failed[:10])
    assert (reopened.run_id, reopened.flow_name, reopened.parameters) == (failed, "etl", {"n": 2})
    assert reopened.state is S.FAILED
    outcomes = store.load_task_outcomes(failed)
    assert len(outcomes) == 2
    assert {o.state for o in outcomes.values()} == {S.COMPLETED}
    assert {o.name for o in outcomes.values()} == {"work"}


def test_setbacks_are_a_runs_retries_and_failures_with_the_last_traceback(
    store: Store, writer: StoreWriter
) -> None:
    run_id = new_id()
    record(writer, troubled_run_events(run_id))
    found = [s for _, s in store.setbacks(run_id)]
    token = f"{run_id[:8]}1"
    assert [(s.key, s.state, s.attempt) for s in found] == [
        ("work[3]", S.FAILED, 1),
        ("work[7]", S.FAILED, 1),
        ("fetch[0]", S.RETRYING, 1),
    ]
    assert found[0].traceback is not None and found[0].traceback.endswith("disk 3 unreadable\n")
    assert found[0].error_type == "OSError" and found[0].name == "work"
    assert found[2].traceback is None and found[2].message.endswith("(retry 1/2 in 0.50s)")
    rows = store.setbacks(run_id, "fetch")
    assert [s.key for _, s in rows] == ["fetch[0]"]
    assert [s.key for _, s in store.setbacks(run_id, f"work-{token}[7]")] == ["work[7]"]
    assert store.setbacks(run_id, after=rows[-1][0]) == []  # following: nothing newer
    assert store.task_names(run_id) == ["fetch", "total", "work"]
    assert store.has_task(run_id, "work") and store.has_task(run_id, f"work-{token}[3]")
    assert not store.has_task(run_id, "nosuch")


def test_listed_runs_carry_their_own_history_for_their_running_time(
    store: Store, writer: StoreWriter
) -> None:
    run_id = new_id()
    record(writer, run_events(run_id, 2, t0=1.8e9))
    (run,) = store.list_flow_runs()
    assert [step.to_state for step in run.history] == [S.PENDING, S.RUNNING, S.COMPLETED]
    assert run.running_time() == pytest.approx(1.0)


def test_a_run_can_be_read_without_its_tasks_steps(store: Store, writer: StoreWriter) -> None:
    run_id = new_id()
    record(writer, run_events(run_id, 3))
    whole = store.get_flow_run(run_id)
    light = store.get_flow_run(run_id, task_history=False)
    assert set(light.all_task_runs) == set(whole.all_task_runs) and len(whole.all_task_runs) == 3
    for key, tr in whole.all_task_runs.items():
        assert tr.history, key
        assert light.all_task_runs[key].history == []
        assert light.all_task_runs[key].state is tr.state
        assert light.all_task_runs[key].attempts == tr.attempts
    assert light.history == whole.history and whole.history  # the run's own steps stay
    assert light.running_time() == whole.running_time()
