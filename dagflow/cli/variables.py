"""`dagflow variables set|get|ls|rm`: named JSON values that flows and tasks read.

`set NAME VALUE` takes VALUE as JSON (`3`, `true`, `{"a": 1}`, `"text"`); a VALUE that is not
JSON is kept as a string, so `dagflow variables set region eu-west-1` does what it says
(`--string` keeps any VALUE as a string, `"3"` too). A run reads the variables as they were when
it started: `dagflow.variables.get("region")`.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.text import Text

from dagflow import runtime
from dagflow.cli.output import console, echo_json, iso, print_table, table, when
from dagflow.core.text import inert

SHOWN_CHARS = 60  # of a value, in `ls`


@click.group("variables")
def variables() -> None:
    """Variables: named JSON values that flows and tasks read."""


def parse_value(text: str, as_string: bool) -> Any:
    """VALUE as given on the command line: JSON if it is JSON, else the string itself."""
    if as_string:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


@variables.command("set")
@click.argument("name")
@click.argument("value")
@click.option("--string", "as_string", is_flag=True, help="Keep VALUE as a string, not JSON.")
def set_command(name: str, value: str, as_string: bool) -> None:
    """Set variable NAME to VALUE (JSON, or a plain string)."""
    runtime.default_store().set_variable(name, parse_value(value, as_string))
    click.echo(f"variable {name} set")


@variables.command("get")
@click.argument("name")
def get_command(name: str) -> None:
    """Print variable NAME's value as JSON."""
    echo_json(runtime.default_store().variable(name).value)


@variables.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def ls(as_json: bool) -> None:
    """List variables with their values (cut to fit)."""
    found = runtime.default_store().variables()
    if as_json:
        echo_json([{"name": v.name, "value": v.value, "updated": iso(v.updated)} for v in found])
        return
    if not found:
        click.echo("no variables (set one with: dagflow variables set NAME VALUE)")
        return
    rows = table("NAME", "VALUE", "UPDATED (UTC)")
    for v in found:
        text = json.dumps(v.value)
        if len(text) > SHOWN_CHARS:
            text = text[: SHOWN_CHARS - 3] + "..."
        rows.add_row(Text(v.name), Text(inert(text)), when(v.updated))
    print_table(console(), rows)


@variables.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Remove variable NAME."""
    runtime.default_store().remove_variable(name)
    click.echo(f"variable {name} removed")
