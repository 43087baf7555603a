"""Fixtures for the store's tests: a fresh SQLite file, a fresh PostgreSQL database, event streams.

A PostgreSQL test gets a database of its own (`dagflow_test_<random>`) created on the server named
by `DAGFLOW_TEST_POSTGRES_URL` and dropped afterwards, so tests never collide or leave anything.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dagflow.core.runs import FlowRunStarted, LogEvent, RunEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.store import Store, open_store

S = StateType
PG_ENV = "DAGFLOW_TEST_POSTGRES_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dagflow.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    name = f"dagflow_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The same test against a fresh SQLite file and a fresh PostgreSQL database."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    st = open_store(db_url)
    yield st
    st.close()


def run_events(
    run_id: str,
    n_tasks: int,
    *,
    flow: str = "etl",
    final: StateType = S.COMPLETED,
    logs: bool = True,
    t0: float | None = None,
) -> list[RunEvent]:
    """The events of one complete run of `n_tasks` mapped tasks, as the engine emits them."""
    t = time.time() if t0 is None else t0
    events: list[RunEvent] = [
        FlowRunStarted(run_id, flow, "1.0", {"n": n_tasks}, t, cluster_address="inproc://x"),
        StateEvent(run_id, None, None, S.PENDING, t),
        StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
    ]
    for i in range(n_tasks):
        key = f"work-{run_id[:8]}1[{i}]"
        events.append(StateEvent(run_id, key, None, S.PENDING, t, 0, "", "work", i))
        events.append(StateEvent(run_id, key, S.PENDING, S.RUNNING, t + 0.1, 1, "", "work", i, "w"))
        if logs:
            events.append(LogEvent(run_id, key, "work", 20, t + 0.15, f"working on {i}", "w"))
        events.append(
            StateEvent(run_id, key, S.RUNNING, S.COMPLETED, t + 0.2, 1, "", "work", i, "w")
        )
    message = "" if final is S.COMPLETED else "it broke"
    events.append(StateEvent(run_id, None, S.RUNNING, final, t + 1, 1, message))
    return events


def transitions(events: list[RunEvent]) -> int:
    return sum(1 for ev in events if isinstance(ev, StateEvent))


def new_id() -> str:
    return uuid.uuid4().hex


def troubled_run_events(run_id: str, t0: float | None = None) -> list[RunEvent]:
    """A failed run as the engine records one: `work` mapped over 10 items of which 3 and 7
    fail (with tracebacks), `fetch` failing once and then retried to success, `total` not run
    because of an upstream failure. Keys as the engine makes them today."""
    t = time.time() if t0 is None else t0
    token = f"{run_id[:8]}1"
    events: list[RunEvent] = [
        FlowRunStarted(run_id, "etl", "1.0", {"n": 10}, t, cluster_address="inproc://x"),
        StateEvent(run_id, None, None, S.PENDING, t),
        StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
    ]
    for i in range(10):
        key = f"work-{token}[{i}]"
        at = t + 0.1 * i
        events.append(StateEvent(run_id, key, None, S.PENDING, t, 0, "", "work", i))
        events.append(StateEvent(run_id, key, S.PENDING, S.RUNNING, at, 1, "", "work", i, "w1"))
        if i in (3, 7):
            message = f"OSError: disk {i} unreadable"
            tb = f'Traceback (most recent call last):\n  File "flows.py", line 9\n{message}\n'
            events.append(
                StateEvent(
                    run_id,
                    key,
                    S.RUNNING,
                    S.FAILED,
                    at + 0.05,
                    1,
                    message,
                    "work",
                    i,
                    "w1",
                    "OSError",
                    tb,
                )
            )
        else:
            events.append(
                StateEvent(run_id, key, S.RUNNING, S.COMPLETED, at + 0.05, 1, "", "work", i, "w1")
            )
    fetch = f"fetch-{token}[0]"
    retry = "OSError: timed out (retry 1/2 in 0.50s)"
    events += [
        StateEvent(run_id, fetch, None, S.PENDING, t, 0, "", "fetch"),
        StateEvent(run_id, fetch, S.PENDING, S.RUNNING, t + 1.0, 1, "", "fetch", None, "w2"),
        LogEvent(run_id, fetch, "fetch", 30, t + 1.1, "slow server", "w2"),
        StateEvent(
            run_id, fetch, S.RUNNING, S.RETRYING, t + 1.2, 1, retry, "fetch", None, "w2", "OSError"
        ),
        StateEvent(run_id, fetch, S.RETRYING, S.RUNNING, t + 1.7, 2, "", "fetch", None, "w2"),
        StateEvent(run_id, fetch, S.RUNNING, S.COMPLETED, t + 1.8, 2, "", "fetch", None, "w2"),
    ]
    total = f"total-{token}[0]"
    upstream = "task 'total' did not run: upstream 'work' (work[3]) ended FAILED"
    events += [
        StateEvent(run_id, total, None, S.PENDING, t, 0, "", "total"),
        StateEvent(
            run_id,
            total,
            S.PENDING,
            S.UPSTREAM_FAILED,
            t + 2.0,
            0,
            upstream,
            "total",
            None,
            None,
            "UpstreamFailed",
        ),
        StateEvent(
            run_id,
            None,
            S.RUNNING,
            S.FAILED,
            t + 2.1,
            1,
            f"UpstreamFailed: {upstream}",
            None,
            None,
            None,
            "UpstreamFailed",
        ),
    ]
    return events
