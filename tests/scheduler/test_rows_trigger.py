"""Rows trigger on real SQLite and PostgreSQL tables: each row starts one run, once, across a
restart of its watcher; the watermark moves with the runs; an unreachable database or a bad
query is one line, and the trigger keeps its place."""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import create_engine, text

from dagflow import triggers
from dagflow.core.deployments import Deployment
from dagflow.core.triggers import RowsTrigger
from dagflow.errors import DeploymentError
from dagflow.scheduler.rows import RowsWatcher
from dagflow.store import Store

QUERY = "SELECT id, total FROM orders WHERE id > :watermark ORDER BY id"


@pytest.fixture
def source(db_url: str) -> str:
    """An `orders` table in the test's database (SQLite file or PostgreSQL)."""
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total FLOAT)"))
    engine.dispose()
    return db_url


def insert(url: str, ids: range) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO orders (id, total) VALUES (:id, :total)"),
            [{"id": i, "total": i * 1.5} for i in ids],
        )
    engine.dispose()


def deployment(trigger: RowsTrigger) -> Deployment:
    return Deployment(
        name="orders",
        flow_name="bill",
        entrypoint="flows.py:bill",
        parameters={"order": "{{ event.row.id }}", "total": "{{ event.row.total }}"},
        triggers=(trigger,),
    )


def watcher(store: Store, dep: Deployment) -> RowsWatcher:
    return RowsWatcher(store, dep.full_name, dep.triggers[0], lambda: dep, lambda: None)  # type: ignore[arg-type]


def bill_runs(store: Store) -> list[dict[str, object]]:
    return sorted(
        (r.parameters for r in store.list_flow_runs(limit=5000) if r.deployment == "bill/orders"),
        key=lambda p: int(p["order"]),  # type: ignore[call-overload]
    )


def test_each_row_starts_one_run_across_a_restart(store: Store, source: str) -> None:
    dep = deployment(triggers.rows(source, QUERY, interval=0.1))
    store.save_deployments([dep])
    insert(source, range(1, 6))
    first = watcher(store, dep)
    first.step()
    assert [p["order"] for p in bill_runs(store)] == [1, 2, 3, 4, 5]
    assert bill_runs(store)[1] == {"order": 2, "total": 3.0}
    first.step()  # nothing new
    insert(source, range(6, 9))
    restarted = watcher(store, dep)  # a new serve process: the position comes from the store
    restarted.step()
    assert [p["order"] for p in bill_runs(store)] == list(range(1, 9))
    pos = store.trigger_positions([dep.full_name])[(dep.full_name, dep.triggers[0].name)]
    assert pos.position == 8 and pos.events == 8


def test_a_burst_goes_through_in_pages_and_batch_mode_is_one_run_per_page(
    store: Store, source: str
) -> None:
    dep = deployment(triggers.rows(source, QUERY, batch=True, name="batched"))
    dep = Deployment(**{**_fields(dep), "parameters": {"orders": "{{ event.rows }}"}})
    store.save_deployments([dep])
    insert(source, range(1, 2501))
    w = watcher(store, dep)
    assert w.step() == 0.0  # a full page: the next one at once
    assert w.step() == 0.0
    assert w.step() > 0
    runs = [r for r in store.list_flow_runs(limit=100) if r.deployment == "bill/orders"]
    sizes = sorted(len(r.parameters["orders"]) for r in runs)
    assert sizes == [500, 1000, 1000]
    assert len(store.events(dep.full_name, limit=5000)) == 2500


def _fields(dep: Deployment) -> dict[str, object]:
    return {f: getattr(dep, f) for f in Deployment.__dataclass_fields__}


def test_an_unreachable_database_or_bad_query_is_one_line_and_keeps_the_place(
    store: Store, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    dep = deployment(triggers.rows(source, QUERY))
    store.save_deployments([dep])
    insert(source, range(1, 3))
    watcher(store, dep).step()
    broken = deployment(
        triggers.rows(source, QUERY.replace("orders", "no_such_table"), name="rows:orders")
    )
    with pytest.raises(DeploymentError, match="query failed") as info:
        watcher(store, broken).step()
    assert "\n" not in str(info.value)
    gone = deployment(triggers.rows("sqlite:////nonexistent/dir/x.db", QUERY, name="rows:orders"))
    w = watcher(store, gone)
    with caplog.at_level(logging.WARNING, logger="dagflow.scheduler"):
        w.start()
        time.sleep(0.5)
        w.stop()
    lines = [r.getMessage() for r in caplog.records if "query failed" in r.getMessage()]
    assert lines and "trigger rows:orders" in lines[0] and "retrying" in lines[0]
    assert all("\n" not in line for line in lines)
    pos = store.trigger_positions([dep.full_name])[(dep.full_name, "rows:orders")]
    assert pos.position == 2  # kept


@pytest.mark.postgres
def test_a_notify_polls_at_once(pg_url: str) -> None:
    from dagflow.store import open_store

    store = open_store(pg_url)
    try:
        engine = create_engine(pg_url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total FLOAT)"))
        dep = deployment(triggers.rows(pg_url, QUERY, interval=60.0, notify="new_orders"))
        store.save_deployments([dep])
        w = watcher(store, dep)
        w.start()
        try:
            time.sleep(1.0)  # its first poll, then a 60 s wait; its LISTEN is connected
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO orders (id, total) VALUES (1, 2.0)"))
                conn.execute(text("NOTIFY new_orders"))
            end = time.monotonic() + 10
            while not bill_runs(store) and time.monotonic() < end:
                time.sleep(0.05)
            assert [p["order"] for p in bill_runs(store)] == [1]  # long before 60 s
        finally:
            w.stop()
            engine.dispose()
    finally:
        store.close()
