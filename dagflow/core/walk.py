"""Walking nested task arguments: the one definition of which containers dagflow looks inside.

A task's arguments may hold futures (and, on a worker, upstream failures) inside lists, tuples,
sets, frozensets and dict values, at any depth. Everything that has to find or replace those
values (the graph collecting a call's dependencies, the compiler writing Dask task specs, the
runner resolving a flow's return value, the wrapper handing `allow_failure` errors to a task) goes
through `leaves` and `transform` here, so they all agree on what is looked into. Other objects,
including subclasses of these containers and dataclasses, are leaves: they travel as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

CONTAINERS: frozenset[type] = frozenset({list, tuple, set, frozenset, dict})

Build = Callable[[type, list[Any]], Any]


def is_container(value: Any) -> bool:
    """True for the containers dagflow looks inside (exact types, not subclasses)."""
    return type(value) in CONTAINERS


def leaves(value: Any) -> Iterator[Any]:
    """Every value inside `value` that is not a container, depth first (dicts: their values)."""
    kind = type(value)
    if kind not in CONTAINERS:
        yield value
        return
    items = value.values() if kind is dict else value
    for item in items:
        if type(item) in CONTAINERS:
            yield from leaves(item)
        else:
            yield item


def _rebuild(kind: type, items: list[Any], keys: list[Any] | None) -> Any:
    if kind is dict:
        assert keys is not None
        return dict(zip(keys, items, strict=True))
    return items if kind is list else kind(items)


def transform(value: Any, leaf: Callable[[Any], Any], build: Build | None = None) -> Any:
    """`value` with every leaf replaced by `leaf(x)`.

    Containers are rebuilt with their own type, or by `build(kind, items)` when given (for a
    dict, `items` is a list of `(key, value)` pairs), which is how the compiler makes Dask's
    `List`/`Dict` specs from the same walk.
    """
    kind = type(value)
    if kind not in CONTAINERS:
        return leaf(value)
    if kind is dict:
        keys = list(value)
        items = [transform(v, leaf, build) for v in value.values()]
        if build is not None:
            return build(dict, list(zip(keys, items, strict=True)))
        return _rebuild(dict, items, keys)
    items = [transform(v, leaf, build) for v in value]
    return build(kind, items) if build is not None else _rebuild(kind, items, None)
