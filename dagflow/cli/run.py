"""`dagflow run`, `resume` and `inspect`: run a flow with live progress, or look at one.

A run ends with its state, counts and return value, then (if it did not complete) its error and
what to do next (`report.py`); the exit code says how it ended: 0 completed, 1 failed or crashed,
2 a mistake in what was given (file, flow, parameters, cluster), 130 cancelled (Ctrl-C).
Everything that can be checked before the run starts is checked first. The cluster is closed,
quietly, before the last lines are printed: they stay the last thing on the screen.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagflow import runtime
from dagflow.cli.loading import load_flow
from dagflow.cli.progress import RunProgress, setup_logging
from dagflow.cli.report import EXIT_CANCELLED, report, result_repr
from dagflow.clusters.names import resolve_name
from dagflow.core.flow import FlowDefinition
from dagflow.core.params import parse_parameters
from dagflow.core.runs import FlowRun
from dagflow.errors import UsageError

Flow = FlowDefinition[..., Any]


RUN_HELP = """Run a flow from a file or a module and show its progress.

\b
TARGET is FILE.py:FLOW or module.name:FLOW; FLOW is the variable name of the
@flow (or its name=). ":FLOW" may be left out when the file defines one flow.

\b
Parameters:
  --param NAME=VALUE   repeatable. VALUE is a string that the flow's parameter
                       model coerces ("3" for an int becomes 3, "true" a bool).
                       If the string does not validate and VALUE is JSON, the
                       JSON value is used instead: --param 'xs=[1,2]',
                       --param 'opts={"a": 1}', --param 'limit=null'.
  --params-json JSON   a JSON object of parameters; --param entries override it.
Unknown names are rejected, listing the flow's parameters.

\b
Exit codes: 0 completed, 1 failed or crashed, 2 bad usage or parameters,
130 cancelled (Ctrl-C cancels the run's tasks and ends it CANCELLED).
"""


@click.command(help=RUN_HELP)
@click.argument("target", metavar="TARGET")
@click.option("--param", "-p", "pairs", multiple=True, metavar="NAME=VALUE", help="A parameter.")
@click.option("--params-json", metavar="JSON", help="Parameters as a JSON object.")
@click.option(
    "--cluster",
    metavar="NAME",
    help="local, local-threads, a profile name (./clusters/NAME.yaml, $DAGFLOW_HOME/clusters/, or "
    "one shipped with dagflow such as remote) or file, or tcp://host:port "
    "(default: $DAGFLOW_CLUSTER, else the flow's cluster=, else local).",
)
@click.pass_context
def run(
    ctx: click.Context,
    target: str,
    pairs: tuple[str, ...],
    params_json: str | None,
    cluster: str | None,
) -> None:
    def start(flow: Flow, progress: RunProgress) -> FlowRun:
        params = parse_parameters(flow.parameters, flow.validate_parameters, pairs, params_json)
        return runtime.run_flow(flow, params, cluster=cluster, sinks=[progress])

    _execute(ctx, lambda: load_flow(target), start, cluster)


@click.command("resume", short_help="Finish a failed, crashed or cancelled run.")
@click.argument("run_ref", metavar="RUN")
@click.option("--force", is_flag=True, help="Resume even if the flow's graph changed since.")
@click.option(
    "--flow",
    "target",
    metavar="TARGET",
    help="FILE.py:FLOW to load (default: where the run's flow was loaded from).",
)
@click.option("--cluster", metavar="NAME", help="The cluster to run on (as for `dagflow run`).")
@click.pass_context
def resume_command(
    ctx: click.Context, run_ref: str, force: bool, target: str | None, cluster: str | None
) -> None:
    """Finish a FAILED, CRASHED or CANCELLED run under its id, with its recorded parameters,
    reusing every task whose result was persisted. RUN is a run id or a unique prefix of it."""

    def locate() -> Flow:
        recorded = runtime.get_flow_run(run_ref)
        entrypoint = target or recorded.entrypoint
        if not entrypoint:
            raise UsageError(
                f"run {recorded.id} does not say where its flow came from; "
                "name it with --flow FILE.py:FLOW"
            )
        return load_flow(entrypoint)

    def start(flow: Flow, progress: RunProgress) -> FlowRun:
        return runtime.resume(flow, run_ref, force=force, cluster=cluster, sinks=[progress])

    _execute(ctx, locate, start, cluster, resumed=True)


def _execute(
    ctx: click.Context,
    locate: Callable[[], Flow],
    start: Callable[[Flow, RunProgress], FlowRun],
    cluster: str | None,
    resumed: bool = False,
) -> None:
    """Load the flow, run it with a progress display, close the cluster, report, and exit with
    the run's code."""
    # distributed warns when the dashboard's default port is taken; the link we print is right.
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
    progress: RunProgress | None = None
    flow_run: FlowRun | None = None
    console = Console(highlight=False)
    try:
        flow = locate()
        live = console.is_terminal
        setup_logging(console, live=live)
        cluster_name = resolve_name(cluster, flow.options.cluster)
        progress = RunProgress(console, live=live, cluster=cluster_name)
        with progress:
            flow_run = start(flow, progress)
    except KeyboardInterrupt:
        pass  # Ctrl-C before the run began, or a second one: the run (if any) is cancelled
    finally:
        _close_quietly()
    if flow_run is None or progress is None:
        run_id = progress.run_id if progress is not None else None
        click.echo(f"Cancelled: run {run_id} interrupted" if run_id else "Cancelled", err=True)
        ctx.exit(EXIT_CANCELLED)
    err = Console(highlight=False, stderr=True)
    ctx.exit(report(console, err, flow_run, progress.counts(), resumed=resumed))


def _close_quietly() -> None:
    """Close what the run opened (its cluster) before the last lines; Ctrl-C skips the wait."""
    from dagflow.clusters import close_all

    try:
        close_all()
    except KeyboardInterrupt:
        pass


@click.command("inspect", short_help="Show a flow's parameters and their schema.")
@click.argument("target", metavar="TARGET")
@click.option("--json", "as_json", is_flag=True, help="Print only the parameters' JSON schema.")
def inspect_command(target: str, as_json: bool) -> None:
    """Show a flow's parameters and their JSON schema (TARGET as for `run`)."""
    flow = load_flow(target)
    schema = flow.parameters_schema()
    if as_json:
        click.echo(json.dumps(schema, indent=2))
        return
    console = Console(highlight=False)
    console.print(f"flow: {flow.name}", markup=False)
    console.print(f"version: {flow.version or '-'}", markup=False)
    console.print(f"description: {flow.description or '-'}", markup=False)
    table = Table("name", "type", "default", "required", title="parameters", title_justify="left")
    model = flow.parameters
    fields = model.model.model_fields
    for name, param in model.signature.parameters.items():
        if name == model.var_keyword:
            row = [f"**{name}", "any", "", "no (extra names accepted)"]
        else:
            required = param.default is inspect.Parameter.empty
            default = "" if required else result_repr.repr(param.default)
            row = [name, _type_text(fields[name].annotation), default, "yes" if required else "no"]
        table.add_row(*(Text(cell) for cell in row))  # Text: `list[int]` is not markup
    console.print(table)
    console.print("JSON schema:", markup=False)
    console.print(json.dumps(schema, indent=2), markup=False, soft_wrap=True)


def _type_text(annotation: Any) -> str:
    if annotation is Any:
        return "any"
    if type(annotation) is type:
        return annotation.__name__
    return str(annotation).replace("typing.", "")
