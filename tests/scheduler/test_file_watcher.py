"""The files watcher in-process on real files and a real store: settle, window, pause, URLs.

`step()` is one look, as the serve process's watcher thread makes it; time passes for real
(settle times of a few tenths of a second)."""

from __future__ import annotations

import time
from pathlib import Path

import fsspec
import pytest

from dagflow import triggers
from dagflow.core.deployments import Deployment
from dagflow.core.triggers import FilesTrigger
from dagflow.scheduler.files import FileWatcher
from dagflow.store import Store


def deployment(trigger: FilesTrigger, paused: bool = False, **params: str) -> Deployment:
    return Deployment(
        name="inbox",
        flow_name="ingest",
        entrypoint="flows.py:ingest",
        parameters=params or {"path": "{{ event.path }}"},
        triggers=(trigger,),
        paused=paused,
    )


def watcher(store: Store, dep: Deployment, box: list[Deployment] | None = None) -> FileWatcher:
    current = (lambda: box[0]) if box else (lambda: dep)
    return FileWatcher(store, dep.full_name, dep.triggers[0], current, lambda: None)  # type: ignore[arg-type]


def paths_run(store: Store) -> list[object]:
    return sorted(
        r.parameters.get("path") or r.parameters.get("paths")  # type: ignore[misc]
        for r in store.list_flow_runs(limit=1000)
        if r.deployment == "ingest/inbox"
    )


def settle_steps(w: FileWatcher, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        w.step()
        time.sleep(0.05)


def test_a_file_fires_once_settled_and_again_only_when_rewritten(
    store: Store, tmp_path: Path
) -> None:
    dep = deployment(triggers.files(str(tmp_path / "*.csv"), settle=0.3))
    w = watcher(store, dep)
    (tmp_path / "a.csv").write_text("1\n")
    w.step()
    assert paths_run(store) == []  # seen, not settled yet
    settle_steps(w, 0.6)
    assert paths_run(store) == [str(tmp_path / "a.csv")]
    settle_steps(w, 0.4)
    assert len(paths_run(store)) == 1
    (tmp_path / "a.csv").write_text("1\n2\n")  # a new version: a new event
    settle_steps(w, 0.8)
    assert len(paths_run(store)) == 2
    restarted = watcher(store, dep)  # remembers nothing in memory: the store does
    settle_steps(restarted, 0.8)
    assert len(paths_run(store)) == 2


def test_a_window_gathers_files_into_one_run(store: Store, tmp_path: Path) -> None:
    dep = deployment(
        triggers.files(str(tmp_path / "*.csv"), settle=0.1, window=0.8),
        paths="{{ event.paths }}",
    )
    w = watcher(store, dep)
    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / name).write_text("x\n")
    settle_steps(w, 1.5)
    runs = [r for r in store.list_flow_runs(limit=10) if r.deployment == "ingest/inbox"]
    assert len(runs) == 1
    expected = [str(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv")]
    assert sorted(runs[0].parameters["paths"]) == expected
    assert len(store.events(run_id=runs[0].id)) == 3


def test_a_paused_deployment_fires_on_resume(store: Store, tmp_path: Path) -> None:
    trigger = triggers.files(str(tmp_path / "*.csv"), settle=0.1)
    box = [deployment(trigger, paused=True)]
    w = watcher(store, box[0], box)
    (tmp_path / "a.csv").write_text("x\n")
    settle_steps(w, 0.5)
    assert paths_run(store) == []
    box[0] = deployment(trigger)
    settle_steps(w, 0.3)
    assert paths_run(store) == [str(tmp_path / "a.csv")]


def test_an_fsspec_url_is_polled(store: Store) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/dagflow-test-in/x.json", b"{}")
    fs.pipe("/dagflow-test-in/y.txt", b"no")
    try:
        dep = deployment(triggers.files("memory://dagflow-test-in/*.json", settle=0.0))
        w = watcher(store, dep)
        w.step()
        [path] = paths_run(store)
        assert str(path).startswith("memory://") and str(path).endswith("x.json")
    finally:
        fs.rm("/dagflow-test-in", recursive=True)


def test_a_template_naming_a_missing_field_starts_no_run_and_says_why(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dep = deployment(triggers.files(str(tmp_path / "*.csv"), settle=0.0), path="{{ event.nope }}")
    (tmp_path / "a.csv").write_text("x\n")
    with caplog.at_level("WARNING", logger="dagflow.scheduler"):
        watcher(store, dep).step()
    assert paths_run(store) == []
    [record] = store.events("ingest/inbox")
    assert record.run_id is None and "nope" in (record.error or "")
    assert any("started no run" in r.getMessage() for r in caplog.records)
