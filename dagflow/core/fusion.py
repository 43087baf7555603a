"""Which maps of a wave fuse: `b.map(a.map(xs))` runs a and b for the same item in one chunk.

Like Dask's blockwise fusion, a chain of item-wise maps becomes one Dask task per chunk: item i
of `a` runs, then item i of `b` on its value, on the same worker, in the same pass. Nothing
travels between workers and the scheduler sees one task per chunk instead of one per map, while
each task's item keeps its own states, attempts, logs and result (`engine/chunks.run_fused`).

A map follows a group (its head and the maps already fused to it) when it needs nothing but one
of them, item by item: exactly one mapped argument holds futures, its item i is item i of a map
of the group, with the same number of items; no other argument or `wait_for` refers to a future,
and it may run in chunks (`batch_size` is not 1). Anything more (an `allow_failure` item, a second
upstream, a shared future) keeps it a map of its own, chunked as before. So a fused chunk depends
on its head's upstreams only, and no cycle can appear through it.

This module is pure: it reads the calls of the flow's graph and decides nothing about sizes.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagflow.core.graph import Call, Column, TaskFuture


def source_of(group: Sequence[Call], call: Call) -> int | None:
    """The index in `group` of the map that `call` consumes item by item, or None when `call`
    cannot follow the group (see the module's rule)."""
    if not call.mapped or call.task.options.batch_size == 1 or call.refs:
        return None
    source: int | None = None
    for value in (*call.args, *call.kwargs.values()):
        if type(value) is not Column or value.refs is None:
            continue
        if source is not None:
            return None  # a second mapped argument with futures
        source = _aligned(group, call, value)
        if source is None:
            return None
    return source


def _aligned(group: Sequence[Call], call: Call, column: Column) -> int | None:
    first = column.values[0] if column.values else None
    if type(first) is not TaskFuture:
        return None
    name, start = first.key
    n = next(
        (k for k, m in enumerate(group) if (m.name, m.start, m.count) == (name, start, call.count)),
        None,
    )
    if n is None:
        return None
    assert column.refs is not None
    for i, (value, refs) in enumerate(zip(column.values, column.refs, strict=True)):
        if type(value) is not TaskFuture or value.key != (name, start + i):
            return None
        if refs.soft or len(refs.hard) != 1:
            return None
    return n


def stages_of(groups: dict[int, list[tuple[Call, int]]]) -> dict[int, tuple[int, int]]:
    """For each follower of `groups` (`fusion_groups`' form), keyed by its id: its head's id and
    its stage in the fused chunk (1 for the first follower; the head is stage 0)."""
    return {
        id(call): (head_id, n)
        for head_id, followers in groups.items()
        for n, (call, _) in enumerate(followers, 1)
    }


def fusion_groups(calls: Sequence[Call]) -> dict[int, list[tuple[Call, int]]]:
    """For each map of `calls` (in call order) that heads a fused group: its followers, each with
    the index of the group member it consumes (0 for the head). Keyed by `id(head)`."""
    groups: dict[int, list[tuple[Call, int]]] = {}
    taken: set[int] = set()
    for n, head in enumerate(calls):
        if id(head) in taken or not head.mapped or head.task.options.batch_size == 1:
            continue
        members = [head]
        followers: list[tuple[Call, int]] = []
        for call in calls[n + 1 :]:
            if id(call) in taken:
                continue
            source = source_of(members, call)
            if source is not None:
                members.append(call)
                followers.append((call, source))
                taken.add(id(call))
        if followers:
            groups[id(head)] = followers
            taken.add(id(head))
    return groups
