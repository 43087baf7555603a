"""`dagflow db upgrade|info`: the run history database itself.

The database is `DAGFLOW_DATABASE_URL`, else `DAGFLOW_HOME/dagflow.db`. `info --json` prints
`{"url", "backend", "revision", "head", "flows", "flow_runs", "task_runs", "logs"}`.
"""

from __future__ import annotations

import click

from dagflow.cli.output import echo_json
from dagflow.store import open_store


@click.group("db", short_help="The run history database: upgrade, info.")
def db() -> None:
    """The run history database (DAGFLOW_DATABASE_URL, else DAGFLOW_HOME/dagflow.db)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create the database or upgrade it to this dagflow's schema."""
    store = open_store()
    try:
        before = store.status
        where = store.info().url
    finally:
        store.close()
    if before.up_to_date:
        click.echo(f"{where} is up to date (revision {before.head})")
    else:
        click.echo(f"{where} upgraded from {before.current or '(empty)'} to {before.head}")


@db.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def db_info(as_json: bool) -> None:
    """Where the database is, its schema revision, and how much it holds."""
    store = open_store(upgrade=False)
    try:
        found = store.info()
    finally:
        store.close()
    info = {
        "url": found.url,
        "backend": found.backend,
        "revision": found.revision,
        "head": found.head,
        **found.counts,
    }
    if as_json:
        echo_json(info)
        return
    for key, value in info.items():
        click.echo(
            f"{key + ':':<11}{value if value is not None else '(none: run dagflow db upgrade)'}"
        )
