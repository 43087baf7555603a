"""The lazy graph: slugs and keys, futures that refuse to be values, `.map`, run ownership."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagflow import DefinitionError, FutureMisuse, TaskFuture, allow_failure, task, unmapped
from dagflow.core.context import FlowRunContext, current_flow_run
from dagflow.core.graph import RunGraph
from dagflow.core.keys import Key, slugify
from dagflow.core.keys import key_text as key_str
from dagflow.core.states import StateType


class Run:
    """The run a graph belongs to, as the graph sees it (the engine's runner plays this part).

    Nothing runs here: `resolve` hands back values set by the test, for `.map` over a future.
    """

    def __init__(self, run_id: str, values: dict[Key, Any] | None = None) -> None:
        self.run_id = run_id
        self.values = values or {}

    def resolve(self, future: TaskFuture[Any], timeout: float | None) -> Any:
        return self.values[future.key]

    def wait_for_future(self, future: TaskFuture[Any], timeout: float | None) -> None:
        return None

    def future_state(self, future: TaskFuture[Any]) -> StateType:
        return StateType.PENDING


def new_graph(run_id: str = "run-1", token: str = "abc1") -> RunGraph:
    return RunGraph(Run(run_id), token)


@task
def extract(source: Any = None) -> int:
    return 1


@task
def combine(*parts: Any, **named: Any) -> int:
    return 0


# -- slugs and keys -------------------------------------------------------------------------------


@given(st.text())
def test_a_slug_is_never_empty_and_has_no_dash(name: str) -> None:
    slug = slugify(name)
    assert slug
    assert "-" not in slug
    assert set(slug) <= set("abcdefghijklmnopqrstuvwxyz0123456789_")
    assert slugify(name) == slug


@pytest.mark.parametrize(
    ("name", "slug"),
    [("extract", "extract"), ("Load Orders-v2", "load_orders_v2"), ("---", "task"), ("", "task")],
)
def test_slug_examples(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_keys_read_as_name_and_index() -> None:
    graph = new_graph(token="ab12cd341")
    futures = graph.add_map(extract, ([1, 2, 3],), {})
    assert [key_str(f.key) for f in futures] == [
        "extract-ab12cd341[0]",
        "extract-ab12cd341[1]",
        "extract-ab12cd341[2]",
    ]
    assert repr(futures[0]) == "TaskFuture('extract', key='extract-ab12cd341[0]')"


calls = st.lists(
    st.tuples(st.sampled_from(["extract", "Extract", "load", "a-b", "a_b"]), st.integers(0, 4)),
    max_size=25,
)


def build(graph: RunGraph, plan: list[tuple[str, int]]) -> list[Key]:
    tasks = {name: task(name=name)(lambda x=None: x) for name, _ in plan}
    keys: list[Key] = []
    for name, size in plan:
        if size == 0:
            keys.append(graph.add_call(tasks[name], (), {}).key)
        else:
            keys.extend(f.key for f in graph.add_map(tasks[name], (list(range(size)),), {}))
    return keys


@given(calls)
def test_keys_are_unique_and_deterministic_for_the_same_call_order(
    plan: list[tuple[str, int]],
) -> None:
    first = build(new_graph("run-1", "tok1"), plan)
    again = build(new_graph("run-2", "tok1"), plan)
    assert first == again
    assert len(set(first)) == len(first)
    for (prefix, index), (name, _) in zip(first, _expand(plan), strict=True):
        assert prefix == f"{slugify(name)}-tok1"
        assert index >= 0


def _expand(plan: list[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    for name, size in plan:
        for i in range(max(size, 1)):
            yield name, i


def test_indexes_count_the_calls_of_each_task_in_call_order() -> None:
    graph = new_graph(token="t1")
    a = graph.add_call(extract, (), {})
    b = graph.add_map(combine, ([1, 2],), {})
    c = graph.add_map(extract, ([1, 2, 3],), {})
    d = graph.add_call(extract, (), {})
    assert a.key == ("extract-t1", 0)
    assert [f.key[1] for f in b] == [0, 1]
    assert [f.key[1] for f in c] == [1, 2, 3]
    assert d.key == ("extract-t1", 4)


# -- futures are not values -----------------------------------------------------------------------

MISUSES: list[tuple[str, Callable[[Any], Any]]] = [
    ("bool", bool),  # `if fut:`
    ("add", lambda f: f + 1),
    ("radd", lambda f: 1 + f),
    ("mul", lambda f: f * 2),
    ("compare", lambda f: f < 2),
    ("len", len),
    ("iter", list),
    ("index", lambda f: f[0]),
    ("contains", lambda f: 1 in f),
    ("int", int),
    ("float", float),
    ("attribute", operator.attrgetter("upper")),
]


@pytest.mark.parametrize(("what", "use"), MISUSES, ids=[m[0] for m in MISUSES])
def test_using_a_future_as_its_value_says_to_call_result(
    what: str, use: Callable[[Any], Any]
) -> None:
    fut = new_graph().add_call(extract, (), {})
    with pytest.raises(FutureMisuse, match=r"call \.result\(\)") as info:
        use(fut)
    assert isinstance(info.value, DefinitionError)
    assert "extract" in str(info.value)


def test_futures_compare_by_identity_and_are_hashable() -> None:
    graph = new_graph()
    a, b = graph.add_call(extract, (), {}), graph.add_call(extract, (), {})
    assert a == a and a != b
    assert len({a, b, a}) == 2
    assert a.run_id == "run-1"
    assert a.task_name == "extract"


# -- run ownership --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrap",
    [
        lambda f: ((f,), {}),
        lambda f: (([1, f],), {}),
        lambda f: ((), {"parts": {"x": f}}),
        lambda f: ((allow_failure(f),), {}),
        lambda f: ((unmapped(f),), {}),
    ],
    ids=["argument", "in a list", "in a dict", "allow_failure", "unmapped"],
)
def test_a_future_of_another_run_is_refused(wrap: Callable[[Any], Any]) -> None:
    other = new_graph("run-old").add_call(extract, (), {})
    args, kwargs = wrap(other)
    with pytest.raises(FutureMisuse, match="belongs to flow run run-old, not to this run"):
        new_graph("run-new").add_call(combine, args, kwargs)


def test_a_future_of_another_run_is_refused_in_wait_for_and_map() -> None:
    other = new_graph("run-old").add_call(extract, (), {})
    graph = new_graph("run-new")
    with pytest.raises(FutureMisuse, match="run-old"):
        graph.add_call(extract, (), {}, wait_for=[other])
    with pytest.raises(FutureMisuse, match="run-old"):
        graph.add_map(extract, ([1, other],), {})
    with pytest.raises(FutureMisuse, match="run-old"):
        graph.add_map(extract, ([1, 2],), {"source": unmapped(other)})
    assert graph.pending == []


# -- dependencies ---------------------------------------------------------------------------------


def test_dependencies_are_found_in_containers_and_split_by_allow_failure() -> None:
    graph = new_graph()
    a, b, c, d = (graph.add_call(extract, (), {}) for _ in range(4))
    call_fut = graph.add_call(
        combine, ([a, (b,)],), {"named": {"x": allow_failure(c)}}, wait_for=[d]
    )
    call = call_fut.call
    assert set(call.refs.hard) == {a.key, b.key, d.key}
    assert set(call.refs.soft) == {c.key}


def test_wait_for_takes_futures_only() -> None:
    graph = new_graph()
    a = graph.add_call(extract, (), {})
    assert set(graph.add_call(extract, (), {}, wait_for=a).call.refs.hard) == {a.key}
    with pytest.raises(DefinitionError, match="wait_for takes task futures, got int"):
        graph.add_call(extract, (), {}, wait_for=[3])


@given(st.lists(st.lists(st.integers(min_value=0, max_value=1000), max_size=4), max_size=20))
def test_a_call_can_only_depend_on_earlier_calls(choices: list[list[int]]) -> None:
    """The graph is acyclic by construction: a future exists only after its call was made."""
    graph = new_graph()
    made: list[TaskFuture[Any]] = []
    for picks in choices:
        upstream = [made[p % len(made)] for p in picks] if made else []
        made.append(graph.add_call(combine, tuple(upstream), {}))
    position = {f.key: i for i, f in enumerate(made)}
    for i, fut in enumerate(made):
        for key in fut.call.refs.hard:
            assert position[key] < i


def test_pending_calls_are_taken_once_in_call_order() -> None:
    graph = new_graph()
    a = graph.add_call(extract, (), {})
    b = graph.add_map(extract, ([1, 2],), {})
    assert [c.futures for c in graph.take_pending()] == [[a], b]
    assert graph.take_pending() == []
    c = graph.add_call(extract, (), {})
    assert [call.futures for call in graph.take_pending()] == [[c]]


# -- .map -----------------------------------------------------------------------------------------


def test_map_makes_one_future_per_item_and_broadcasts_unmapped() -> None:
    graph = new_graph()
    futures = graph.add_map(combine, ([1, 2, 3], (4, 5, 6)), {"named": unmapped([7, 8])})
    assert len(futures) == 3
    call = futures[0].call
    assert call.mapped and call.count == 3
    assert call.kwargs == {"named": [7, 8]}


def test_map_items_may_be_futures_and_each_item_depends_on_its_own() -> None:
    graph = new_graph()
    ups = graph.add_map(extract, ([1, 2, 3],), {})
    downs = graph.add_map(combine, (ups,), {})
    call = downs[0].call
    assert [set(call.item_refs(i).hard) for i in range(3)] == [{u.key} for u in ups]


def test_mapping_over_a_future_maps_over_its_value() -> None:
    run = Run("run-1")
    graph = RunGraph(run, "tok")
    files = graph.add_call(extract, (), {})
    run.values[files.key] = ["a.csv", "b.csv"]
    assert len(graph.add_map(extract, (files,), {})) == 2


def test_map_iterables_of_different_lengths_are_refused_with_their_sizes() -> None:
    graph = new_graph()
    with pytest.raises(DefinitionError) as info:
        graph.add_map(combine, ([1, 2, 3],), {"named": [1, 2]})
    message = str(info.value)
    assert message.startswith("task 'combine': .map() iterables differ in length")
    assert "argument 0 has 3" in message and "argument 'named' has 2" in message


@pytest.mark.parametrize("value", [5, "abc", b"ab", {"a": 1}, unmapped([1, 2])])
def test_map_passes_constants_whole_and_needs_something_to_map_over(value: Any) -> None:
    graph = new_graph()
    with pytest.raises(DefinitionError) as info:
        graph.add_map(extract, (), {"source": value})
    message = str(info.value)
    assert message.startswith("task 'extract': .map() needs at least one iterable argument")
    assert "passed whole to every item" in message
    futures = graph.add_map(combine, ([1, 2],), {"named": value})
    assert len(futures) == 2
    assert futures[0].call.kwargs["named"] == (value.value if type(value) is unmapped else value)


def test_map_over_allow_failure_of_a_list_maps_over_its_items() -> None:
    graph = new_graph()
    upstream = graph.add_map(extract, ([1, 2, 3],), {})
    futures = graph.add_map(combine, (allow_failure(upstream),), {})
    assert len(futures) == 3
    assert [set(futures[0].call.item_refs(i).soft) for i in range(3)] == [{f.key} for f in upstream]


def test_map_needs_an_iterable_argument() -> None:
    with pytest.raises(DefinitionError, match="needs at least one iterable argument"):
        new_graph().add_map(extract, (unmapped([1]),), {})


def test_map_over_an_empty_list_makes_no_futures() -> None:
    assert new_graph().add_map(extract, ([],), {}) == []


# -- calling tasks inside a flow ------------------------------------------------------------------


def test_calling_a_task_inside_a_flow_adds_to_the_graph_and_returns_a_future() -> None:
    graph = new_graph()
    token = current_flow_run.set(FlowRunContext("run-1", "f", graph, None, None))
    try:
        fut = extract(1)
        mapped = extract.map([1, 2])
        submitted = combine.submit(fut, wait_for=mapped)
    finally:
        current_flow_run.reset(token)
    assert isinstance(fut, TaskFuture)
    assert len(mapped) == 2
    assert set(submitted.call.refs.hard) == {fut.key, *(m.key for m in mapped)}
    assert len(graph.pending) == 3


def test_submit_outside_a_flow_says_to_call_the_task() -> None:
    with pytest.raises(DefinitionError, match=r"task 'extract': \.submit\(\) works inside a flow"):
        extract.submit(1)
