"""Chunked `.map` (issue #15): many items per Dask task, every item still a task run of its own.

On the in-process `local-threads` cluster. Each test says what an item keeps when it runs in a
chunk: its value, state, attempts, retries, timeout, logs, cache entry and recorded history; and
what the chunking itself leaves in the record (its Dask keys, the log line of the sizes chosen).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dask.utils import key_split

from dagflow import (
    FlowRun,
    StateType,
    allow_failure,
    flow,
    get_flow_run,
    get_run_logger,
    task,
    unmapped,
)
from dagflow.core import batching
from dagflow.core.context import current_flow_run
from dagflow.errors import DefinitionError

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("threads_cluster")]

S = StateType


def chunk_notes(run: FlowRun) -> list[str]:
    return [ev.message for ev in run.log_records if "Dask tasks of" in ev.message]


@task
def square(x: int) -> int:
    return x * x


@task(batch_size=50)
def picky(x: int) -> int:
    if x % 100 == 37:
        raise ValueError(f"{x} is not allowed")
    return x


@task
def kind(x: Any) -> str:
    return type(x).__name__


@task
def plus_one(x: int) -> int:
    return x + 1


def test_items_keep_their_values_and_order_in_adaptive_chunks() -> None:
    @flow
    def squares(n: int) -> tuple[int, list[int]]:
        futures = square.map(range(n))
        return futures[873].result(), futures

    run = squares.run(n=1000)
    assert run.state is S.COMPLETED
    one, values = run.result()
    assert one == 873 * 873
    assert values == [x * x for x in range(1000)]
    trs = run.tasks_named("square")
    assert len(trs) == 1000
    assert {tr.state for tr in trs} == {S.COMPLETED}
    assert sorted(tr.map_index for tr in trs) == list(range(1000))  # type: ignore[type-var]
    (note,) = chunk_notes(run)
    assert note.startswith(f"task 'square': {1000 - batching.MIN_PROBES} items in ")
    assert "measured ~" in note


def test_a_failing_item_fails_alone_and_the_record_shows_each_item() -> None:
    @flow
    def mostly(n: int) -> None:
        checked = picky.map(range(n))
        kinds = kind.map(allow_failure(checked))
        assert kinds[137].result() == "ValueError"
        assert kinds[138].result() == "int"

    run = mostly.run(n=300)
    failed = sorted(tr.map_index for tr in run.tasks_named("picky") if tr.state is S.FAILED)  # type: ignore[type-var]
    assert failed == [37, 137, 237]
    bad = run.task_runs["picky[137]"]
    assert bad.error_type == "ValueError"
    assert "137 is not allowed" in (bad.error or "")
    assert run.task_runs["picky[138]"].state is S.COMPLETED
    assert [t.to_state for t in bad.history] == [S.PENDING, S.RUNNING, S.FAILED]
    (note,) = [n for n in chunk_notes(run) if "'picky'" in n]
    assert note == "task 'picky': 300 items in 6 Dask tasks of 50 items"
    assert run.state is S.COMPLETED, "failures passed on through allow_failure are handled"
    recorded = get_flow_run(run.id)
    assert recorded.task_runs["picky[237]"].state is S.FAILED
    assert recorded.task_runs["kind[237]"].state is S.COMPLETED
    assert len(recorded.task_runs) == 600

    @flow
    def strict(n: int) -> None:
        picky.map(range(n))

    failing = strict.run(n=300)
    assert failing.state is S.FAILED
    assert "3 of 300 items of task 'picky' failed; first: [picky[37]]" in (failing.error or "")


def test_retries_with_delays_and_logs_belong_to_the_item(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    @task(batch_size=20, retries=2, retry_delay=0.2)
    def flaky(x: int) -> int:
        mark = marks / f"{x}-{time.monotonic_ns()}"
        mark.touch()
        if x == 7 and len(list(marks.glob("7-*"))) < 3:
            raise OSError("try again")
        get_run_logger().info("item %d done", x)
        return x

    @flow
    def retried() -> list[int]:
        return flaky.map(range(40))

    run = retried.run()
    assert run.state is S.COMPLETED
    assert run.result() == list(range(40))
    tr = run.task_runs["flaky[7]"]
    assert tr.attempts == 3
    assert [t.to_state for t in tr.history] == [
        S.PENDING, S.RUNNING, S.RETRYING, S.RUNNING, S.RETRYING, S.RUNNING, S.COMPLETED,
    ]  # fmt: skip
    assert tr.history[-1].time - tr.history[2].time >= 0.39  # two delays of 0.2 s were waited
    assert run.task_runs["flaky[8]"].attempts == 1
    times = sorted(int(p.name.split("-")[1]) for p in marks.glob("7-*"))
    assert (times[1] - times[0]) / 1e9 >= 0.19
    logs = get_flow_run(run.id).logs()
    mine = [ev for ev in logs if ev.message == "item 12 done"]
    assert len(mine) == 1
    assert mine[0].task_key is not None and mine[0].task_key.endswith("[12]")


def test_one_item_past_its_timeout_ends_timed_out_and_its_chunk_completes() -> None:
    @task(batch_size=10, timeout=0.3)
    def maybe_hangs(x: int) -> int:
        if x == 4:
            time.sleep(2)
        return x

    @flow
    def hanging() -> list[Any]:
        return maybe_hangs.map(range(10))

    started = time.monotonic()
    run = hanging.run()
    assert time.monotonic() - started < 8
    assert run.task_runs["maybe_hangs[4]"].state is S.TIMED_OUT
    others = [tr for tr in run.tasks_named("maybe_hangs") if tr.map_index != 4]
    assert {tr.state for tr in others} == {S.COMPLETED}
    assert run.state is S.FAILED


def test_chained_maps_in_chunks_pass_item_i_to_item_i() -> None:
    @flow
    def chained(n: int) -> list[int]:
        firsts = square.map(range(n))
        seconds = plus_one.map(firsts)
        shared = plus_one.map(seconds, wait_for=[firsts[0]])
        return [seconds[n - 1].result(), *shared]

    run = chained.run(n=500)
    values = run.result()
    assert values[0] == 499 * 499 + 1
    assert values[1:] == [x * x + 2 for x in range(500)]
    # plus_one over square's items fuses into square's chunks (tests/engine/test_fusion.py);
    # the map that also waits for firsts[0] is chunked on its own
    fused, alone = chunk_notes(run)
    assert fused.startswith("task 'square'") and fused.endswith("fused with 'plus_one'")
    assert alone.startswith("task 'plus_one'") and "fused" not in alone


def test_batch_size_one_is_one_dask_task_per_item_and_no_note() -> None:
    @task(batch_size=1)
    def single(x: int) -> int:
        return x

    @flow
    def singles() -> list[int]:
        return single.map(range(30))

    run = singles.run()
    assert run.result() == list(range(30))
    assert chunk_notes(run) == []


def test_a_small_adaptive_map_is_not_batched() -> None:
    @flow
    def small() -> list[int]:
        return square.map(range(batching.MIN_ADAPTIVE_ITEMS - 1))

    run = small.run()
    assert run.result() == [x * x for x in range(batching.MIN_ADAPTIVE_ITEMS - 1)]
    assert chunk_notes(run) == []


def test_long_items_are_never_batched() -> None:
    @task
    def slow(x: int) -> int:
        time.sleep(batching.TARGET_SECONDS * 1.5)
        return x

    @flow
    def slows() -> list[int]:
        return slow.map(range(batching.MIN_ADAPTIVE_ITEMS))

    run = slows.run()
    assert run.result() == list(range(batching.MIN_ADAPTIVE_ITEMS))
    assert chunk_notes(run) == [], "items longer than the target run one Dask task each"


def test_chunk_keys_keep_the_task_name_and_downstream_items_read_their_own(
    tmp_path: Path,
) -> None:
    from dagflow.core.graph import RunGraph
    from dagflow.engine.compiler import Compiler

    class Resolver:
        run_id = "ab12cd34" + "0" * 24

    graph = RunGraph(Resolver(), "ab12cd341")  # type: ignore[arg-type]
    firsts = graph.add_map(square, (list(range(10)),), {})
    graph.add_map(plus_one, (firsts,), {})
    calls = graph.take_pending()
    compiler = Compiler(Resolver.run_id, "topic", results_url=tmp_path.as_uri())
    wave = compiler.compile(calls, {id(calls[0]): [(0, 4), (4, 8), (8, 10)]})
    name = "square-ab12cd341"
    assert wave.keys[:3] == [(name, 0, 4), (name, 4, 8), (name, 8, 10)]
    assert {key_split(k) for k in wave.keys} == {"square", "plus_one"}
    downstream = wave.graph.layers["plus_one-ab12cd341-0"][("plus_one-ab12cd341", 5)]
    assert downstream.dependencies == {(name, 4, 8)}


def test_cached_items_in_chunks(tmp_path: Path) -> None:
    from dagflow.engine.caching import inputs_hash  # noqa: F401  (documents the helper used)

    calls = tmp_path / "calls"
    calls.mkdir()

    def by_value(context: Any, inputs: dict[str, Any]) -> str:
        return f"cached-square-{inputs['x']}"

    @task(batch_size=10, cache_key_fn=by_value)
    def costly(x: int) -> int:
        (calls / str(x)).touch()
        return x * x

    @flow
    def cached(n: int) -> list[int]:
        return costly.map(range(n))

    first = cached.run(n=30)
    assert first.result() == [x * x for x in range(30)]
    second = cached.run(n=40)
    assert second.result() == [x * x for x in range(40)]
    assert {second.task_runs[f"costly[{i}]"].state for i in range(30)} == {S.CACHED}
    assert second.task_runs["costly[35]"].state is S.COMPLETED
    assert len(list(calls.iterdir())) == 40


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", True])
def test_batch_size_must_be_a_positive_int(value: Any) -> None:
    with pytest.raises(DefinitionError, match=r"task 'bad': batch_size must be an int >= 1"):

        @task(name="bad", batch_size=value)
        def bad(x: int) -> int:
            return x


def test_sizing_policy() -> None:
    assert batching.adaptive_size(None, 1000, 4) == 1
    assert batching.adaptive_size(0.5, 1000, 4) == 1  # longer than the target: never batched
    assert batching.adaptive_size(0.001, 100_000, 4) == 150  # ~150 ms per chunk
    assert batching.adaptive_size(0.00001, 1000, 4) == 125  # >= 2 chunks per thread
    assert batching.cut(10, 25, 6) == [(10, 16), (16, 22), (22, 25)]
    assert batching.estimate([0.3, 0.001, 0.002]) == 0.002
    assert batching.probe_count(5, 2) == 4
    assert batching.probe_count(1000, 8) == 8


def test_persisted_items_are_reused_one_by_one_on_resume(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    gate = tmp_path / "gate"

    @task(persist_result=True, batch_size=8)
    def step(i: int) -> int:
        (calls / f"{i}-{time.monotonic_ns()}").touch()
        if i == 13 and not gate.exists():
            raise RuntimeError("gate closed")
        return i

    @flow
    def resumable(n: int) -> int:
        parts = step.map(range(n))
        parts[5].wait()
        assert parts[5].state in (S.COMPLETED, S.CACHED)  # CACHED: reused on resume
        return sum(f.result() for f in parts)

    first = resumable.run(n=24)
    assert first.state is S.FAILED
    locations = {tr.result_location for tr in first.tasks_named("step") if tr.map_index != 13}
    assert len(locations) == 23 and None not in locations, "one persisted result per item"
    gate.touch()
    resumed = resumable.resume(first.id)
    assert resumed.state is S.COMPLETED
    assert resumed.result() == sum(range(24))
    ran_again = [p.name.split("-")[0] for p in calls.iterdir()]
    assert Counter(ran_again)["13"] == 2
    assert sum(Counter(ran_again).values()) == 25, "only the failed item ran again"
    states = Counter(tr.state for tr in resumed.tasks_named("step"))
    assert states == {S.CACHED: 23, S.COMPLETED: 1}


def test_items_that_simply_succeed_travel_as_one_compact_record() -> None:
    from dagflow.core.reports import LogReport, Report, compact_wire, log_wire, parse_reports

    def ok(i: int, t: float) -> list[Report]:
        return [
            Report("t-x1", i, "RUNNING", t, 1, "w"),
            Report("t-x1", i, "COMPLETED", t + 1, 1, "w"),
        ]

    records: list[object] = [
        *ok(0, 10.0),
        *ok(1, 20.0),
        Report("t-x1", 2, "RUNNING", 30.0, 1, "w"),
        log_wire(LogReport("t-x1", 2, 20, 30.5, "a log line keeps its place", "w")),
        Report("t-x1", 2, "FAILED", 31.0, 1, "w", "ValueError: no", "ValueError"),
        *ok(3, 40.0),
    ]
    wire = compact_wire(records)
    assert wire[0] == ("ok", "t-x1", "w", [0, 1, 3], [10.0, 20.0, 40.0], [11.0, 21.0, 41.0])
    assert len(wire) == 4
    back = parse_reports([list(r) for r in wire])
    expected = parse_reports([list(r) for r in records])  # type: ignore[call-overload]
    assert sorted(back, key=lambda r: (r.item, r.time)) == sorted(
        expected, key=lambda r: (r.item, r.time)
    )


@pytest.mark.slow  # starts the `local` cluster's worker processes
def test_chunks_on_worker_processes_report_every_item(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGFLOW_CLUSTER", "local")  # worker processes: reports cross processes

    @flow
    def on_processes(n: int) -> list[Any]:
        checked = picky.map(range(n))
        return kind.map(allow_failure(checked))

    run = on_processes.run(n=200)
    assert run.result() == ["ValueError" if i % 100 == 37 else "int" for i in range(200)]
    recorded = get_flow_run(run.id)
    for record in (run, recorded):
        states = Counter(tr.state for tr in record.tasks_named("picky"))
        assert states == {S.COMPLETED: 198, S.FAILED: 2}
        ok = record.task_runs["picky[5]"]
        assert [t.to_state for t in ok.history] == [S.PENDING, S.RUNNING, S.COMPLETED]
        assert ok.worker is not None and ok.worker.startswith("tcp://")
        assert ok.duration is not None


def test_probes_waiting_for_an_upstream_do_not_hold_the_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batching, "PROBE_START_SECONDS", 0.2)

    @task
    def slow_start(seconds: float) -> int:
        time.sleep(seconds)
        return 1

    @task
    def add_to(x: int, y: int) -> int:
        return x + y

    @flow
    def waits_for_upstream() -> tuple[float, list[int]]:
        base = slow_start(1.5)
        items = add_to.map(range(40), y=unmapped(base))
        context = current_flow_run.get()
        assert context is not None
        started = time.monotonic()
        context.graph.resolver.submit_pending()  # what .result() does first
        return time.monotonic() - started, items

    run = waits_for_upstream.run()
    submitted, values = run.result()
    assert values == list(range(1, 41))
    assert submitted < 1.2, "the body went on before the upstream ended"
    assert chunk_notes(run) == [], "not measured: one item per Dask task"
