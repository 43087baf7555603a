"""The `dagflow` command: one module per command group, and one mapping from errors to exits.

```
run.py          dagflow run | resume | inspect    (loading.py: FILE.py:FLOW -> the flow;
report.py       how a run's last lines read        progress.py: the live display;
runs.py         dagflow runs ls|show|cancel        output.py: JSON, times, states, tables;
logs.py         dagflow logs                       tasks.py: a run's tasks, grouped)
cluster.py      dagflow cluster start|info
db.py           dagflow db upgrade|info
serve.py        dagflow serve                     (the scheduler itself: dagflow.scheduler)
deployments.py  dagflow deployments ls|show|run|pause|resume|rm|backfill
events.py       dagflow events ls                 (what triggers saw, the runs' "why")
server.py       dagflow server start|token        (the server itself: dagflow.server)
variables.py    dagflow variables set|get|ls|rm
secrets.py      dagflow secrets set|ls|rm|rotate-key
concurrency.py  dagflow concurrency set|ls|rm
approvals.py    dagflow runs approve|reject       (a run paused by dagflow.pause)
```

Every error dagflow raises on purpose carries its exit code (`dagflow.errors`); `DagflowGroup`
turns any that escapes a command into one line on stderr with that code, so no command wraps
errors of its own and no user's mistake ends in a traceback.

A command's module is imported when that command runs, not before: `dagflow --help` lists the
commands from `COMMANDS` (a test holds its texts to the commands' own), so it starts without
Dask or the database libraries, and `dagflow runs ls` without Dask.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from dagflow.errors import DagflowError

# name -> ("module:attribute", the command's short help, which `dagflow --help` lists)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("dagflow.cli.run:run", "Run a flow from a file or a module and show its progress."),
    "resume": ("dagflow.cli.run:resume_command", "Finish a failed, crashed or cancelled run."),
    "inspect": ("dagflow.cli.run:inspect_command", "Show a flow's parameters and their schema."),
    "runs": ("dagflow.cli.runs:runs", "Recorded flow runs: ls, show, cancel, approve, reject."),
    "logs": ("dagflow.cli.logs:logs_command", "A run's logs, retries and failures, in order."),
    "cluster": ("dagflow.cli.cluster:cluster", "Start a cluster from a profile, or look at one."),
    "serve": (
        "dagflow.cli.serve:serve",
        "Serve deployments: create their runs on schedule and run them.",
    ),
    "deployments": (
        "dagflow.cli.deployments:deployments",
        "Deployments: flows served on schedules by `dagflow serve`.",
    ),
    "events": ("dagflow.cli.events:events", "Events of triggers and the runs they started."),
    "db": ("dagflow.cli.db:db", "The run history database: upgrade, info."),
    "server": (
        "dagflow.cli.server:server",
        "The dagflow server: REST API (/api/v1) and pages to watch and control runs.",
    ),
    "variables": (
        "dagflow.cli.variables:variables",
        "Variables: named JSON values that flows and tasks read.",
    ),
    "secrets": (
        "dagflow.cli.secrets:secrets",
        "Secrets: encrypted values that only flows and tasks read.",
    ),
    "concurrency": (
        "dagflow.cli.concurrency:concurrency",
        "Concurrency limits: at most N task runs with a tag at once.",
    ),
}


class ErrorExit(click.ClickException):
    """A `DagflowError` as click shows it: its one line, its family's exit code."""

    def __init__(self, error: DagflowError) -> None:
        from dagflow.cli.output import one_line
        from dagflow.core.text import inert

        super().__init__(inert(one_line(str(error))))
        setattr(self, "exit_code", error.exit_code)  # noqa: B010 (a ClassVar in click's stubs)


class DagflowGroup(click.Group):
    """The `dagflow` group: commands load on use; a `DagflowError` from any of them becomes one
    line and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = spec[0].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, _shorten(short, limit)) for name, (_, short) in COMMANDS.items()]
        for name in super().list_commands(ctx):
            command = super().get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DagflowError as exc:
            raise ErrorExit(exc) from None


def _shorten(text: str, limit: int) -> str:
    """`text`, or its words that fit in `limit` characters followed by "..."."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 3)].rsplit(" ", 1)[0] + "..."


@click.group(cls=DagflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dagflow", prog_name="dagflow")
def main() -> None:
    """dagflow: run workflows of @task functions on Dask."""


__all__ = ["COMMANDS", "main"]
