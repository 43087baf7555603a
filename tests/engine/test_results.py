"""Persisted results, caching, hooks and resume, on `local-threads` with the SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from dagflow import FlowRun, StateType, StoreError, flow, get_flow_run, inputs_hash, task
from dagflow.engine.results import ResultStorage

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("threads_cluster")]
S = StateType


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_persisted_result_is_written_by_the_worker_and_located(tmp_path: Path) -> None:
    @task(persist_result=True, result_serializer="json")
    def numbers(n: int) -> list[int]:
        return list(range(n))

    @task
    def not_persisted() -> int:
        return 1

    @flow
    def persisting() -> list[int]:
        not_persisted()
        return numbers(3)

    run = persisting.run()
    (tr,) = run.tasks_named("numbers")
    assert tr.result_location is not None
    assert tr.result_location.endswith(".json")
    assert tr.result_serializer == "json"
    assert tr.result_size == len(json.dumps([0, 1, 2]))
    assert ResultStorage("file:///").read_location(tr.result_location, "json") == [0, 1, 2]
    (plain,) = run.tasks_named("not_persisted")
    assert plain.result_location is None
    recorded = get_flow_run(run.id).task_runs[tr.key]
    assert recorded.result_location == tr.result_location
    assert recorded.result_size == tr.result_size
    assert recorded.result_serializer == "json"


def test_flow_persist_results_applies_to_every_task() -> None:
    @task
    def one() -> int:
        return 1

    @flow(persist_results=True)
    def all_persisted() -> int:
        return one()

    run = all_persisted.run()
    assert all(tr.result_location for tr in run.task_runs.values())


def test_cache_hit_skips_the_function_until_expiry_or_refresh(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"

    @task(cache_key_fn=inputs_hash, cache_expiration=timedelta(hours=1))
    def expensive(x: int) -> int:
        with calls.open("a") as fh:
            fh.write(f"{x}\n")
        return x * 10

    @flow
    def cached(x: int) -> int:
        return expensive(x)

    first = cached.run(x=4)
    second = cached.run(x=4)
    other = cached.run(x=5)
    assert (first.result(), second.result(), other.result()) == (40, 40, 50)
    assert lines(calls) == ["4", "5"]
    (hit,) = second.tasks_named("expensive")
    assert hit.state is S.CACHED
    assert hit.cache_key is not None
    assert hit.cache_key == first.tasks_named("expensive")[0].cache_key
    assert [t.to_state for t in hit.history] == [S.PENDING, S.CACHED]
    assert get_flow_run(second.id).task_runs[hit.key].cache_key == hit.cache_key

    refreshed = cached.with_options().run(x=4)  # same definition: still a hit
    assert refreshed.tasks_named("expensive")[0].state is S.CACHED

    @flow
    def refreshing(x: int) -> int:
        return expensive.with_options(refresh_cache=True)(x)

    assert refreshing.run(x=4).tasks_named("expensive")[0].state is S.COMPLETED
    assert lines(calls) == ["4", "5", "4"]


def test_expired_cache_entries_miss(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"

    @task(cache_key_fn=inputs_hash, cache_expiration=0.01)
    def short_lived(x: int) -> int:
        with calls.open("a") as fh:
            fh.write("run\n")
        return x

    @flow
    def expiring() -> int:
        return short_lived(1)

    expiring.run()
    expiring.run()
    assert lines(calls) == ["run", "run"]


def test_unwritable_result_storage_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DAGFLOW_RESULTS_URL", (blocker / "results").as_uri())

    @task(persist_result=True)
    def kept() -> int:
        return 1

    @flow
    def cannot_store() -> int:
        return kept()

    run = cannot_store.run()
    assert run.state is S.FAILED
    assert "cannot be written" in (run.error or "")
    assert str(blocker) in (run.error or "")
    with pytest.raises(StoreError, match="cannot be written"):
        run.result()


def test_hooks_are_called_with_the_run_and_cannot_change_it(tmp_path: Path) -> None:
    seen: list[tuple[str, str, str]] = []

    def on_task_done(t: Any, tr: Any) -> None:
        seen.append(("task-done", t.name, str(tr.state)))

    def on_task_failed(t: Any, tr: Any) -> None:
        seen.append(("task-failed", t.name, str(tr.state)))
        raise RuntimeError("a broken hook")

    def on_flow_failed(f: Any, fr: FlowRun) -> None:
        seen.append(("flow-failed", f.name, str(fr.state)))

    @task(on_completion=on_task_done)
    def good() -> int:
        return 1

    @task(on_failure=[on_task_failed])
    def bad() -> int:
        raise ValueError("no")

    @flow(on_failure=on_flow_failed, on_completion=lambda f, fr: seen.append(("never", "", "")))
    def hooked() -> None:
        good()
        bad()

    run = hooked.run()
    assert run.state is S.FAILED
    assert ("task-done", "good", "COMPLETED") in seen
    assert ("task-failed", "bad", "FAILED") in seen
    assert ("flow-failed", "hooked", "FAILED") in seen
    assert ("never", "", "") not in seen


def test_resume_reuses_persisted_results_under_the_same_run_id(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    gate = tmp_path / "gate"

    @task(persist_result=True)
    def step(i: int) -> int:
        with calls.open("a") as fh:
            fh.write(f"step {i}\n")
        return i

    @task(persist_result=True)
    def finish(values: list[int]) -> int:
        with calls.open("a") as fh:
            fh.write("finish\n")
        if not gate.exists():
            raise RuntimeError("gate closed")
        return sum(values)

    @flow
    def resumable(n: int = 3) -> int:
        return finish(step.map(range(n)))

    first = resumable.run(n=3)
    assert first.state is S.FAILED
    gate.touch()
    resumed = resumable.resume(first.id)
    assert resumed.id == first.id
    assert resumed.state is S.COMPLETED
    assert resumed.result() == 3
    assert sorted(lines(calls)) == sorted(["step 0", "step 1", "step 2", "finish", "finish"])
    reused = [tr for tr in resumed.tasks_named("step") if tr.state is S.CACHED]
    assert len(reused) == 3
    recorded = get_flow_run(first.id)
    assert recorded.state is S.COMPLETED

    with pytest.raises(StoreError, match="COMPLETED"):
        resumable.resume(first.id)


def test_resume_reruns_a_task_whose_code_changed_and_force_reuses_by_key() -> None:
    @task(name="load data", persist_result=True)
    def load_v1() -> int:
        return 1

    @task
    def broken() -> int:
        raise RuntimeError("x")

    @flow(name="changing")
    def before() -> None:
        load_v1()
        broken()

    @task(name="load_data", persist_result=True)  # other code now at the key `load_data[0]`
    def load_v2() -> int:
        return 2

    @flow(name="changing")
    def after() -> int:
        return load_v2()

    run = before.run()
    assert run.state is S.FAILED
    with pytest.raises(Exception, match="not 'other'"):
        flow(name="other")(lambda: None).resume(run.id)
    resumed = after.resume(run.id)
    assert resumed.state is S.COMPLETED and resumed.result() == 2  # re-ran: not the stale 1
    latest = resumed.task_runs["load_data[0]"]
    assert latest.state is S.COMPLETED
    assert any("not reused" in step.message for step in latest.history)
    again = before.run()
    forced = after.resume(again.id, force=True)  # the explicit override: reuse by key
    assert forced.state is S.COMPLETED and forced.result() == 1
    assert forced.task_runs["load_data[0]"].state is S.CACHED


def test_a_failed_result_write_leaves_no_partial_file(tmp_path: Path) -> None:
    """A disk that fills up mid-write (here: a file size limit): the task fails, no file stays."""
    script = tmp_path / "full_disk.py"
    script.write_text(
        textwrap.dedent(
            """
            import resource, signal, sys
            from dagflow import flow, task

            @task(persist_result=True)
            def big() -> bytes:
                return b"x" * 5_000_000

            @flow(cluster="local-threads")
            def fills() -> bytes:
                return big().result()

            if __name__ == "__main__":
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
                resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))
                run = fills.run()
                print("STATE", run.state, run.error)
            """
        )
    )
    results = tmp_path / "results"
    env = {
        **os.environ,
        "DAGFLOW_HOME": str(tmp_path / "home"),
        "DAGFLOW_RESULTS_URL": results.as_uri(),
    }
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert "STATE FAILED" in proc.stdout, proc.stdout + proc.stderr
    assert "File too large" in proc.stdout or "Errno 27" in proc.stdout, proc.stdout
    left = [p for p in results.rglob("*") if p.is_file() and not p.name.startswith(".probe")]
    assert left == [], left


def test_half_written_results_of_a_run_go_when_it_is_read_or_resumed(tmp_path: Path) -> None:
    @task(persist_result=True)
    def part(i: int) -> int:
        return i

    @task
    def fail() -> None:
        raise RuntimeError("stop here")

    @flow(name="halfway")
    def halfway() -> None:
        part.map(range(3))
        fail()

    run = halfway.run()
    assert run.state is S.FAILED
    folder = Path(str(run.task_runs["part[0]"].result_location).removeprefix("file://")).parent
    # what a worker killed while writing a 150 MB result leaves behind
    partial = folder / "part-x1-1.pkl.partial-4242-1"
    partial.write_bytes(b"half")
    assert get_flow_run(run.id).state is S.FAILED
    assert not partial.exists()
    partial.write_bytes(b"half again")
    halfway.resume(run.id)
    assert not partial.exists()
    assert sorted(p.name for p in folder.iterdir() if ".partial-" in p.name) == []
