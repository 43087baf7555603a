"""The REST API over real HTTP (uvicorn on 127.0.0.1), on SQLite and PostgreSQL, with real runs."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

import pytest

from dagflow.core.runs import LogEvent
from dagflow.core.states import StateType
from dagflow.store import StoreWriter
from tests.server.conftest import Live, Recorded
from tests.store.conftest import new_id, run_events

S = StateType
pytestmark = pytest.mark.cluster


def write(live: Live, events: list) -> None:
    writer = StoreWriter(live.store.url)
    writer.handle(events)
    writer.close(30)


def test_health_needs_no_token(live: Live) -> None:
    import httpx

    answer = httpx.get(f"{live.url}/api/v1/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_runs_newest_first_with_states_and_task_counts(live: Live, recorded: Recorded) -> None:
    body = live.get("/api/v1/runs").json()
    runs = body["runs"]
    assert [r["id"] for r in runs] == [recorded.noisy.id, recorded.completed.id, recorded.failed.id]
    failed = runs[2]
    assert failed["state"] == "FAILED" and failed["flow"] == "mapped"
    assert failed["task_counts"] == {"COMPLETED": 4, "FAILED": 2, "UPSTREAM_FAILED": 1}
    assert failed["failed_tasks"] == 3 and failed["tasks"] == 7
    assert failed["url"] == f"/runs/{recorded.failed.id}"
    started = datetime.fromisoformat(failed["started"])
    assert started.tzinfo is not None and started.utcoffset().total_seconds() == 0
    assert failed["started"].endswith("Z")
    assert body["next_cursor"] is None


def test_runs_filters(live: Live, recorded: Recorded) -> None:
    only = live.get("/api/v1/runs", flow="squares").json()["runs"]
    assert [r["id"] for r in only] == [recorded.completed.id]
    failed = live.get("/api/v1/runs", state="FAILED").json()["runs"]
    assert [r["id"] for r in failed] == [recorded.failed.id]
    both = live.http.get("/api/v1/runs", params=[("state", "FAILED"), ("state", "COMPLETED")])
    assert {r["id"] for r in both.json()["runs"]} == {
        recorded.failed.id,
        recorded.completed.id,
        recorded.noisy.id,
    }
    assert recorded.completed.started is not None
    between = recorded.completed.started - 0.001  # the runs started far more than 1 ms apart
    after = datetime.fromtimestamp(between, timezone.utc).isoformat()
    since = live.get("/api/v1/runs", since=after).json()["runs"]
    assert [r["id"] for r in since] == [recorded.noisy.id, recorded.completed.id]
    until = live.get("/api/v1/runs", until=after).json()["runs"]
    assert [r["id"] for r in until] == [recorded.failed.id]


def test_cursor_pagination_visits_every_run_once(live: Live) -> None:
    ids = [new_id() for _ in range(7)]
    events = []
    for i, run_id in enumerate(ids):
        events += run_events(run_id, 1, t0=1e9 + (i // 2))  # pairs share a creation time
    write(live, events)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = live.get("/api/v1/runs", **params).json()
        seen += [r["id"] for r in page["runs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    created = [live.get(f"/api/v1/runs/{r}").json()["started"] for r in seen]
    assert created == sorted(created, reverse=True)


def test_one_run_its_task_runs_history_error_and_parameters(live: Live, recorded: Recorded) -> None:
    run_id = recorded.failed.id
    detail = live.get(f"/api/v1/runs/{run_id[:10]}").json()
    assert detail["id"] == run_id and detail["state"] == "FAILED"
    assert [h["to_state"] for h in detail["history"]] == ["PENDING", "RUNNING", "FAILED"]
    assert detail["parameters"] == {"n": 6}

    failed = live.get(f"/api/v1/runs/{run_id}/task-runs", state="FAILED").json()
    assert failed["total"] == 2
    for t in failed["task_runs"]:
        assert t["name"] == "flaky" and t["attempts"] == 2
        assert "ValueError" in t["traceback"] and "is broken" in t["error"]
        states = [(h["to_state"], h["attempt"]) for h in t["history"]]
        assert ("RETRYING", 1) in states and ("FAILED", 2) in states
    page = live.get(f"/api/v1/runs/{run_id}/task-runs", limit=3, offset=3).json()
    assert page["total"] == 7 and len(page["task_runs"]) == 3

    steps = live.get(f"/api/v1/runs/{run_id}/history").json()
    assert {s["task_key"] for s in steps["steps"]} >= {
        None,
        *[t["key"] for t in failed["task_runs"]],
    }
    more = live.get(f"/api/v1/runs/{run_id}/history", after=steps["next_after"]).json()
    assert more["steps"] == []

    error = live.get(f"/api/v1/runs/{run_id}/error").json()
    assert error["state"] == "FAILED" and error["failed_total"] == 3
    assert any("Traceback" in (t["traceback"] or "") for t in error["failed_tasks"])
    assert live.get(f"/api/v1/runs/{run_id}/parameters").json() == {"parameters": {"n": 6}}


def test_logs_paged_filtered_by_level_and_searched(live: Live, recorded: Recorded) -> None:
    run_id = recorded.noisy.id
    all_logs = live.get(f"/api/v1/runs/{run_id}/logs").json()
    messages = [r["message"] for r in all_logs["logs"]]
    assert any("needle in the haystack" in m for m in messages)
    assert all_logs["done"] is True and all_logs["run_state"] == "COMPLETED"
    errors = live.get(f"/api/v1/runs/{run_id}/logs", level="ERROR").json()["logs"]
    assert errors and all(r["level"] >= logging.ERROR for r in errors)
    assert {r["level_name"] for r in errors} == {"ERROR"}
    found = live.get(f"/api/v1/runs/{run_id}/logs", q="NEEDLE").json()["logs"]
    assert len(found) == 1 and "<script>alert(1)</script>" in found[0]["message"]
    first = live.get(f"/api/v1/runs/{run_id}/logs", limit=1).json()
    rest = live.get(f"/api/v1/runs/{run_id}/logs", after=first["next_after"]).json()
    assert len(first["logs"]) + len(rest["logs"]) == len(all_logs["logs"])
    assert first["done"] is False  # a full page: there may be more


def test_one_items_logs_and_steps_by_its_key(live: Live) -> None:
    """`work[2]`, as `runs show` and the pages name it, finds the item's records (its Dask key
    `work-<token>[2]` still works too)."""
    run_id = new_id()
    write(live, run_events(run_id, 4))
    dask_key = f"work-{run_id[:8]}1[2]"
    for task in ("work[2]", dask_key):
        logs = live.get(f"/api/v1/runs/{run_id}/logs", task=task).json()["logs"]
        assert [r["message"] for r in logs] == ["working on 2"], task
        steps = live.get(f"/api/v1/runs/{run_id}/history", task=task).json()["steps"]
        assert [s["to_state"] for s in steps] == ["PENDING", "RUNNING", "COMPLETED"], task
        assert {s["task_key"] for s in steps} == {"work[2]"}
    assert live.get(f"/api/v1/runs/{run_id}/logs", task="work[9]").json()["logs"] == []


def test_following_logs_answers_when_a_record_arrives(live: Live) -> None:
    run_id = new_id()
    events = run_events(run_id, 1)
    write(live, events[:-1])  # the run is still RUNNING
    t0 = time.time()
    late = LogEvent(run_id, None, None, 20, t0 + 0.8, "arrived late", None)
    writer = threading.Timer(0.8, write, (live, [late]))
    writer.start()
    try:
        start = time.monotonic()
        page = live.get(f"/api/v1/runs/{run_id}").json()
        assert page["state"] == "RUNNING"
        first = live.get(f"/api/v1/runs/{run_id}/logs").json()
        answer = live.get(f"/api/v1/runs/{run_id}/logs", after=first["next_after"], wait=10).json()
        took = time.monotonic() - start
    finally:
        writer.join()
    assert [r["message"] for r in answer["logs"]] == ["arrived late"]
    assert 0.5 < took < 5, took
    assert answer["done"] is False
    # nothing new and the run still live: the wait runs out
    start = time.monotonic()
    empty = live.get(f"/api/v1/runs/{run_id}/logs", after=answer["next_after"], wait=1).json()
    assert empty["logs"] == [] and 0.9 < time.monotonic() - start < 5


def test_cancel_an_active_run_marks_it_cancelling(live: Live) -> None:
    run_id = new_id()
    write(live, run_events(run_id, 2)[:-1])  # RUNNING, its driver somewhere else
    answer = live.http.post(f"/api/v1/runs/{run_id[:12]}/cancel")
    assert answer.status_code == 200 and answer.json() == {"id": run_id, "state": "CANCELLING"}
    detail = live.get(f"/api/v1/runs/{run_id}").json()
    assert detail["state"] == "CANCELLING"
    last = detail["history"][-1]
    assert (last["from_state"], last["to_state"]) == ("RUNNING", "CANCELLING")
    assert "cancel requested" in last["message"]
    again = live.http.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.json()["state"] == "CANCELLING"


def test_cancel_a_finished_run_is_a_conflict(live: Live, recorded: Recorded) -> None:
    answer = live.http.post(f"/api/v1/runs/{recorded.completed.id}/cancel")
    assert answer.status_code == 409
    assert "COMPLETED" in answer.json()["detail"]
    assert live.get(f"/api/v1/runs/{recorded.completed.id}").json()["state"] == "COMPLETED"


def test_cancel_a_scheduled_run_cancels_it(live: Live) -> None:
    from sqlalchemy import insert

    from dagflow.store.schema import flow_runs, flows

    run_id = new_id()
    with live.store.engine.begin() as conn:
        conn.execute(insert(flows).values(name="later", version=None, created=time.time()))
        conn.execute(
            insert(flow_runs).values(
                id=run_id,
                flow_name="later",
                parameters="{}",
                state="SCHEDULED",
                attempts=0,
                created=time.time(),
            )
        )
    answer = live.http.post(f"/api/v1/runs/{run_id}/cancel").json()
    assert answer["state"] == "CANCELLED"
    detail = live.get(f"/api/v1/runs/{run_id}").json()
    assert detail["state"] == "CANCELLED" and detail["ended"] is not None
    assert [(h["from_state"], h["to_state"]) for h in detail["history"]] == [
        ("SCHEDULED", "CANCELLED")
    ]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/runs", {"state": "NOT_A_STATE"}, "state"),
        ("/api/v1/runs", {"limit": "0"}, "limit"),
        ("/api/v1/runs", {"limit": "many"}, "limit"),
        ("/api/v1/runs", {"cursor": "garbage!"}, "cursor"),
        ("/api/v1/runs", {"since": "yesterday"}, "since"),
        ("/api/v1/runs/abc/logs", {"level": "LOUD"}, "level"),
        ("/api/v1/runs/abc/logs", {"wait": "-1"}, "wait"),
        ("/api/v1/runs/abc/task-runs", {"offset": "-5"}, "offset"),
        ("/api/v1/runs/bad%20id", {}, "ref"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    live: Live, path: str, params: dict[str, str], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    answer = live.http.get(path, params=params)
    assert answer.status_code == 422, answer.text
    fields = [d["loc"][-1] if d["loc"][-1] != 0 else d["loc"][-2] for d in answer.json()["detail"]]
    assert field in fields
    assert "Traceback" not in caplog.text
    assert live.get("/api/v1/health").status_code == 200  # the server lives on


def test_unknown_and_ambiguous_runs_are_404(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    unknown = live.get("/api/v1/runs/0123456789abcdef")
    assert unknown.status_code == 404 and "no flow run" in unknown.json()["detail"]
    for suffix in ("/task-runs", "/logs", "/history", "/error", "/parameters"):
        assert live.get(f"/api/v1/runs/0123456789abcdef{suffix}").status_code == 404
    assert live.http.post("/api/v1/runs/0123456789abcdef/cancel").status_code == 404
    ids = ["abcd" + new_id()[4:], "abcd" + new_id()[4:]]
    write(live, run_events(ids[0], 1) + run_events(ids[1], 1))
    ambiguous = live.get("/api/v1/runs/abcd")
    assert ambiguous.status_code == 404 and "ambiguous" in ambiguous.json()["detail"]
    assert "Traceback" not in caplog.text


def test_flows(live: Live, recorded: Recorded) -> None:
    found = {f["name"]: f for f in live.get("/api/v1/flows").json()}
    assert set(found) == {"mapped", "squares", "noisy"}
    assert found["mapped"]["runs"] == 1 and found["mapped"]["last_run"].endswith("Z")


def test_a_crashed_run_reads_crashed(live: Live) -> None:
    run_id = new_id()
    events = run_events(run_id, 1, t0=time.time() - 3600)[:-1]
    write(live, events)
    from sqlalchemy import update

    from dagflow.store.schema import flow_runs

    with live.store.engine.begin() as conn:  # its driver stopped beating an hour ago
        conn.execute(update(flow_runs).where(flow_runs.c.id == run_id).values(heartbeat=1.0))
    assert live.get(f"/api/v1/runs/{run_id}").json()["state"] == "CRASHED"
    crashed = live.get("/api/v1/runs", state="CRASHED").json()["runs"]
    assert [r["id"] for r in crashed] == [run_id]


def test_state_events_are_not_shared_between_runs(live: Live) -> None:
    """Counts are per run: two runs' task runs never mix in a page."""
    a, b = new_id(), new_id()
    write(live, run_events(a, 3) + run_events(b, 5, final=S.FAILED))
    runs = {r["id"]: r for r in live.get("/api/v1/runs").json()["runs"]}
    assert runs[a]["tasks"] == 3 and runs[b]["tasks"] == 5
    assert runs[b]["state"] == "FAILED"
