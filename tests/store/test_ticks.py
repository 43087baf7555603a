"""Scheduled runs in a real database: created once, claimed once, taken once, cancelled.

Every test runs on a fresh SQLite file and a fresh PostgreSQL database. Concurrency is real:
two `Store`s (two engines, two connection pools) claiming from threads at the same time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from dagflow.core.deployments import Deployment
from dagflow.core.runs import FlowRunStarted, StateEvent
from dagflow.core.schedules import IntervalSchedule
from dagflow.core.states import StateType, replay
from dagflow.errors import StateConflict
from dagflow.store import NewRun, Store, StoreWriter, open_store
from dagflow.store.database import alembic_config, head_revision, make_engine
from dagflow.store.settings import load_settings

S = StateType


def deployment(name: str = "every", max_active_runs: int = 1, catchup: bool = False) -> Deployment:
    return Deployment(
        name,
        "etl",
        "/tmp/flows.py:etl",
        {"n": 1},
        (IntervalSchedule(10, 0.0),),
        max_active_runs=max_active_runs,
        catchup=catchup,
    )


def ticks_of(store: Store, dep: Deployment, after: float, until: float) -> list[str]:
    runs = [
        NewRun(dep, t, "schedule", dep.idempotency_key(t), dict(dep.parameters))
        for t in dep.ticks(after, until)
    ]
    return store.create_runs(runs)


def test_a_tick_is_created_once_however_often_it_is_asked_for(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    now = time.time()
    first = ticks_of(store, dep, now - 100, now + 100)
    assert len(first) == 20
    assert ticks_of(store, dep, now - 100, now + 100) == []
    other = open_store(store.url)  # a second scheduler on the same database
    try:
        assert ticks_of(other, dep, now - 200, now + 200) != []
        keys = Counter(r.scheduled_time for r in store.list_flow_runs(limit=1000))
        assert set(keys.values()) == {1}
        assert len(keys) == 40
        run = store.get_flow_run(first[0])
        assert run.state is S.SCHEDULED and run.deployment == "etl/every"
        assert run.origin == "schedule" and [h.to_state for h in run.history] == [S.SCHEDULED]
    finally:
        other.close()


def test_two_schedulers_claiming_at_once_claim_every_due_run_once(store: Store) -> None:
    deps = [deployment(f"d{i}", max_active_runs=50) for i in range(5)]
    store.save_deployments(deps)
    now = time.time()
    for dep in deps:
        ticks_of(store, dep, now - 200, now)  # 20 due runs each, 100 in all
    stores = [store, open_store(store.url)]
    claimed: dict[str, list[str]] = {"a": [], "b": []}
    barrier = threading.Barrier(2)

    def claim(name: str, st: Store) -> None:
        barrier.wait()
        deadline = time.monotonic() + 60
        while len(claimed["a"]) + len(claimed["b"]) < 100 and time.monotonic() < deadline:
            # a deployment the other is claiming for is skipped (SKIP LOCKED), not waited on
            claimed[name] += [c.run_id for c in st.claim_due(name, time.time(), 3)]

    try:
        threads = [
            threading.Thread(target=claim, args=(n, st)) for n, st in zip("ab", stores, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        stores[1].close()
    everything = claimed["a"] + claimed["b"]
    assert len(everything) == len(set(everything))  # none twice
    assert len(everything) == 100  # all of them
    owners = {r.id: r.served_by for r in store.list_flow_runs(limit=200)}
    assert all(owners[r] == "a" for r in claimed["a"])
    assert all(owners[r] == "b" for r in claimed["b"])


def test_max_active_runs_holds_the_rest_scheduled_and_paused_ticks_wait(store: Store) -> None:
    limited, paused = deployment("one"), deployment("paused", max_active_runs=5)
    store.save_deployments([limited, paused])
    now = time.time()
    ticks_of(store, limited, now - 50, now)
    ticks_of(store, paused, now - 50, now)
    store.set_paused("etl/paused", True)
    got = store.claim_due("me", now, 10)
    assert [c.deployment_id for c in got] == ["etl/one"]  # one at a time; paused ones wait
    assert store.claim_due("me", now, 10) == []
    assert store.take_run(got[0].run_id, "me")
    assert store.claim_due("me", now, 10) == []  # its run is active now
    store.set_paused("etl/paused", False)
    assert len(store.claim_due("me", now, 10)) == 5


def test_take_and_cancel_race_exactly_one_wins(store: Store) -> None:
    dep = deployment(max_active_runs=100)
    store.save_deployments([dep])
    now = time.time()
    ticks_of(store, dep, now - 400, now)
    claimed = store.claim_due("me", now, 100)
    assert len(claimed) == 40
    outcomes: dict[str, tuple[bool, StateType]] = {}
    for c in claimed:
        results: dict[str, object] = {}

        def take(run_id: str = c.run_id, out: dict[str, object] = results) -> None:
            out["take"] = store.take_run(run_id, "me")

        def cancel(run_id: str = c.run_id, out: dict[str, object] = results) -> None:
            out["cancel"] = store.request_cancel(run_id)[1]

        threads = [threading.Thread(target=take), threading.Thread(target=cancel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        outcomes[c.run_id] = (bool(results["take"]), results["cancel"])  # type: ignore[assignment]
    for run_id, (taken, state) in outcomes.items():
        run = store.get_flow_run(run_id)
        if taken:
            assert state is S.CANCELLING and run.state is S.CANCELLING
            assert store.cancel_requests([run_id]) == [run_id]  # the driver will see it
        else:
            assert state is S.CANCELLED and run.state is S.CANCELLED


def test_cancelling_a_finished_run_is_refused(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    (run_id,) = ticks_of(store, dep, 0, 10)
    store.request_cancel(run_id)
    with pytest.raises(StateConflict, match="already ended CANCELLED; nothing to cancel"):
        store.request_cancel(run_id)


def test_without_catchup_older_due_ticks_are_skipped(store: Store) -> None:
    lazy, eager = deployment("lazy"), deployment("eager", catchup=True, max_active_runs=10)
    store.save_deployments([lazy, eager])
    now = time.time()
    ticks_of(store, lazy, now - 60, now)
    ticks_of(store, eager, now - 60, now)
    skipped = store.skip_missed(now)
    assert len(skipped) == 5
    states = Counter((r.deployment, r.state) for r in store.list_flow_runs(limit=100))
    assert states[("etl/lazy", S.CANCELLED)] == 5
    assert states[("etl/lazy", S.SCHEDULED)] == 1
    assert states[("etl/eager", S.SCHEDULED)] == 6
    claimed = store.claim_due("me", now, 100)
    eager_ticks = [c.scheduled_time for c in claimed if c.deployment_id == "etl/eager"]
    assert eager_ticks == sorted(eager_ticks) and len(eager_ticks) == 6  # oldest first


def test_pausing_drops_upcoming_ticks_so_they_can_be_planned_again(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    # Ticks start 5 s ahead: a tick already due when the pause lands is not "upcoming".
    later = time.time() + 5
    ticks_of(store, dep, later, later + 100)
    store.set_paused("every", True)  # a name unique across flows is enough
    assert [r for r in store.list_flow_runs() if r.state is S.SCHEDULED] == []
    store.set_paused("etl/every", False)
    assert len(ticks_of(store, dep, later, later + 100)) == 10
    info = store.deployments()[0]
    assert info.next_run is not None and info.next_run > later


def test_a_changed_schedule_drops_the_old_upcoming_ticks(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    later = time.time() + 5  # only upcoming ticks are dropped; none is due yet
    ticks_of(store, dep, later, later + 100)
    assert store.save_deployments([dep]) == []  # unchanged
    changed = Deployment("every", "etl", "/tmp/flows.py:etl", schedules=(IntervalSchedule(7),))
    assert store.save_deployments([changed]) == ["etl/every"]
    assert store.list_flow_runs() == []
    assert store.deployment("etl/every").schedules == (IntervalSchedule(7),)


def test_the_writer_turns_a_scheduled_row_into_the_started_run(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    (run_id,) = ticks_of(store, dep, 0, 10)
    assert store.claim_due("me", time.time(), 1)[0].run_id == run_id
    assert store.take_run(run_id, "me")
    writer = StoreWriter(store.url)
    t = time.time()
    writer.handle(
        [
            FlowRunStarted(run_id, "etl", "2.0", {"n": 5}, t, cluster_address="tcp://x:1"),
            StateEvent(run_id, None, S.SCHEDULED, S.PENDING, t),
            StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
            StateEvent(run_id, None, S.RUNNING, S.COMPLETED, t + 1, 1),
        ]
    )
    writer.close(30)
    run = store.get_flow_run(run_id)
    assert run.state is S.COMPLETED and run.parameters == {"n": 5}
    assert run.started == t and run.cluster_address == "tcp://x:1" and run.flow_version == "2.0"
    assert run.deployment == "etl/every" and run.served_by == "me" and run.scheduled_time == 10
    assert [h.to_state for h in run.history] == [S.SCHEDULED, S.PENDING, S.RUNNING, S.COMPLETED]


def test_a_run_not_started_within_the_grace_period_reads_late(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFLOW_LATE_AFTER_SECONDS", "5")
    store = open_store(db_url)
    try:
        dep = deployment()
        store.save_deployments([dep])
        now = time.time()
        ticks_of(store, dep, now - 30, now + 30)
        late = {r.scheduled_time: r.late for r in store.list_flow_runs()}
        assert all(v for t, v in late.items() if t < now - 5)
        assert not any(v for t, v in late.items() if t > now)
    finally:
        store.close()


def test_a_0002_database_upgrades_in_place_with_its_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(load_settings(url).url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(text("INSERT INTO flows (name, version, created) VALUES ('etl', NULL, 1)"))
        conn.execute(
            text(
                "INSERT INTO flow_runs (id, flow_name, parameters, state, attempts, created, "
                "entrypoint) VALUES ('run-1', 'etl', '{\"n\": 2}', 'COMPLETED', 1, 1, 'f.py:etl')"
            )
        )
    engine.dispose()
    store = open_store(url)
    try:
        assert store.status.current == "0002" and head_revision() >= "0005"  # later ones too
        tables = set(inspect(store.engine).get_table_names())
        assert {"deployments", "deployment_schedules"} <= tables
        run = store.get_flow_run("run-1")
        assert run.parameters == {"n": 2} and run.entrypoint == "f.py:etl"
        assert run.deployment is None and run.late is False
        dep = deployment()
        store.save_deployments([dep])
        assert len(ticks_of(store, dep, 0, 30)) == 3
    finally:
        store.close()


@pytest.mark.postgres
def test_a_0002_postgres_database_upgrades_in_place_with_its_runs(pg_url: str) -> None:
    engine = make_engine(load_settings(pg_url).url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0002")
        conn.execute(text("INSERT INTO flows (name, version, created) VALUES ('etl', NULL, 1)"))
        conn.execute(
            text(
                "INSERT INTO flow_runs (id, flow_name, parameters, state, attempts, created) "
                "VALUES ('run-1', 'etl', '{}', 'FAILED', 1, 1)"
            )
        )
    engine.dispose()
    store = open_store(pg_url)
    try:
        assert store.status.current == "0002"
        assert store.get_flow_run("run-1").state is S.FAILED
        columns = {c["name"] for c in inspect(store.engine).get_columns("flow_runs")}
        assert {"deployment_id", "idempotency_key", "claimed_by", "cancel_requested"} <= columns
    finally:
        store.close()


def test_every_recorded_history_replays_through_the_transition_table(store: Store) -> None:
    """Runs ended before they started (skipped, cancelled, failed to load) keep legal histories."""
    dep = deployment(max_active_runs=10)
    store.save_deployments([dep])
    now = time.time()
    ids = ticks_of(store, dep, now - 40, now)
    store.skip_missed(now)  # catchup off: all but the latest are skipped
    claimed = store.claim_due("me", now, 10)
    assert store.fail_unstarted(claimed[0].run_id, "me", "cannot load f.py", "UsageError")
    (upcoming,) = ticks_of(store, dep, now, now + 10)
    store.request_cancel(upcoming)
    for run_id in [*ids, upcoming]:
        run = store.get_flow_run(run_id)
        assert replay(run.history) is run.state, run.history
    failed = store.get_flow_run(claimed[0].run_id)
    assert failed.state is S.FAILED and failed.error == "cannot load f.py"
    assert [h.to_state for h in failed.history] == [S.SCHEDULED, S.PENDING, S.FAILED]
