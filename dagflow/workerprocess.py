"""What dagflow sets up in the worker processes of a local cluster (a Dask worker preload).

The terminal sends Ctrl-C to every process of the foreground job: the driver and the worker
processes its local cluster started. The driver handles it (it cancels the run and closes the
cluster, which stops the workers); a worker process would only print a `KeyboardInterrupt`
traceback. So a worker process ignores SIGINT from the moment this preload is imported (at the
worker's start, before it takes tasks). Only processes that multiprocessing started are touched:
imported in the driver itself, this module changes nothing.

dagflow cancels running tasks on purpose (Ctrl-C, a flow's timeout); Dask's worker then warns
that each cancelled task's coroutine "ended with CancelledError", which tells a user nothing.
`quiet_cancellations` drops that one warning: here in worker processes, and in the CLI's own
process for in-process workers. When the driver closes the cluster, it first asks each worker
process to log nothing more (`go_quiet`, through `client.run`): a worker being stopped while its
scheduler goes away logs a traceback or two, and the driver's last lines must stay last.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading

STATE_MACHINE_LOGGER = "distributed.worker.state_machine"


class _CancellationWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "ended with CancelledError" not in record.getMessage()


def quiet_cancellations() -> None:
    """Drop Dask's warning about a cancelled task's coroutine (in this process)."""
    logger = logging.getLogger(STATE_MACHINE_LOGGER)
    if not any(isinstance(f, _CancellationWarnings) for f in logger.filters):
        logger.addFilter(_CancellationWarnings())


def go_quiet() -> bool:
    """In a worker process that is about to be stopped: log nothing more. True if it did."""
    if multiprocessing.parent_process() is None:
        return False  # a worker in the driver's own process: its logging is the driver's
    names = [n for n in logging.root.manager.loggerDict if n.startswith(("distributed", "tornado"))]
    for name in {*names, "distributed", "tornado"}:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    return True


def ignore_interrupts() -> bool:
    """Ignore SIGINT in this process if it is a worker process; True if it did."""
    if multiprocessing.parent_process() is None:
        return False  # the driver (or a process not started by multiprocessing): leave it be
    if threading.current_thread() is not threading.main_thread():
        return False  # signal handlers can only be set from the main thread
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


if ignore_interrupts():
    quiet_cancellations()
