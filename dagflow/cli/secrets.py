"""`dagflow secrets set|ls|rm|rotate-key`: encrypted values that only flows and tasks read.

`set NAME` reads the value from a hidden prompt (typed twice) on a terminal, or from standard
input otherwise (`... | dagflow secrets set NAME`; one trailing line break is dropped), never
from the command line, where other users' `ps` and the shell's history would see it. `ls` shows
names and times; no command prints a value.
"""

from __future__ import annotations

import sys

import click
from rich.text import Text

from dagflow import runtime
from dagflow.cli.output import console, echo_json, iso, print_table, table, when
from dagflow.errors import UsageError


@click.group("secrets")
def secrets() -> None:
    """Secrets: encrypted values that only flows and tasks read."""


def read_value(name: str) -> str:
    """The value, from a hidden prompt on a terminal, else from standard input."""
    if sys.stdin.isatty():
        value: str = click.prompt(
            f"value of secret {name}", hide_input=True, confirmation_prompt=True
        )
        return value
    text = sys.stdin.read()
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise UsageError(
            f"secret {name!r}: no value on standard input (type it at the prompt of a terminal, "
            f"or pipe it: ... | dagflow secrets set {name})"
        )
    return text


@secrets.command("set")
@click.argument("name")
def set_command(name: str) -> None:
    """Set secret NAME from a prompt or standard input (never from the command line)."""
    store = runtime.default_store()
    store.set_secret(name, read_value(name))
    click.echo(f"secret {name} set")


@secrets.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls(as_json: bool) -> None:
    """List secrets' names (never their values)."""
    found = runtime.default_store().secrets()
    if as_json:
        echo_json(
            [{"name": s.name, "created": iso(s.created), "updated": iso(s.updated)} for s in found]
        )
        return
    if not found:
        click.echo("no secrets (set one with: dagflow secrets set NAME)")
        return
    rows = table("NAME", "UPDATED (UTC)")
    for s in found:
        rows.add_row(Text(s.name), when(s.updated))
    print_table(console(), rows)


@secrets.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Remove secret NAME."""
    runtime.default_store().remove_secret(name)
    click.echo(f"secret {name} removed")


@secrets.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every secret with a new key.

    With the key file (DAGFLOW_HOME/secret-key), a new key replaces it. With DAGFLOW_SECRET_KEY,
    put the new key first, the old one after a comma, run this, then drop the old one.
    """
    store = runtime.default_store()
    count = store.rotate_secret_key()
    click.echo(f"{count} secret{'s' if count != 1 else ''} re-encrypted with the key from "
               f"{store.keys.source}")  # fmt: skip
