"""How a run's last lines read: its state and counts, its error, and what to do next.

These are the last lines `dagflow run` and `dagflow resume` print, after the cluster is closed,
so nothing of Dask's can come after them. A run that did not complete says where to look
(`runs show`, `logs`) and what `dagflow resume` would do: which task results it can reuse (those
persisted), or, when none were, how to keep them next time. The exit code says how it ended:
0 completed, 1 failed or crashed, 2 stopped on a user's mistake, 130 cancelled.

They fit an 80-column screen: the run is named by the first 12 characters of its id (its full id
was the first line of the run's output; any unique prefix names a run in every command).
"""

from __future__ import annotations

import reprlib

from rich.console import Console

from dagflow.cli.output import duration, one_line
from dagflow.cli.progress import Counts
from dagflow.core.reuse import ReuseSummary
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.core.text import inert
from dagflow.errors import DagflowError

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

result_repr = reprlib.Repr()
result_repr.maxstring = 200
result_repr.maxother = 200
result_repr.maxlist = result_repr.maxtuple = result_repr.maxdict = result_repr.maxset = 20


def report(
    out: Console, err: Console, flow_run: FlowRun, counts: Counts, resumed: bool = False
) -> int:
    """Print how the run ended (to `out`; the error and the next steps to `err`); the exit code.
    A resumed run also says which task results it reused and which it ran again, and why."""
    took = flow_run.running_time()
    took_text = f" in {duration(took)}" if took is not None else ""
    out.print(
        f"run {flow_run.id[:12]} {flow_run.state}{took_text}: {counts.text(final=True)}",
        markup=False,
        soft_wrap=True,
    )
    if resumed:
        histories = [(t.key, [h.message for h in t.history]) for t in flow_run.task_runs]
        out.print(ReuseSummary.of(histories).text(), markup=False, soft_wrap=True)
    if flow_run.state.is_success:
        try:
            value = f"result: {result_repr.repr(flow_run.result())}"
        except DagflowError as exc:
            value = f"result: not available ({one_line(str(exc))})"
        out.print(value, markup=False, soft_wrap=True)
        return EXIT_COMPLETED
    message = inert(one_line(flow_run.error or "no error recorded"))
    if flow_run.state is StateType.CANCELLED:
        err.print(f"Cancelled: {message}", markup=False, soft_wrap=True, style="yellow")
        code = EXIT_CANCELLED
    else:
        err.print(
            f"Error: run {flow_run.id[:12]} ended {flow_run.state}: {message}",
            markup=False,
            soft_wrap=True,
            style="red",
        )
        cause = flow_run._exception
        usage = isinstance(cause, DagflowError) and cause.exit_code == EXIT_USAGE
        code = EXIT_USAGE if usage else EXIT_FAILED  # a mistake of the user's: definition, storage
    for line in next_steps(flow_run):
        err.print(line, markup=False, soft_wrap=True)
    return code


def next_steps(flow_run: FlowRun) -> list[str]:
    """What to do about a run that did not complete: where to look, and what resume would do.

    Lines fit an 80-column terminal: a command, then what it gives."""
    if flow_run.parent_run_id is not None:
        return []
    ref = flow_run.id[:12]
    tasks = list(flow_run.task_runs.values())
    steps: list[tuple[str, str]] = []
    if any(t.state.is_failure for t in tasks):
        steps.append((f"dagflow runs show {ref}", "failed tasks first, --task KEY: traceback"))
    steps.append((f"dagflow logs {ref}", "log records, retries and failures"))
    kept = sum(1 for t in tasks if t.state.is_success and t.result_location)
    if kept:
        steps.append((f"dagflow resume {ref}", f"reuses {kept} persisted results, reruns the rest"))
    elif tasks:
        every = f"all {len(tasks)} tasks" if len(tasks) > 1 else "its task"
        steps.append((f"dagflow resume {ref}", f"reruns {every}: none persisted"))
        steps.append(("", "(@flow(persist_results=True) keeps them)"))
    else:
        steps.append((f"dagflow resume {ref}", "runs the flow again"))
    width = max(len(command) for command, _ in steps)
    lines = [
        f"{'next:' if i == 0 else '':<5} {c:<{width}}  {what}" for i, (c, what) in enumerate(steps)
    ]
    return [line.rstrip() for line in lines]
