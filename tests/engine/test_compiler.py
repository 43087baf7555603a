"""The compiler without a cluster: calls become one HighLevelGraph of CallLayers, in Dask's form."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import pytest
from dask.task_spec import Task

from dagflow import allow_failure, task, unmapped
from dagflow.core.graph import RunGraph
from dagflow.engine.compiler import Compiler, to_spec
from dagflow.engine.layers import CallLayer
from dagflow.errors import DefinitionError

RUN_ID = "ab12cd34" + "0" * 24


@task(priority=3, resources={"GPU": 1})
def load(x: int, scale: int = 1) -> int:
    return x * scale


@task
def total(xs: list[int]) -> int:
    return sum(xs)


class Resolver:
    run_id = RUN_ID

    def resolve(self, future: Any, timeout: float | None) -> Any:
        raise AssertionError("not used")

    def wait_for_future(self, future: Any, timeout: float | None) -> None:
        raise AssertionError("not used")

    def future_state(self, future: Any) -> Any:
        raise AssertionError("not used")


def compiler(tmp_path: Path, **kwargs: Any) -> Compiler:
    return Compiler(RUN_ID, "dagflow-topic", results_url=tmp_path.as_uri(), **kwargs)


def test_a_wave_is_one_graph_with_a_layer_per_call(tmp_path: Path) -> None:
    graph = RunGraph(Resolver(), "ab12cd341")
    items = graph.add_map(load, ([1, 2, 3],), {"scale": unmapped(10)})
    graph.add_call(total, (items,), {})
    wave = compiler(tmp_path).compile(graph.take_pending())
    assert wave.keys == [("load-ab12cd341", i) for i in range(3)] + [("total-ab12cd341", 0)]
    layers = wave.graph.layers
    assert sorted(layers) == ["load-ab12cd341-0", "total-ab12cd341-0"]
    mapped = layers["load-ab12cd341-0"]
    assert isinstance(mapped, CallLayer) and len(mapped) == 3
    assert mapped.annotations == {"dagflow_run": RUN_ID, "priority": 3, "resources": {"GPU": 1.0}}
    assert not mapped.is_materialized()  # the scheduler expands it, not the driver
    spec = mapped[("load-ab12cd341", 1)]
    assert isinstance(spec, Task) and spec.key == ("load-ab12cd341", 1)
    reduce = layers["total-ab12cd341-0"][("total-ab12cd341", 0)]
    assert reduce.dependencies == {("load-ab12cd341", i) for i in range(3)}


def test_one_task_call_is_pickled_once_and_shared_by_every_key(tmp_path: Path) -> None:
    graph = RunGraph(Resolver(), "ab12cd341")
    graph.add_map(load, (list(range(100)),), {})
    layer = compiler(tmp_path).compile(graph.take_pending()).graph.layers["load-ab12cd341-0"]
    func = layer.func
    assert func.payload() is func.payload()
    again = pickle.loads(pickle.dumps(func))
    assert again is pickle.loads(pickle.dumps(func))  # workers keep one instance per payload


def test_futures_in_containers_become_task_refs() -> None:
    graph = RunGraph(Resolver(), "ab12cd341")
    [a, b] = graph.add_map(load, ([1, 2],), {})
    spec = to_spec({"pair": (a, [b, 3]), "soft": allow_failure(a), "plain": {1, 2}})
    assert spec.dependencies == {("load-ab12cd341", 0), ("load-ab12cd341", 1)}
    plain = to_spec({"x": [1, (2, 3)]})
    assert plain.dependencies == set()


def test_a_task_whose_function_cannot_be_pickled_is_named(tmp_path: Path) -> None:
    lock = threading.Lock()

    @task
    def locked() -> None:
        with lock:
            pass

    graph = RunGraph(Resolver(), "ab12cd341")
    graph.add_call(locked, (), {})
    with pytest.raises(DefinitionError, match=r"task 'locked' cannot be sent to the cluster"):
        compiler(tmp_path).compile(graph.take_pending())


def test_an_unpicklable_argument_is_named_with_its_place(tmp_path: Path) -> None:
    graph = RunGraph(Resolver(), "ab12cd341")
    graph.add_map(load, ([1, threading.Lock()],), {})
    message = compiler(tmp_path).find_unpicklable(graph.take_pending())
    assert message is not None
    assert message.startswith("task 'load': argument 0 (item 1) of type lock cannot be sent")
