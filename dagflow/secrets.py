"""`dagflow.secrets.get(name)`: a secret's value, in a flow body or a task, on any worker.

A run's driver decrypts the secrets when the run starts and ships them with the run's task
calls, so a task on a worker that cannot reach the database (or has no key) reads them. The
value is masked (`***`) in everything the run records or shows: logs, captured prints, state
messages, tracebacks (`dagflow.core.config.Masker`). Outside a run (a script, a task called as a
plain function in a test) the local run history is read, with the local key.

Secrets are set with `dagflow secrets set NAME` (from a prompt or standard input) and never
read back through the CLI, the API or the pages.
"""

from __future__ import annotations

from typing import Any

from dagflow.core.context import current_flow_run, current_task_run


def get(name: str) -> str:
    """The value of secret `name`; `NotFound` naming it if there is none, `SecretError` if the
    secrets could not be decrypted (no key, or the wrong one)."""
    from dagflow.errors import NotFound, SecretError

    ctx: Any = current_task_run.get() or current_flow_run.get()
    if ctx is not None:
        config = ctx.config
    else:
        from dagflow.runtime import default_store

        config = default_store().run_config()
    value: str | None = config.secrets.get(name)
    if value is not None:
        return value
    if config.secret_error is not None:
        raise SecretError(config.secret_error)
    raise NotFound(
        f"no secret named {name!r} (set one with: dagflow secrets set {name}; a run reads the "
        "secrets set before it started)"
    )


__all__ = ["get"]
