"""`dagflow.variables.get(name, default)`: a named JSON value, in a flow, a task, or a script.

Inside a run, variables are read from the run's configuration: the values the run history held
when the run started, shipped to every worker with the task calls, so a task on any worker reads
them without reaching the database. Outside a run (a script, a test), the run history is read.
Variables are set with `dagflow variables set NAME VALUE` or the API (`PUT /api/v1/variables/NAME`).
"""

from __future__ import annotations

from typing import Any

from dagflow.core.context import current_flow_run, current_task_run

_MISSING: Any = object()


def get(name: str, default: Any = _MISSING) -> Any:
    """The value of variable `name`; `default` if there is none, else `NotFound` naming it."""
    ctx: Any = current_task_run.get() or current_flow_run.get()
    if ctx is not None:
        found = ctx.config.variables
        if name in found:
            return found[name]
    else:
        from dagflow.errors import NotFound
        from dagflow.runtime import default_store

        try:
            return default_store().variable(name).value
        except NotFound:
            pass
    if default is not _MISSING:
        return default
    raise _unknown(name)


def _unknown(name: str) -> Exception:
    from dagflow.errors import NotFound  # errors.py is light, but a worker may never need it

    return NotFound(
        f"no variable named {name!r} (set one with: dagflow variables set {name} VALUE; "
        "a run reads the variables set before it started)"
    )


__all__ = ["get"]
