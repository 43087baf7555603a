"""Events recorded once, each starting its run once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event, event_id
from dagflow.core.triggers import FilesTrigger
from dagflow.errors import DeploymentError
from dagflow.store import Store

TRIGGER = "files:in/*.csv"


def deployment() -> Deployment:
    return Deployment(
        name="inbox",
        flow_name="ingest",
        entrypoint="flows.py:ingest",
        parameters={"path": "{{ event.path }}"},
        triggers=(FilesTrigger("/in", "*.csv", name=TRIGGER),),
    )


def file_event(name: str, size: int = 3) -> Event:
    path = f"/in/{name}"
    return Event(event_id("ingest/inbox", TRIGGER, f"{path}|{size}|1.0"), "files", "/in",
                 {"path": path, "size": size}, 1.0)  # fmt: skip


def render(events: list[Event]) -> dict[str, object]:
    return {"path": events[0].payload["path"], "n": len(events)}


def test_an_event_fired_twice_starts_one_run_and_is_recorded_once(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    a, b = file_event("a.csv"), file_event("b.csv")
    first = store.fire(dep, TRIGGER, [[a], [b]], render)
    assert [f.run_id is not None for f in first] == [True, True]
    again = store.fire(dep, TRIGGER, [[a], [b], [file_event("c.csv")]], render)
    assert len(again) == 1 and again[0].events[0].payload["path"] == "/in/c.csv"
    runs = [r for r in store.list_flow_runs(limit=100) if r.deployment == "ingest/inbox"]
    assert len(runs) == 3
    run_a = store.get_flow_run(first[0].run_id or "")
    assert run_a.parameters == {"path": "/in/a.csv", "n": 1}
    assert run_a.event_id == a.id and run_a.origin == "trigger"
    recorded = store.events("ingest/inbox")
    assert len(recorded) == 3 and {r.run_id for r in recorded} == {f.run_id for f in first} | {
        again[0].run_id
    }
    pos = store.trigger_positions(["ingest/inbox"])[("ingest/inbox", TRIGGER)]
    assert pos.events == 3 and pos.last_event_id is not None
    assert store.known_events([a.id, "nope"]) == {a.id}


def test_a_window_of_events_starts_one_run_and_a_bad_template_none(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    group = [file_event("x.csv"), file_event("y.csv"), file_event("z.csv")]
    fired = store.fire(dep, TRIGGER, [group], render)
    assert len(fired) == 1 and fired[0].run_id
    assert store.get_flow_run(fired[0].run_id).parameters["n"] == 3

    def broken(events: list[Event]) -> dict[str, object]:
        raise DeploymentError("parameters.path: template '{{ event.nope }}': no field 'nope'")

    bad = store.fire(dep, TRIGGER, [[file_event("w.csv")]], broken)
    assert bad[0].run_id is None and "no field 'nope'" in (bad[0].error or "")
    record = store.event(bad[0].events[0].id)
    assert record is not None and record.run_id is None and "nope" in (record.error or "")


def test_a_position_is_stored_with_the_runs(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    store.fire(dep, "rows:t", [[file_event("r1")]], render, position=41)
    store.fire(dep, "rows:t", [], render, position=42)
    pos = store.trigger_positions(["ingest/inbox"])[("ingest/inbox", "rows:t")]
    assert pos.position == 42 and pos.events == 1


def test_two_threads_firing_the_same_burst_start_each_run_once(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    burst = [[file_event(f"f{i}.csv")] for i in range(300)]
    results: list[int] = []
    errors: list[BaseException] = []

    def go() -> None:
        try:
            results.append(sum(1 for f in store.fire(dep, TRIGGER, burst, render) if f.run_id))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sum(results) == 300
    runs = [r for r in store.list_flow_runs(limit=1000) if r.deployment == "ingest/inbox"]
    assert len(runs) == 300 and len({r.event_id for r in runs}) == 300


def test_triggers_are_saved_and_read_back_with_the_deployment(store: Store) -> None:
    dep = deployment()
    store.save_deployments([dep])
    assert store.deployment("ingest/inbox").triggers == dep.triggers
