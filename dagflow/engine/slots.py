"""Concurrency slots on the cluster: at most N task runs with a tag at once, across every run.

A limited tag is a `distributed.Semaphore` on the Dask scheduler named after the tag and its
limit (`dagflow-tag:db:2`): the scheduler counts the leases of every worker, so the limit holds
across runs, drivers and workers, and a lease held by a worker that died expires after
`distributed.scheduler.locks.lease-timeout` (30 s by default): its slot comes back. A worker
keeps one `Semaphore` per name (each refreshes its leases while they are held).

A task whose tags have no limit never comes here: its call carries no limits, and the wrapper
checks an empty tuple. Slots are taken in tag order, so two tasks with the same two tags never
hold one each and wait for the other's. Changing a tag's limit makes a new semaphore: runs
started before the change count against the old limit, later ones against the new.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_semaphores: dict[str, Any] = {}
_lock = threading.Lock()


def semaphore_name(tag: str, slots: int) -> str:
    return f"dagflow-tag:{tag}:{slots}"


def _semaphore(tag: str, slots: int) -> Any:
    from distributed import Semaphore

    name = semaphore_name(tag, slots)
    with _lock:
        found = _semaphores.get(name)
        if found is None:
            found = _semaphores[name] = Semaphore(max_leases=slots, name=name)
    return found


def take(limits: tuple[tuple[str, int], ...], waiting: Callable[[str], None]) -> list[Any]:
    """Take a slot of each limited tag, waiting as long as it takes; `waiting(message)` is
    called once per tag whose slots are all taken. Returns what to give back."""
    taken: list[Any] = []
    try:
        for tag, slots in limits:
            sem = _semaphore(tag, slots)
            if not sem.acquire(timeout=0):
                waiting(
                    f"waiting for a concurrency slot of tag {tag!r} "
                    f"(at most {slots} task run{'s' if slots != 1 else ''} at once)"
                )
                sem.acquire()
            taken.append(sem)
    except BaseException:
        give_back(taken)
        raise
    return taken


def give_back(taken: list[Any]) -> None:
    """Release the slots in `taken` (a failed release expires with its lease)."""
    while taken:
        sem = taken.pop()
        try:
            sem.release()
        except Exception:
            log.warning("releasing a concurrency slot of %s failed", sem.name, exc_info=True)
