"""The `dagflow` command: run a flow from a file or a module with live progress; inspect one.

What a user typed is checked before anything runs: a missing file, module or flow, an import
error in the user's file, a bad parameter or an unknown cluster each end in one line on stderr
and exit code 2, never a traceback. A run ends with its state, counts and return value; the exit
code says how it ended: 0 completed, 1 failed or crashed, 130 cancelled (Ctrl-C). Commands of
other parts (the store's, the clusters') plug in through a `register(main)` in their own modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import reprlib
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dagflow.cli_progress import Counts, RunProgress, setup_logging
from dagflow.clusters import resolve_name
from dagflow.core.definitions import Flow
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.errors import DagflowError, ParameterError

EXIT_COMPLETED, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130

_result_repr = reprlib.Repr()
_result_repr.maxstring = 200
_result_repr.maxother = 200
_result_repr.maxlist = _result_repr.maxtuple = _result_repr.maxdict = _result_repr.maxset = 20


class BadInput(click.ClickException):
    """Something the user typed is wrong: one line on stderr, exit 2."""

    exit_code = EXIT_USAGE


class Interrupted(click.ClickException):
    """The run was cancelled: one line on stderr, exit 130."""

    exit_code = EXIT_CANCELLED


def failed(error: DagflowError) -> click.ClickException:
    """A dagflow error that escaped, as one line with its family's exit code."""
    kind = {EXIT_USAGE: BadInput, EXIT_CANCELLED: Interrupted}.get(
        error.exit_code, click.ClickException
    )
    return kind(_one_line(str(error)))


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


# ---------------------------------------------------------------- loading a flow


def load_flow(ref: str) -> Flow[..., Any]:
    """The flow named by `FILE.py:FLOW` or `module:FLOW` (`:FLOW` may go if there is one)."""
    target, _, attr = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if not target:
        raise BadInput(f"{ref!r}: expected FILE.py:FLOW or module:FLOW")
    is_file = target.endswith(".py") or os.sep in target or "/" in target
    module = _import_file(target) if is_file else _import_module(target)
    flows = {name: obj for name, obj in vars(module).items() if isinstance(obj, Flow)}
    found = ", ".join(sorted(flows)) if flows else "none"
    if not attr:
        if len(flows) == 1:
            return next(iter(flows.values()))
        raise BadInput(f"{target} defines flows: {found}; name one as {target}:FLOW")
    obj = getattr(module, attr, _NO)
    if obj is _NO:
        named = [f for f in flows.values() if f.name == attr]
        if len(named) == 1:
            return named[0]
        raise BadInput(f"no flow {attr!r} in {target}; flows found: {found}")
    if not isinstance(obj, Flow):
        raise BadInput(
            f"{target}:{attr} is not a dagflow flow (it is of type {type(obj).__name__}; "
            f"decorate a function with @flow); flows found: {found}"
        )
    return obj


def _import_file(target: str) -> ModuleType:
    path = Path(target)
    if not path.exists():
        raise BadInput(f"no such file: {path}")
    if not path.is_file():
        raise BadInput(f"not a file: {path}")
    path = path.resolve()
    name = _module_name(path)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # sibling imports work as they would for `python FILE`
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so pickling by reference finds it
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise BadInput(_load_failure(target, path.parent, exc)) from None
    import cloudpickle

    # Worker processes cannot import the user's file: ship its functions by value.
    cloudpickle.register_pickle_by_value(module)
    return module


def _module_name(path: Path) -> str:
    """The file's stem, unless that names another module (then a name of its own)."""
    stem = path.stem
    if stem.isidentifier():
        loaded = sys.modules.get(stem)
        if loaded is not None:
            if getattr(loaded, "__file__", None) == str(path):
                return stem
        else:
            try:
                spec = importlib.util.find_spec(stem)
            except (ImportError, ValueError):
                spec = None
            if spec is None or spec.origin == str(path):
                return stem
    return "dagflow_file_" + re.sub(r"\W", "_", stem)


def _import_module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise BadInput(
                f"no module named {name!r} (to run a file, give its path: FILE.py:FLOW)"
            ) from None
        raise BadInput(_load_failure(name, Path.cwd(), exc)) from None
    except (Exception, SystemExit) as exc:
        raise BadInput(_load_failure(name, Path.cwd(), exc)) from None


