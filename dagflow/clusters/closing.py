"""Closing the clusters this process opened: quietly, and with their futures released first.

A run's last lines (its state, counts, error, what to do next) must be the last thing on the
screen, so closing says nothing: the client's futures are released before the workers go (a
worker removed while it holds wanted results makes the scheduler warn that it lost them, one key
at a time), the worker processes are asked to log nothing more, and Dask's own shutdown logging
in this process is silenced while the cluster closes. In-process workers are closed without
waiting for a cancelled task's thread, which Python cannot stop (closing would wait 30 s for
it). Everything `opening.get_cluster` opened is closed at interpreter exit; the CLI closes it
earlier, before it prints a run's summary.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from dagflow.clusters.opening import ClusterHandle, take, take_all

log = logging.getLogger(__name__)

QUIET_LOGGERS = ("distributed", "tornado", "bokeh")
RELEASE_WAIT_SECONDS = 5.0
QUIET_WORKERS_SECONDS = 5.0


def close(name: str) -> None:
    """Close the cluster `name` resolves to, if this process opened it."""
    handle = take(name)
    if handle is not None:
        close_handle(handle)


def close_handle(handle: ClusterHandle) -> None:
    """Release the client's futures, then close client and cluster, saying nothing."""
    with quiet_dask():
        try:
            if handle.cluster is not None:
                release_futures(handle.client)
                quiet_workers(handle.client)
            stop_listening(handle.client)
            handle.client.close()
            if handle.cluster is not None:
                close_thread_workers(handle.cluster)
                handle.cluster.close()
        except Exception:
            log.debug("error closing cluster %s", handle.name, exc_info=True)


def stop_listening(client: Any) -> None:
    """Unsubscribe from the scheduler's `all` topic (the engine listens there for lost workers):
    a client still subscribed is sent its own `remove-client` event as it disconnects, and the
    scheduler logs a CRITICAL "Closed comm" traceback for each such client."""
    with contextlib.suppress(Exception):
        client.unsubscribe_topic("all")


def release_futures(client: Any, wait: float = RELEASE_WAIT_SECONDS) -> None:
    """Release every future `client` holds and wait (up to `wait` s) until no worker keeps their
    results: removing a worker that still holds wanted results makes the scheduler warn that it
    lost them, listing every key."""
    from distributed import Future

    keys = list(client.futures)
    if not keys or client.status != "running":
        return
    client.cancel([Future(key, client) for key in keys], reason="the run is over")
    wanted = set(keys)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        held = client.has_what()
        if not any(wanted.intersection(on_worker) for on_worker in held.values()):
            return
        time.sleep(0.05)


def quiet_workers(client: Any) -> None:
    """Ask the cluster's worker processes to log nothing more: they are about to be stopped."""
    from dagflow.workerprocess import go_quiet

    if client.status != "running":
        return
    try:
        client.run(go_quiet, on_error="ignore", callback_timeout=QUIET_WORKERS_SECONDS)
    except Exception:
        log.debug("could not quiet the workers", exc_info=True)


def close_thread_workers(cluster: Any) -> None:
    """Close the cluster's in-process workers without waiting for their task threads.

    Python cannot stop a thread: a task cancelled while it runs (Ctrl-C, a timeout) keeps its
    worker thread until its function returns, and closing the worker would wait for it (30 s by
    default). Those threads are daemon threads; the process may end without them."""
    from distributed import Worker

    workers = [w for w in getattr(cluster, "workers", {}).values() if isinstance(w, Worker)]
    for worker in workers:
        try:
            cluster.sync(worker.close, executor_wait=False, reason="dagflow closes its cluster")
        except Exception:
            log.debug("closing worker %s failed", worker, exc_info=True)


@contextlib.contextmanager
def quiet_dask() -> Iterator[None]:
    """Silence Dask's loggers (this process) while a cluster shuts down."""
    loggers = [logging.getLogger(name) for name in _dask_logger_names()]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _dask_logger_names() -> list[str]:
    names = [name for name in logging.root.manager.loggerDict if name.startswith(QUIET_LOGGERS)]
    return sorted(set(names) | set(QUIET_LOGGERS))


def close_all() -> None:
    """Close every cluster this process opened (also run at exit)."""
    for handle in take_all():
        close_handle(handle)


atexit.register(close_all)
