"""`dagflow runs approve RUN [--input JSON]` and `dagflow runs reject RUN`: answer a pause.

A run paused by `dagflow.pause(...)` in its flow's body waits for one of these. The answer is
recorded in the run history; the run's driver (in whatever process) sees it within about half a
second. An approval's input is validated by the driver with the flow's own model, so `approve`
waits for its word: the run goes on, or the input is refused, its errors named, and the run
stays paused (exit code 2). A rejection fails the run.
"""

from __future__ import annotations

import getpass
import json
import time
from typing import Any

import click

from dagflow import runtime
from dagflow.core.pauses import PauseStatus
from dagflow.errors import UsageError

ANSWER_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.2


def who() -> str:
    try:
        return f"{getpass.getuser()} (dagflow runs)"
    except Exception:
        return "dagflow runs"


def parse_input(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--input is not JSON: {exc}") from None


@click.command("approve")
@click.argument("run_ref", metavar="RUN")
@click.option("--input", "input_json", metavar="JSON", help="The input the flow asks for.")
def approve(run_ref: str, input_json: str | None) -> None:
    """Approve RUN, paused for approval; it goes on with the input given."""
    store = runtime.default_store()
    value = parse_input(input_json)
    pause = store.answer_pause(run_ref, True, value, by=who())
    deadline = time.monotonic() + ANSWER_WAIT_SECONDS
    while pause.status is PauseStatus.SUBMITTED and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        pause = store.read_pause(pause.run_id, pause.number)
    if pause.status is PauseStatus.APPROVED:
        click.echo(f"flow run {pause.run_id} approved")
    elif pause.status is PauseStatus.WAITING:
        raise UsageError(f"input refused: {pause.error}; flow run {pause.run_id} stays paused")
    elif pause.status is PauseStatus.SUBMITTED:
        click.echo(
            f"approval of flow run {pause.run_id} recorded; its driver has not answered yet "
            "(see: dagflow runs show)"
        )
    else:
        click.echo(f"flow run {pause.run_id}'s pause ended {pause.status.value} meanwhile")


@click.command("reject")
@click.argument("run_ref", metavar="RUN")
@click.option("--reason", default="", help="Why (recorded with the run's failure).")
def reject(run_ref: str, reason: str) -> None:
    """Reject RUN, paused for approval; it fails."""
    pause = runtime.default_store().answer_pause(run_ref, False, by=who(), reason=reason)
    click.echo(f"flow run {pause.run_id} rejected")
