"""What the submission of a wave checks and quiets, beside `FlowAttempt` (`attempt.py`).

Before a wave goes out: a task that needs a resource no worker declares fails at once, naming
the resource (instead of waiting forever). While it goes out: Dask's own traceback for an
unpicklable argument is not shown (dagflow names the task and argument in one line). After: the
driver lets go of the arguments the cluster now holds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from dagflow.core.graph import Call
from dagflow.errors import ClusterError


def check_resources(cluster: Any, client: Any, calls: list[Call]) -> None:
    """Fail at submission, instead of waiting forever, when no worker has a task's resource."""
    if cluster.adaptive:
        return  # an adaptive cluster may start workers that have it
    needed: dict[str, float] = {}
    for call in calls:
        for name, amount in call.task.options.resources:
            needed[name] = max(needed.get(name, 0.0), amount)
    if not needed:
        return
    missing = set(missing_resources(client, needed))
    for call in calls:
        for name, amount in call.task.options.resources:
            if name in missing:
                raise ClusterError(
                    f"task {call.task.name!r} needs resource {name}={amount:g}, which no "
                    f"worker of the cluster at {cluster.address} declares; start "
                    f'workers with --resources "{name}={amount:g}"'
                )


class _DropSerializationErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to serialize")


_SERIALIZATION_LOGGERS = ("distributed.protocol.pickle", "distributed.protocol.core")


@contextlib.contextmanager
def quiet_serialization_errors() -> Iterator[None]:
    """While a wave is submitted: Dask's own traceback for an unpicklable argument is not shown.

    The submission then fails, and dagflow names the task and the argument in one line instead
    (`Compiler.find_unpicklable`), so the long traceback before it would only bury that line.
    """
    quiet = _DropSerializationErrors()
    loggers = [logging.getLogger(name) for name in _SERIALIZATION_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def missing_resources(client: Any, required: dict[str, float]) -> list[str]:
    """Names in `required` that no current worker declares with at least that amount."""
    if not required:
        return []
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    missing = []
    for name, amount in required.items():
        if not any((w.get("resources") or {}).get(name, 0) >= amount for w in workers.values()):
            missing.append(name)
    return missing


def forget_arguments(call: Call) -> None:
    """After submission the cluster holds the arguments; drop the driver's references."""
    call.args = ()
    call.kwargs = {}
    call.futures = []
