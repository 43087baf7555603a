"""Fusion of item-wise chains of maps (issue #15): `b.map(a.map(xs))` runs a and b for the same
item in one chunk, one Dask task per chunk, each task's item still a task run of its own.

Which maps fuse is pure logic (`core/fusion.py`), tested on a flow's graph without a cluster; the
rest runs on real clusters: the in-process one, and worker processes for what crosses them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from dagflow import FlowRun, StateType, allow_failure, flow, get_flow_run, task, unmapped
from dagflow.core.fusion import fusion_groups
from dagflow.core.graph import RunGraph

S = StateType


@task
def double(x: int) -> int:
    return 2 * x


@task
def add_one(x: int) -> int:
    return x + 1


@task(batch_size=1)
def alone(x: int) -> int:
    return x


@task
def fragile(x: int) -> int:
    if x % 50 == 7:
        raise ValueError(f"item {x} breaks")
    return x


def fused_notes(run: FlowRun) -> list[str]:
    return [ev.message for ev in run.log_records if "fused with" in ev.message]


# ---------------------------------------------------------------------- which maps fuse


class _Resolver:
    run_id = "ab12cd34" + "0" * 24


def _calls(build: Any) -> list[Any]:
    graph = RunGraph(_Resolver(), "ab12cd341")  # type: ignore[arg-type]
    build(graph)
    return graph.take_pending()


def test_a_map_of_a_map_item_by_item_follows_it() -> None:
    calls = _calls(lambda g: g.add_map(add_one, (g.add_map(double, (list(range(20)),), {}),), {}))
    assert fusion_groups(calls) == {id(calls[0]): [(calls[1], 0)]}


def test_a_chain_and_two_consumers_of_one_map_all_follow_it() -> None:
    def build(g: RunGraph) -> None:
        a = g.add_map(double, (list(range(20)),), {})
        b = g.add_map(add_one, (a,), {})
        g.add_map(double, (b,), {})  # consumes b: stage 1
        g.add_map(add_one, (), {"x": a})  # consumes a again, as a keyword

    calls = _calls(build)
    assert fusion_groups(calls) == {id(calls[0]): [(calls[1], 0), (calls[2], 1), (calls[3], 0)]}


@pytest.mark.parametrize(
    "build",
    [
        # a second upstream, shared by every item
        lambda g, a: g.add_map(add_one, (a,), {}, wait_for=[a[0]]),
        # failures passed on: the item may run on an error, not fused
        lambda g, a: g.add_map(add_one, (allow_failure(a),), {}),
        # items out of order
        lambda g, a: g.add_map(add_one, (list(reversed(a)),), {}),
        # a shared future argument
        lambda g, a: g.add_map(add_one, (a,), {"y": unmapped(a[0])}),
        # one item per Dask task, on purpose
        lambda g, a: g.add_map(alone, (a,), {}),
        # fewer items than the map has
        lambda g, a: g.add_map(add_one, (a[:5],), {}),
    ],
)
def test_a_map_that_needs_more_than_its_source_item_does_not_follow(build: Any) -> None:
    def make(g: RunGraph) -> None:
        a = g.add_map(double, (list(range(20)),), {})
        build(g, a)

    calls = _calls(make)
    assert fusion_groups(calls) == {}


def test_a_single_call_never_heads_or_follows() -> None:
    def build(g: RunGraph) -> None:
        one = g.add_call(double, (3,), {})
        g.add_map(add_one, (list(range(20)),), {})
        g.add_call(add_one, (one,), {})

    assert fusion_groups(_calls(build)) == {}


# ---------------------------------------------------------------------- fused runs


@pytest.mark.cluster
@pytest.mark.usefixtures("threads_cluster")
def test_a_fused_chain_keeps_every_items_value_state_and_record() -> None:
    @flow
    def chain(n: int) -> tuple[int, list[int], list[int]]:
        doubled = double.map(range(n))
        plus = add_one.map(doubled)
        return plus[123].result(), doubled, plus

    run = chain.run(n=600)
    assert run.state is S.COMPLETED
    one, doubled, plus = run.result()
    assert one == 247
    assert doubled == [2 * x for x in range(600)]
    assert plus == [2 * x + 1 for x in range(600)]
    (note,) = fused_notes(run)
    assert note.startswith("task 'double': ") and note.endswith("fused with 'add_one'")
    recorded = get_flow_run(run.id)
    for record in (run, recorded):
        for name in ("double", "add_one"):
            trs = record.tasks_named(name)
            assert len(trs) == 600 and {tr.state for tr in trs} == {S.COMPLETED}
        item = record.task_runs["add_one[321]"]
        assert [h.to_state for h in item.history] == [S.PENDING, S.RUNNING, S.COMPLETED]


@pytest.mark.cluster
@pytest.mark.usefixtures("threads_cluster")
def test_a_failed_item_fails_its_own_chain_only() -> None:
    @flow
    def chain(n: int) -> list[Any]:
        checked = fragile.map(range(n))
        return add_one.map(checked)

    run = chain.run(n=200)
    assert run.state is S.FAILED
    states = Counter(tr.state for tr in run.tasks_named("add_one"))
    assert states == {S.COMPLETED: 196, S.UPSTREAM_FAILED: 4}
    assert run.task_runs["add_one[7]"].state is S.UPSTREAM_FAILED
    assert run.task_runs["fragile[7]"].state is S.FAILED
    assert run.task_runs["add_one[8]"].state is S.COMPLETED
    assert len(fused_notes(run)) == 1


@pytest.mark.cluster
def test_fused_items_run_on_one_worker_in_one_dask_task_per_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAGFLOW_CLUSTER", "local")  # worker processes

    @task
    def located(x: int) -> tuple[int, str]:
        from distributed import get_worker

        return x, str(get_worker().address)

    @task
    def located_again(pair: tuple[int, str]) -> tuple[str, str]:
        from distributed import get_worker

        return pair[1], str(get_worker().address)

    @flow
    def spread(n: int) -> list[tuple[str, str]]:
        return located_again.map(located.map(range(n)))

    run = spread.run(n=400)
    assert run.state is S.COMPLETED
    pairs = run.result()
    assert len(pairs) == 400
    assert all(first == second for first, second in pairs), "an item crossed workers"
    assert len(fused_notes(run)) == 1
    for record in (run, get_flow_run(run.id)):
        assert len(record.tasks_named("located_again")) == 400
        for i in (0, 250, 399):
            a, b = record.task_runs[f"located[{i}]"], record.task_runs[f"located_again[{i}]"]
            assert a.worker == b.worker and a.worker is not None


@pytest.mark.cluster
@pytest.mark.usefixtures("threads_cluster")
def test_a_fused_chain_resumes_item_by_item(tmp_path: Any) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    gate = tmp_path / "gate"

    @task(persist_result=True, batch_size=8)
    def load(i: int) -> int:
        (calls / f"load-{i}-{time.monotonic_ns()}").touch()
        return i

    @task(persist_result=True, batch_size=8)
    def finish(i: int) -> int:
        (calls / f"finish-{i}-{time.monotonic_ns()}").touch()
        if i == 13 and not gate.exists():
            raise RuntimeError("gate closed")
        return 10 * i

    @flow
    def resumable(n: int) -> int:
        return sum(f.result() for f in finish.map(load.map(range(n))))

    first = resumable.run(n=24)
    assert first.state is S.FAILED
    assert len(fused_notes(first)) == 1
    gate.touch()
    resumed = resumable.resume(first.id)
    assert resumed.state is S.COMPLETED, resumed.error
    assert resumed.result() == 10 * sum(range(24))
    ran = Counter(p.name.rsplit("-", 1)[0] for p in calls.iterdir())
    assert ran["finish-13"] == 2
    assert sum(ran.values()) == 24 + 24 + 1, "only the failed item ran again"
    assert Counter(tr.state for tr in resumed.tasks_named("load")) == {S.CACHED: 24}
    assert Counter(tr.state for tr in resumed.tasks_named("finish")) == {
        S.CACHED: 23,
        S.COMPLETED: 1,
    }
