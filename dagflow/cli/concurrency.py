"""`dagflow concurrency set|ls|rm`: at most N task runs with a tag at once, across the cluster.

`dagflow concurrency set db 2` limits task runs of tasks tagged `db` (`@task(tags=["db"])`) to 2
at once across every run on the cluster, for runs started from then on; a task waiting for a
slot stays PENDING, saying so. `rm` lifts the limit (for runs started after).
"""

from __future__ import annotations

import click
from rich.text import Text

from dagflow import runtime
from dagflow.cli.output import console, echo_json, iso, print_table, table, when


@click.group("concurrency")
def concurrency() -> None:
    """Concurrency limits: at most N task runs with a tag at once."""


@concurrency.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("tag")
@click.argument("limit", metavar="N")
def set_command(tag: str, limit: str) -> None:
    """At most N (1 or more) task runs tagged TAG at once, across every run."""
    from dagflow.errors import UsageError

    try:
        slots = int(limit)
    except ValueError:
        raise UsageError(
            f"concurrency limit of tag {tag!r} must be a whole number from 1, got {limit!r}"
        ) from None
    runtime.default_store().set_concurrency_limit(tag, slots)
    click.echo(f"tag {tag}: at most {slots} task run{'s' if slots != 1 else ''} at once")


@concurrency.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls(as_json: bool) -> None:
    """List the limits."""
    found = runtime.default_store().concurrency_limits()
    if as_json:
        echo_json([{"tag": c.tag, "limit": c.slots, "updated": iso(c.updated)} for c in found])
        return
    if not found:
        click.echo("no concurrency limits (set one with: dagflow concurrency set TAG N)")
        return
    rows = table("TAG", "LIMIT", "UPDATED (UTC)")
    for c in found:
        rows.add_row(Text(c.tag), str(c.slots), when(c.updated))
    print_table(console(), rows)


@concurrency.command("rm")
@click.argument("tag")
def rm(tag: str) -> None:
    """Lift the limit on TAG."""
    runtime.default_store().remove_concurrency_limit(tag)
    click.echo(f"tag {tag}: no limit")
