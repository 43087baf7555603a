"""Refusing a cycle in a flow's graph before anything runs.

A call's dependencies are found when it is made, so they are earlier calls and the graph is
acyclic by construction, except one way: a container passed to a call and changed afterwards
(`box = [g]; f = b(box); box.append(f)`). The compiler asks `check_no_cycle` of every call it
compiles, since containers may have changed since the call.
"""

from __future__ import annotations

from dagflow.core.graph import Call, Column, TaskFuture, futures_in, holds_futures
from dagflow.core.keys import logical_of
from dagflow.errors import DefinitionError


def check_no_cycle(call: Call) -> bool:
    """Whether `call`'s arguments hold futures now; refuse one that makes a cycle.

    A call's dependencies are found when it is made, so they are earlier calls. A container
    passed to it and changed afterwards (`box = [g]; f = b(box); box.append(f)`) can make a task
    depend on itself, or on a later call that depends on it: a cycle, refused here, before
    anything runs, naming the tasks. A later call added that way without a cycle is allowed.
    """
    found = False
    for value in (*call.args, *call.kwargs.values()):
        items = value.values if type(value) is Column else (value,)
        for item in items:
            if type(item) is not TaskFuture and not holds_futures(item):
                continue
            for future in futures_in(item):
                found = True
                if future.call.seq >= call.seq and _reaches(future.call, call):
                    this = f"task {call.task.name!r} [{logical_of(call.name, call.start)}]"
                    if future.call is call:
                        cycle = f"{this} would wait for itself"
                    else:
                        that = f"task {future.task_name!r} [{logical_of(*future.key)}]"
                        cycle = f"{this} would wait for {that}, which waits for it"
                    raise DefinitionError(
                        f"cycle: {cycle}: an argument was changed after the call to hold a "
                        "future of a later call; pass futures when calling"
                    )
    return found


def _reaches(start: Call, target: Call) -> bool:
    """Whether `target` is among `start`'s dependencies (or is `start`), following calls."""
    stack, seen = [start], set()
    while stack:
        current = stack.pop()
        if current is target:
            return True
        if id(current) in seen or current.seq < target.seq:
            continue
        seen.add(id(current))
        stack.extend(f.call for f in (*current.refs.hard.values(), *current.refs.soft.values()))
        for value in (*current.args, *current.kwargs.values()):
            if type(value) is Column and value.refs is not None:
                for refs in value.refs:
                    stack.extend(f.call for f in (*refs.hard.values(), *refs.soft.values()))
            elif type(value) is TaskFuture or holds_futures(value):
                stack.extend(f.call for f in futures_in(value))
    return False
