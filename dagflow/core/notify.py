"""Notifiers: Apprise URLs told when a flow's run reaches a state, and what they are told.

A flow names them with `notify=`: a URL (told of failures: FAILED, TIMED_OUT, CRASHED) or a
`Notifier(url, on=[...states])`, which may also name COMPLETED, CANCELLED and PAUSED (waiting for
approval). This module checks the form (`scheme://...`, known states) and writes the message;
`dagflow.notifications` checks each URL with Apprise when the flow is defined and sends.

Pure: no network, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dagflow.errors import DefinitionError

STATES = ("COMPLETED", "FAILED", "TIMED_OUT", "CRASHED", "CANCELLED", "PAUSED")
FAILURES = frozenset({"FAILED", "TIMED_OUT", "CRASHED"})
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")


@dataclass(frozen=True, slots=True)
class Notifier:
    """An Apprise URL (`json://host/path`, `mailto://...`, `slack://...`) and the run states it
    is told of (default: the failures)."""

    url: str
    on: frozenset[str] = field(default=FAILURES)

    def __init__(self, url: str, on: Iterable[str] = FAILURES) -> None:
        if not isinstance(url, str) or _URL.fullmatch(url.strip()) is None:
            raise DefinitionError(
                f"notifier {_shown(url)} is not an Apprise URL (scheme://..., e.g. "
                "json://host/path, mailto://user:pass@host, slack://token)"
            )
        if isinstance(on, str):
            on = [on]
        states = frozenset(str(getattr(s, "value", s)).upper() for s in on)
        unknown = sorted(states - set(STATES))
        if unknown or not states:
            raise DefinitionError(
                f"notifier {_shown(url)}: on= names states among {', '.join(STATES)}, "
                f"got {sorted(states) or 'none'}"
            )
        object.__setattr__(self, "url", url.strip())
        object.__setattr__(self, "on", states)

    def __repr__(self) -> str:
        return f"Notifier({_shown(self.url)}, on={sorted(self.on)})"


def _shown(url: Any) -> str:
    """A URL without what may be a password or token: its scheme and host."""
    if not isinstance(url, str):
        return repr(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return repr(url[:40])
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return repr(f"{scheme}://{host}/...")


def check_notify(owner: str, option_name: str, value: Any) -> tuple[Notifier, ...]:
    """`notify=`: a URL, a `Notifier`, or a list of them."""
    if value is None:
        return ()
    items = [value] if isinstance(value, (str, Notifier)) else value
    if not isinstance(items, (list, tuple)):
        raise DefinitionError(
            f"{owner}: {option_name} takes Apprise URLs or Notifier(url, on=[...]), "
            f"got {type(value).__name__}"
        )
    found = []
    for item in items:
        try:
            found.append(item if isinstance(item, Notifier) else Notifier(item))
        except DefinitionError as exc:
            raise DefinitionError(f"{owner}: {option_name}: {exc}") from None
    return tuple(found)


def message(
    flow_name: str,
    run_id: str,
    state: str,
    error: str | None,
    link: str | None,
    reason: str | None = None,
) -> tuple[str, str]:
    """The notification's title and body: the flow, the run, its state, the error's first line,
    the link to the run's page."""
    title = f"dagflow: flow {flow_name} run {run_id[:12]} {state}"
    lines = [f"Flow: {flow_name}", f"Run: {run_id}", f"State: {state}"]
    if reason:
        lines.append(f"Waiting for approval: {reason}")
    first = (error or "").strip().splitlines()[0] if (error or "").strip() else ""
    if first:
        lines.append(f"Error: {first[:500]}")
    if link:
        lines.append(f"Run page: {link}")
    return title, "\n".join(lines)
