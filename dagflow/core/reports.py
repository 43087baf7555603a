"""What workers report about tasks, and how it travels: `Report`, `LogReport`, their wire forms.

The wrapper on a worker makes these; the tracker on the driver parses them and hands them to the
run machine (`machine.py`). On the wire a report is a plain list of its fields, a log record is
tagged "log", and a chunk's items that all succeed at their first try fold into one "ok" record
(`compact_wire`), so that a chunk of a thousand items sends one small message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from dagflow.core.states import StateType

_RUNNING = StateType.RUNNING.value
_COMPLETED = StateType.COMPLETED.value


class ResultInfo(NamedTuple):
    """Where a task's result was written, under which cache key, and what it was made from."""

    location: str | None
    size: int | None
    serializer: str | None
    cache_key: str | None
    identity: str | None = None


class Report(NamedTuple):
    """A task's state change, as the wrapper on a worker reports it.

    `attempt` counts the attempts of this execution on the worker, from 1 (0 for a task that did
    not run: CACHED, UPSTREAM_FAILED). On the wire it travels as a plain list of its fields.
    """

    name: str
    item: int  # the key's index
    state: str
    time: float
    attempt: int
    worker: str
    message: str = ""
    error_type: str | None = None
    traceback: str | None = None
    result: ResultInfo | None = None


class LogReport(NamedTuple):
    """A log record emitted inside a task, as the wrapper on a worker reports it."""

    name: str
    item: int
    level: int
    time: float
    message: str
    worker: str


def parse_report(record: Sequence[Any]) -> Report | LogReport:
    """A report from its wire form: a `LogReport` starts with the tag "log"."""
    if record[0] == "log":
        return LogReport(*record[1:])
    report = Report(*record)
    if report.result is not None and type(report.result) is not ResultInfo:
        report = report._replace(result=ResultInfo(*report.result))
    return report


def compact_wire(records: list[Any]) -> list[Any]:
    """`records` with each item that went RUNNING -> COMPLETED at its first attempt, with
    nothing else to say (no message, no result, nothing in between), folded into one
    `("ok", name, worker, items, starts, ends)` record per task: a chunk of items that all
    succeed at once travels as one small record. `parse_reports` unfolds it."""
    out: list[Any] = []
    folded: dict[tuple[str, str], tuple[list[int], list[float], list[float]]] = {}
    i, n = 0, len(records)
    while i < n:
        r = records[i]
        if (
            i + 1 < n
            and type(r) is Report
            and r.state == _RUNNING
            and r.attempt == 1
            and not r.message
        ):
            c = records[i + 1]
            if (
                type(c) is Report
                and c.state == _COMPLETED
                and c.item == r.item
                and c.name == r.name
                and c.attempt == 1
                and c.result is None
                and not c.message
            ):
                slot = folded.get((r.name, r.worker))
                if slot is None:
                    slot = folded[(r.name, r.worker)] = ([], [], [])
                    out.append(("ok", r.name, r.worker, *slot))
                slot[0].append(r.item)
                slot[1].append(r.time)
                slot[2].append(c.time)
                i += 2
                continue
        out.append(r)
        i += 1
    return out


def parse_reports(batch: Sequence[Sequence[Any]]) -> list[Report | LogReport]:
    """Records from their wire form (`parse_report`), a compact `"ok"` record unfolded into
    the RUNNING and COMPLETED reports it stands for."""
    out: list[Report | LogReport] = []
    for record in batch:
        if record[0] == "ok":
            _, name, worker, items, starts, ends = record
            for item, start, end in zip(items, starts, ends, strict=True):
                out.append(Report(name, item, _RUNNING, start, 1, worker))
                out.append(Report(name, item, _COMPLETED, end, 1, worker))
        else:
            out.append(parse_report(record))
    return out


def log_wire(report: LogReport) -> tuple[Any, ...]:
    """A `LogReport`'s wire form (see `parse_report`)."""
    return ("log", *report)
