"""The child process that runs one claimed run: `python -m dagflow.scheduler.child RUN_ID ...`.

`dagflow serve` starts one per run, in a session of its own (a terminal's Ctrl-C reaches only the
serve process, which decides what the runs do), so a crash, a leak or a hang in one run never
takes down the service or the other runs. The child:

1. reads the run and its deployment from the store, loads the flow from the entrypoint (a fresh
   import: the file as it is now) and validates the run's parameters against it; if either fails,
   the run ends FAILED with that one line and the child exits `EXIT_NOT_STARTED`;
   (the cluster is connected to here too: one that cannot be reached fails the run the same way);
2. takes the run (SCHEDULED -> PENDING, only if still claimed by its serve process and not
   cancelled); if it may not, it exits `EXIT_NOT_TAKEN` without running anything;
3. runs it under the same id on the cluster it was given (`runtime.run_flow(scheduled=True)`)
   and exits 0 (completed), 1 (failed or crashed) or 130 (cancelled).

With `--resume`, the run is an ended one (FAILED, TIMED_OUT, CRASHED, CANCELLED) whose resume
request its serve process claimed (`store/control.py`): the child resumes it under its id as
`dagflow resume` does (`runtime.resume`), reusing persisted task results; a flow that no longer
loads leaves the run as it was, with that line on the serve process's output (`EXIT_NOT_STARTED`).

SIGTERM (what serve sends on a second Ctrl-C) cancels the run: its Dask work is cancelled and it
ends CANCELLED. `LOADING` is set while the flow's file is imported, so a file that calls
`flow.serve(...)` at import time does not start a second service inside the child.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from types import FrameType

from dagflow.errors import DagflowError

EXIT_COMPLETED, EXIT_FAILED, EXIT_NOT_STARTED, EXIT_NOT_TAKEN, EXIT_CANCELLED = 0, 1, 2, 3, 130
LOADING = False  # True while this process imports a deployment's flow

log = logging.getLogger("dagflow.scheduler.child")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dagflow.scheduler.child")
    parser.add_argument("run_id")
    parser.add_argument("--served-by", required=True)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--resume", action="store_true", help="resume the ended run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.resume:
            return resume(args.run_id, args.cluster)
        return run(args.run_id, args.served_by, args.cluster)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    finally:
        # A forked child ends with os._exit (no atexit): disconnect from the shared cluster here,
        # cleanly, or the scheduler logs the lost connection as a CRITICAL error.
        from dagflow.clusters.closing import close_all

        close_all()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(run_id: str, served_by: str, cluster: str) -> int:
    """Load, take and run `run_id`; the exit code says how it went (see the module docstring)."""
    global LOADING

    from dagflow import runtime
    from dagflow.entrypoints import load_flow

    store = runtime.default_store()
    recorded = store.get_flow_run(run_id, task_history=False)
    t_loaded = time.time()
    try:
        if not recorded.deployment or not recorded.entrypoint:
            raise DagflowError(f"run {run_id} is not a deployment's run")
        LOADING = True
        try:
            flow = load_flow(recorded.entrypoint)
        finally:
            LOADING = False
        if flow.name != recorded.flow_name:
            raise DagflowError(
                f"{recorded.entrypoint} is now flow {flow.name!r}, not {recorded.flow_name!r}"
            )
        params = flow.validate_parameters(recorded.parameters)
        from dagflow.clusters import get_cluster

        get_cluster(cluster)  # opened once per process: the run below uses it
    except DagflowError as exc:
        message = f"deployment {recorded.deployment}: run not started: {_one_line(exc)}"
        store.fail_unstarted(run_id, served_by, message, type(exc).__name__)
        store.close()
        print(message, file=sys.stderr, flush=True)
        return EXIT_NOT_STARTED
    if not store.take_run(run_id, served_by):
        store.close()
        return EXIT_NOT_TAKEN
    log.debug("run %s: loaded in %.3fs", run_id, time.time() - t_loaded)
    flow_run = runtime.run_flow(flow, params, cluster=cluster, run_id=run_id, scheduled=True)
    runtime.close_stores()
    if flow_run.state.is_success:
        return EXIT_COMPLETED
    if flow_run.state.value == "CANCELLED":
        return EXIT_CANCELLED
    return EXIT_FAILED


def resume(run_id: str, cluster: str) -> int:
    """Resume ended run `run_id` (its serve process claimed its resume request); the exit code.
    `runtime.resume` checks again that it ended in a state that resumes."""
    global LOADING

    from dagflow import runtime
    from dagflow.entrypoints import load_flow

    try:
        entrypoint = runtime.default_store().get_flow_run(run_id, task_history=False).entrypoint
        if not entrypoint:
            raise DagflowError(f"run {run_id} does not say where its flow came from")
        LOADING = True
        try:
            flow = load_flow(entrypoint)
        finally:
            LOADING = False
        from dagflow.clusters import get_cluster

        get_cluster(cluster)
        flow_run = runtime.resume(flow, run_id, cluster=cluster)
    except DagflowError as exc:
        print(f"run {run_id}: resume not started: {_one_line(exc)}", file=sys.stderr, flush=True)
        runtime.close_stores()
        return EXIT_NOT_STARTED
    runtime.close_stores()
    if flow_run.state.is_success:
        return EXIT_COMPLETED
    if flow_run.state.value == "CANCELLED":
        return EXIT_CANCELLED
    return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
