"""Rendering the pages' HTML: one Jinja2 environment with autoescaping, and its filters.

Every value a template prints is escaped (autoescape is on for every template and nothing is
marked safe), so a flow name, a parameter, a log line or an error such as
`<script>alert(1)</script>` is shown as text. Templates carry no inline script or style
attribute that the Content-Security-Policy would have to allow: behaviour lives in
`assets/app.js`, driven by `data-*` attributes.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from dagflow.core.states import StateType

_env: Environment | None = None

STATE_ORDER = list(StateType)


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def iso(t: float | None) -> str:
    if t is None:
        return ""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def state_class(state: StateType | str) -> str:
    """The CSS class of a state's badge: its kind (ok, failed, running, waiting, cancelled)."""
    s = StateType(state)
    if s.is_success:
        return "ok"
    if s.is_failure:
        return "failed"
    if s in (StateType.RUNNING, StateType.RETRYING, StateType.CANCELLING):
        return "running"
    if s is StateType.CANCELLED:
        return "cancelled"
    return "waiting"


def as_json(value: Any) -> str:
    """A parameter value as JSON text (escaped by the template like any other text)."""
    return json.dumps(value, default=repr, ensure_ascii=False)


def first_line(text: str | None, width: int = 160) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def error_line(error_type: str | None, error: str | None) -> str:
    """`Type: message` once, whether or not the message already starts with its type."""
    text = first_line(error)
    if error_type and not text.startswith(error_type):
        return f"{error_type}: {text}" if text else error_type
    return text


def level_name(level: int) -> str:
    return str(logging.getLevelName(level))


def environment() -> Environment:
    global _env
    if _env is None:
        env = Environment(
            loader=PackageLoader("dagflow.server", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            when=when,
            iso=iso,
            duration=duration,
            state_class=state_class,
            as_json=as_json,
            first_line=first_line,
            level_name=level_name,
            error_line=error_line,
        )
        env.globals["STATES"] = STATE_ORDER
        _env = env
    return _env


def page(
    name: str, status: int = 200, headers: dict[str, str] | None = None, **values: Any
) -> HTMLResponse:
    """Render template `name` with `values` into an HTML response."""
    html = environment().get_template(name).render(**values)
    return HTMLResponse(html, status_code=status, headers=headers)