def _load_failure(what: str, user_dir: Path, exc: BaseException) -> str:
    """One line: the error and where in the user's code it happened."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{_shown_path(exc.filename)}:{exc.lineno}"
        message = exc.msg
    else:
        message = str(exc)
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")
        ]
        mine = [f for f in frames if Path(f.filename).resolve().is_relative_to(user_dir)]
        for frame in reversed(mine or frames):
            where = f"{_shown_path(frame.filename)}:{frame.lineno}"
            break
    at = f" (at {where})" if where else ""
    return f"cannot load {what}: {type(exc).__name__}: {_one_line(message)}{at}"


def _shown_path(filename: str) -> str:
    try:
        return os.path.relpath(filename)
    except ValueError:
        return filename


# ---------------------------------------------------------------- parameters


def parse_params(
    flow: Flow[..., Any], pairs: tuple[str, ...], params_json: str | None
) -> dict[str, Any]:
    """Validated parameters from `--params-json` and `--param NAME=VALUE` (which win)."""
    given: dict[str, Any] = {}
    if params_json is not None:
        try:
            loaded = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise BadInput(f"--params-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise BadInput(f"--params-json must be a JSON object, got {type(loaded).__name__}")
        given.update(loaded)
    raw: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name.strip():
            raise BadInput(f"--param {pair!r}: expected NAME=VALUE, e.g. --param n=3")
        raw[name.strip()] = value
    given.update(raw)
    _check_names(flow, given)
    try:
        return flow.validate_parameters(given)
    except ParameterError as exc:
        bad_fields = {err["loc"][0] for err in exc.errors if err.get("loc")}
        decoded = {n: v for n in bad_fields & raw.keys() if (v := _json_value(raw[n])) is not _NO}
        if not decoded:
            raise failed(exc) from None
        try:
            return flow.validate_parameters({**given, **decoded})
        except ParameterError as again:
            raise failed(again) from None


_NO: Any = object()


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return _NO


def _check_names(flow: Flow[..., Any], given: dict[str, Any]) -> None:
    model = flow.parameters
    if model.var_keyword:
        return
    valid = list(model.signature.parameters)
    unknown = [n for n in given if n not in valid]
    if unknown:
        names = ("parameter " if len(unknown) == 1 else "parameters ") + ", ".join(
            repr(n) for n in unknown
        )
        accepted = f"valid parameters: {', '.join(valid)}" if valid else "it takes no parameters"
        raise BadInput(f"unknown {names} for flow {flow.name!r}; {accepted}")


# ---------------------------------------------------------------- the command group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dagflow", prog_name="dagflow")
def main() -> None:
    """dagflow: run workflows of @task functions on Dask."""


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


@main.command(help=RUN_HELP)
@click.argument("target", metavar="TARGET")
@click.option("--param", "-p", "pairs", multiple=True, metavar="NAME=VALUE", help="A parameter.")
@click.option("--params-json", metavar="JSON", help="Parameters as a JSON object.")
@click.option(
    "--cluster",
    metavar="NAME",
    help="local, local-threads, a profile name (./clusters/NAME.yaml) or file, or tcp://host:port "
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
    from dagflow.engine.api import run_flow_with

    # distributed warns when the dashboard's default port is taken; the link we print is right.
    def start(flow: Flow[..., Any], progress: RunProgress) -> FlowRun:
        params = parse_params(flow, pairs, params_json)
        return run_flow_with(flow, params, cluster=cluster, sinks=[progress])

    _execute(ctx, lambda: load_flow(target), start, cluster)


@main.command("resume")
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
    from dagflow.orchestrator import resume
    from dagflow.store import default_store

    def locate() -> Flow[..., Any]:
        recorded = default_store().get_flow_run(run_ref)
        entrypoint = target or recorded.entrypoint
        if not entrypoint:
            raise BadInput(
                f"run {recorded.id} does not say where its flow came from; "
                "name it with --flow FILE.py:FLOW"
            )
        return load_flow(entrypoint)

    def start(flow: Flow[..., Any], progress: RunProgress) -> FlowRun:
        return resume(flow, run_ref, force=force, cluster=cluster, sinks=[progress])

    _execute(ctx, locate, start, cluster)


def _execute(
    ctx: click.Context,
    locate: Callable[[], Flow[..., Any]],
    start: Callable[[Flow[..., Any], RunProgress], FlowRun],
    cluster: str | None,
) -> None:
    """Load the flow, run it with a progress display, report, and exit with the run's code."""
    # distributed warns when the dashboard's default port is taken; the link we print is right.
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
    progress: RunProgress | None = None
    try:
        flow = locate()
        console = Console(highlight=False)
        live = console.is_terminal
        setup_logging(console, live=live)
        cluster_name = resolve_name(cluster, flow.options.cluster)
        progress = RunProgress(console, live=live, cluster=cluster_name)
        with progress:
            flow_run = start(flow, progress)
    except KeyboardInterrupt:
        run_id = progress.run_id if progress is not None else None
        click.echo(f"Cancelled: run {run_id} interrupted" if run_id else "Cancelled", err=True)
        ctx.exit(EXIT_CANCELLED)
    except DagflowError as exc:
        raise failed(exc) from None
    ctx.exit(_report(progress, flow_run))


def _report(progress: RunProgress, flow_run: FlowRun) -> int:
    """Print how the run ended; return the exit code."""
    counts: Counts = progress.counts()
    took = f" in {flow_run.duration:.2f}s" if flow_run.duration is not None else ""
    progress.echo(f"run {flow_run.id} {flow_run.state}{took}: {counts.text()}")
    if flow_run.state.is_success:
        try:
            progress.echo(f"result: {_result_repr.repr(flow_run.result())}")
        except DagflowError as exc:
            progress.echo(f"result: not available ({_one_line(str(exc))})")
        return EXIT_COMPLETED
    message = _one_line(flow_run.error or "no error recorded")
    if flow_run.state is StateType.CANCELLED:
        click.echo(f"Cancelled: {message}", err=True)
        return EXIT_CANCELLED
    click.echo(f"Error: flow run {flow_run.id} ended {flow_run.state}: {message}", err=True)
    cause = flow_run._exception
    if isinstance(cause, DagflowError) and cause.exit_code == EXIT_USAGE:
        return EXIT_USAGE  # the run stopped on a mistake of the user's (definition, storage)
    return EXIT_FAILED


@main.command("inspect")
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
            default = "" if required else _result_repr.repr(param.default)
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


def _register_subcommands(group: click.Group) -> None:
    """Add the subcommands that the store and the cluster parts own."""
    from dagflow import cluster_commands
    from dagflow.store import commands as store_commands

    store_commands.register(group)
    cluster_commands.register(group)


_register_subcommands(main)

if __name__ == "__main__":
    main()
