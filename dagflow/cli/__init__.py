"""The `dagflow` command: one module per command group, and one mapping from errors to exits.

```
run.py          dagflow run | resume | inspect    (loading.py: FILE.py:FLOW -> the flow;
runs.py         dagflow runs ls|show|cancel, logs  progress.py: the live display;
cluster.py      dagflow cluster start|info         output.py: JSON, times, states)
db.py           dagflow db upgrade|info
serve.py        dagflow serve
deployments.py  dagflow deployments ls|show|run|pause|resume|rm|backfill
```

Every error dagflow raises on purpose carries its exit code (`dagflow.errors`); `DagflowGroup`
turns any that escapes a command into one line on stderr with that code, so no command wraps
errors of its own and no user's mistake ends in a traceback.
"""

from __future__ import annotations

from typing import Any

import click

from dagflow.cli.cluster import cluster
from dagflow.cli.db import db
from dagflow.cli.deployments import deployments
from dagflow.cli.output import one_line
from dagflow.cli.run import inspect_command, resume_command, run
from dagflow.cli.runs import logs_command, runs
from dagflow.cli.serve import serve
from dagflow.errors import DagflowError


class ErrorExit(click.ClickException):
    """A `DagflowError` as click shows it: its one line, its family's exit code."""

    def __init__(self, error: DagflowError) -> None:
        super().__init__(one_line(str(error)))
        setattr(self, "exit_code", error.exit_code)  # noqa: B010 (a ClassVar in click's stubs)


class DagflowGroup(click.Group):
    """The `dagflow` group: a `DagflowError` from any command becomes one line and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DagflowError as exc:
            raise ErrorExit(exc) from None


@click.group(cls=DagflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dagflow", prog_name="dagflow")
def main() -> None:
    """dagflow: run workflows of @task functions on Dask."""


main.add_command(run)
main.add_command(resume_command)
main.add_command(inspect_command)
main.add_command(runs)
main.add_command(logs_command)
main.add_command(cluster)
main.add_command(db)
main.add_command(serve)
main.add_command(deployments)

__all__ = ["main"]
