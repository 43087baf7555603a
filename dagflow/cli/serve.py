"""`dagflow serve`: run deployments on their schedules until Ctrl-C.

TARGET is `FILE.py:FLOW` / `module:FLOW` with the deployment given by options, or a YAML file of
deployments. Every deployment is checked before anything is served (its flow loads, its schedules
and parameters are valid): a mistake is one line naming the deployment and the field, exit 2.
The service logs one line per run started and ended on stderr; Ctrl-C stops claiming runs and
waits for the running ones, a second Ctrl-C cancels them; the exit code is then 0.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import click

from dagflow.entrypoints import load_flow
from dagflow.errors import UsageError

SERVE_HELP = """Serve deployments: create their runs on schedule and run them.

\b
TARGET is FILE.py:FLOW (or module:FLOW) with the options below, or a YAML
file of deployments (dagflow.yaml; see docs/deployments.md).

\b
  dagflow serve flows.py:etl --cron "0 2 * * *" --timezone Europe/Paris
  dagflow serve flows.py:etl --name often --interval 300 --param n=3
  dagflow serve dagflow.yaml --limit 4
  dagflow serve flows.py:ingest --on-file "inbox/*.csv" -p 'path={{ event.path }}'

\b
Cron strings have 5 fields (or 6, seconds first) or are an alias (@hourly,
@daily, @weekly, @monthly, @yearly); --cron and --interval may be repeated.
Each run executes in its own process; runs on the default local cluster share
one LocalCluster started here. Ctrl-C: stop starting runs and wait for the
running ones; Ctrl-C again: cancel them.

\b
--on-file GLOB starts a run per file arriving (settled: its size unchanged for
--settle seconds; each file once, across restarts); a parameter may be a
template of the event, {{ event.path }} (a flow parameter named `path`, or
`paths` with --window, gets it by default). See docs/triggers.md.
"""

DEPLOYMENT_OPTIONS = (
    "name",
    "cron",
    "interval",
    "timezone",
    "anchor",
    "pairs",
    "params_json",
    "cluster",
    "tags",
    "description",
    "paused",
    "max_active_runs",
    "catchup",
    "on_file",
    "settle",
    "window",
)


@click.command(
    "serve",
    help=SERVE_HELP,
    short_help="Serve deployments: create their runs on schedule and run them.",
)
@click.argument("target", metavar="TARGET")
@click.option("--name", help="The deployment's name (default: the flow's name).")
@click.option("--cron", multiple=True, metavar="CRON", help="A cron schedule (repeatable).")
@click.option(
    "--interval", multiple=True, type=float, metavar="SECONDS", help="An interval (repeatable)."
)
@click.option("--timezone", metavar="TZ", help="IANA time zone of the schedules (default UTC).")
@click.option("--anchor", metavar="TIME", help="Intervals count from this ISO time.")
@click.option("--param", "-p", "pairs", multiple=True, metavar="NAME=VALUE", help="A parameter.")
@click.option("--params-json", metavar="JSON", help="Parameters as a JSON object.")
@click.option("--cluster", metavar="NAME", help="Cluster of the runs (default: shared local).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--description", help="What the deployment is for.")
@click.option("--paused", is_flag=True, default=None, help="Register it paused.")
@click.option("--max-active-runs", type=int, default=None, help="Runs at once (default 1).")
@click.option("--catchup", is_flag=True, default=None, help="Run every missed tick, oldest first.")
@click.option("--on-file", multiple=True, metavar="GLOB", help="A run per file arriving.")
@click.option("--settle", type=float, default=None, metavar="SECONDS", help="--on-file: 0.5.")
@click.option(
    "--window", type=float, default=None, metavar="SECONDS", help="--on-file: one run per window."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=10, show_default=True, help="Runs at once."
)
def serve(
    target: str,
    name: str | None,
    cron: tuple[str, ...],
    interval: tuple[float, ...],
    timezone: str | None,
    anchor: str | None,
    pairs: tuple[str, ...],
    params_json: str | None,
    cluster: str | None,
    tags: tuple[str, ...],
    description: str | None,
    paused: bool | None,
    max_active_runs: int | None,
    catchup: bool | None,
    on_file: tuple[str, ...],
    settle: float | None,
    window: float | None,
    limit: int,
) -> None:
    from dagflow.scheduler import serve_loaded
    from dagflow.scheduler.definitions import build, given_parameters, is_yaml, load_yaml

    options = locals()
    if is_yaml(target):
        given = [k for k in DEPLOYMENT_OPTIONS if options[k] not in (None, ())]
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UsageError(f"{flags}: deployment options apply to FILE.py:FLOW, not a YAML file")
        loaded = load_yaml(target)
    else:
        flow = load_flow(target)
        name = name or flow.name
        plain, templated = _split_templates(pairs)
        found = _file_triggers(on_file, settle, window)
        wanted = "paths" if window else "path"
        named = {p.partition("=")[0].strip() for p in plain}
        takes = wanted in flow.parameters.signature.parameters and wanted not in named
        if found and not templated and takes:  # the flow's `path` gets the file's path
            templated[wanted] = "{{ event.%s }}" % wanted  # noqa: UP031 (braces)
        parameters = given_parameters(
            flow, f"{flow.name}/{name}", plain, params_json, later=templated
        )
        parameters.update(templated)
        dep = build(
            flow,
            name,
            cron=cron,
            interval=interval,
            timezone=timezone,
            anchor=anchor,
            parameters=parameters,
            cluster=cluster,
            tags=tags,
            description=description,
            paused=bool(paused),
            max_active_runs=1 if max_active_runs is None else max_active_runs,
            catchup=bool(catchup),
            triggers=found,
        )
        loaded = [(dep, flow)]
    setup_service_logging()
    for dep, _ in loaded:
        plans = ", ".join([*(s.describe() for s in dep.schedules),
                           *(t.describe() for t in dep.triggers)])  # fmt: skip
        plans = plans or "no schedule (manual runs only)"
        click.echo(f"deployment {dep.full_name}: {plans}", err=True)
    sys.exit(serve_loaded(loaded, limit=limit))


def _split_templates(pairs: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """`-p NAME=VALUE` pairs: plain ones (validated now) and templates (filled per event)."""
    from dagflow.scheduler.templates import is_template

    plain = tuple(p for p in pairs if not is_template(p.partition("=")[2]))
    templated = {k.strip(): v for k, _, v in (p.partition("=") for p in pairs) if is_template(v)}
    return plain, templated


def _file_triggers(globs: tuple[str, ...], settle: float | None, window: float | None) -> list[Any]:
    from dagflow.triggers import files

    if (settle is not None or window is not None) and not globs:
        raise UsageError("--settle and --window apply to --on-file")
    options: dict[str, Any] = {"window": window}
    if settle is not None:
        options["settle"] = settle
    return [files(g, **options) for g in globs]


def setup_service_logging(level: int = logging.INFO) -> None:
    """One timestamped line per event on stderr, for a long-running service's log."""
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("dagflow")
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logging.getLogger("dagflow.scheduler").setLevel(level)
    logger.propagate = False
