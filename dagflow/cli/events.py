"""`dagflow events ls`: what triggers saw, and the run each event started (the runs' "why").

Every event a trigger records (a file, a row, an upstream run ending, a webhook call) and every
manual run request is listed, newest first, with its deployment, trigger and run; an event that
started no run says why (a template naming a missing field). `--json` is documented output.
"""

from __future__ import annotations

from typing import Any

import click

from dagflow import runtime
from dagflow.cli.output import console, echo_json, iso, one_line, print_table, table, when
from dagflow.core.text import inert
from dagflow.store import EventRecord


@click.group("events")
def events() -> None:
    """Events of triggers and the runs they started."""


def event_json(record: EventRecord) -> dict[str, Any]:
    ev = record.event
    return {
        "id": ev.id,
        "kind": ev.kind,
        "source": ev.source,
        "time": iso(ev.time),
        "deployment": record.deployment,
        "trigger": record.trigger,
        "run_id": record.run_id,
        "error": record.error,
        "payload": dict(ev.payload),
    }


def summary(record: EventRecord) -> str:
    """One short line of what the event was: a file's path, a row's watermark, a run's id."""
    p = record.event.payload
    if "path" in p:
        return str(p["path"])
    if "watermark" in p:
        return f"watermark {p['watermark']}"
    if "run_id" in p:
        return f"run {str(p['run_id'])[:12]} {p.get('state', '')}".strip()
    if "user" in p:
        return f"by {p['user']}"
    return record.event.source


@events.command("ls")
@click.option("--deployment", "-d", metavar="FLOW/NAME", help="Only this deployment's events.")
@click.option("--run", "run_ref", metavar="RUN_ID", help="Only the events that started this run.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def ls(deployment: str | None, run_ref: str | None, limit: int, as_json: bool) -> None:
    """List recorded events, newest first."""
    store = runtime.default_store()
    run_id = store.resolve(run_ref) if run_ref else None
    found = store.events(deployment, run_id, limit)
    if as_json:
        echo_json([event_json(r) for r in found])
        return
    if not found:
        click.echo("no events recorded (triggers: see docs/triggers.md)")
        return
    rows = table("TIME (UTC)", "KIND", "DEPLOYMENT", "WHAT", "RUN", wrap=("WHAT",))
    for r in found:
        run = r.run_id[:12] if r.run_id else f"none: {one_line(r.error or '?')}"
        rows.add_row(
            when(r.event.time), r.event.kind, inert(r.deployment), inert(summary(r)), inert(run)
        )
    print_table(console(), rows)
