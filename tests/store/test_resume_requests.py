"""Resume requests in a real database: queued once, claimed by one serving process, dropped
when the run was resumed another way. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update

from dagflow.core.deployments import Deployment
from dagflow.core.schedules import IntervalSchedule
from dagflow.core.states import StateType
from dagflow.errors import NotFound, StateConflict
from dagflow.store import NewRun, Store, StoreWriter, open_store
from dagflow.store.schema import flow_runs
from tests.store.conftest import new_id, run_events

S = StateType


def failed_deployment_run(store: Store, name: str = "nightly") -> str:
    """A deployment's run that was claimed and could not start: it ended FAILED."""
    dep = Deployment(name, "etl", "/tmp/flows.py:etl", {"n": 1}, (IntervalSchedule(60),))
    store.save_deployments([dep])
    (run_id,) = store.create_runs([NewRun(dep, time.time() - 1, "manual", new_id(), {"n": 1})])
    claimed = store.claim_due("serve-a", time.time(), 10, deployment_ids=[dep.full_name])
    assert [c.run_id for c in claimed] == [run_id]
    assert store.fail_unstarted(run_id, "serve-a", "cannot load flows.py", "UsageError")
    return run_id


def test_a_resume_request_is_queued_once_and_claimed_by_one_serving_process(
    store: Store,
) -> None:
    run_id = failed_deployment_run(store)
    got_id, state, asked = store.request_resume(run_id[:10])
    assert (got_id, state) == (run_id, S.FAILED)
    assert store.resume_requested(run_id) == asked
    assert store.request_resume(run_id)[2] == asked  # asking again changes nothing
    assert store.claim_resumes("serve-b", time.time(), 5, ["etl/other"]) == []

    other = open_store(store.url)  # a second serving process, its own connections
    won: list[str] = []
    barrier = threading.Barrier(2)

    def claim(name: str, st: Store) -> None:
        barrier.wait()
        won.extend(
            f"{name}:{c.run_id}" for c in st.claim_resumes(name, time.time(), 5, ["etl/nightly"])
        )

    try:
        threads = [threading.Thread(target=claim, args=a) for a in (("b", store), ("c", other))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        other.close()
    assert len(won) == 1 and won[0].endswith(run_id), won
    assert store.resume_requested(run_id) is None
    served_by = won[0].split(":")[0]
    assert store.get_flow_run(run_id).served_by == served_by
    # a serving process that stops before starting it puts it back in the queue
    assert store.give_back_resume(run_id, served_by)
    assert store.resume_requested(run_id) is not None
    assert [c.run_id for c in store.claim_resumes("d", time.time(), 1, ["etl/nightly"])] == [run_id]


def test_a_request_for_a_run_resumed_another_way_is_dropped(store: Store) -> None:
    run_id = failed_deployment_run(store)
    store.request_resume(run_id)
    with store.engine.begin() as conn:  # `dagflow resume` took it meanwhile
        conn.execute(update(flow_runs).where(flow_runs.c.id == run_id).values(state="RUNNING"))
    assert store.claim_resumes("serve-b", time.time(), 5, ["etl/nightly"]) == []
    assert store.resume_requested(run_id) is None
    with store.engine.begin() as conn:  # ...and it failed again: nobody asked to resume that
        conn.execute(update(flow_runs).where(flow_runs.c.id == run_id).values(state="FAILED"))
    assert store.claim_resumes("serve-b", time.time(), 5, ["etl/nightly"]) == []


def test_what_cannot_be_resumed_by_a_serving_process_is_refused_in_one_line(
    store: Store,
) -> None:
    writer = StoreWriter(store.url)
    plain = new_id()  # a run of `dagflow run`: no deployment serves it
    done = new_id()
    writer.handle(run_events(plain, 2, final=S.FAILED) + run_events(done, 1))
    writer.close(30)
    with pytest.raises(StateConflict, match=f"dagflow resume {plain}"):
        store.request_resume(plain)
    with pytest.raises(StateConflict, match="is COMPLETED; only a run that ended"):
        store.request_resume(done)
    with pytest.raises(NotFound):
        store.request_resume("ffffffffffff")
    run_id = failed_deployment_run(store)
    store.remove_deployment("etl/nightly")
    with pytest.raises(StateConflict, match="no longer registered"):
        store.request_resume(run_id)
    assert store.resume_requested(run_id) is None
