"""Every error dagflow raises on purpose, grouped by what the caller can do about it.

```
DagflowError
├── DefinitionError        bad decorator options, a cycle, a future misused as a value
│   └── FutureMisuse       `if fut:` / `fut + 1` / a future from another run
├── ParameterError         (also a ValueError) flow parameters failed validation
├── TaskFailed             a task run ended in a failure state; carries run id and cause
│   ├── TaskTimeout        the task ran past its `timeout`
│   └── UpstreamFailed     the task did not run because an upstream failed
├── FlowFailed             a flow run ended FAILED or CRASHED; carries run id and cause
│   ├── FlowTimeout        the flow ran past its `timeout`
│   └── PauseRejected      a run paused for approval was rejected, or not approved in time
├── FlowCancelled          the flow run was cancelled (Ctrl-C, or on request)
├── InvalidTransition      a state change the state machine forbids (a bug, never user input)
├── StoreError             the run history database refused or failed
│   ├── NotFound           no run (or other record) is named by the id given, or several are
│   └── StateConflict      the run is not in a state that allows what was asked (cancel, resume)
├── ClusterError           a cluster could not be found, started or reached
├── SettingsError          a DAGFLOW_* environment variable holds a bad value
├── SecretError            the key of secrets is missing, malformed or wrong
├── DeploymentError        a deployment or schedule is wrong (cron, time zone, interval, field)
└── UsageError             what a command was given names nothing usable (file, module, flow)
```

Each family carries its exit code (`exit_code`): 0 is success, 1 a run that failed or crashed,
2 a mistake of the user's (a definition, parameters, a name, a setting), 130 a cancelled run. The
CLI maps errors to exit codes and one line of text through this attribute only; the server maps
the same families to HTTP statuses in one place (`dagflow/server/errors.py`).
"""

from __future__ import annotations

from typing import Any


class DagflowError(Exception):
    """Root of dagflow's errors."""

    exit_code = 1


class DefinitionError(DagflowError, TypeError, ValueError):
    """A task or flow definition, or the way a future is used, is wrong.

    Both a `TypeError` and a `ValueError`: a wrong option may be of the wrong type or out of range.
    """

    exit_code = 2


class FutureMisuse(DefinitionError):
    """A `TaskFuture` was used as if it were its value."""


class ParameterError(DagflowError, ValueError):
    """Flow parameters failed validation; `errors` holds one entry per bad field."""

    exit_code = 2

    def __init__(
        self, flow_name: str, errors: list[dict[str, Any]], message: str | None = None
    ) -> None:
        self.flow_name = flow_name
        self.errors = errors
        if message is None:
            parts = []
            for err in errors:
                where = ".".join(str(p) for p in err.get("loc", ())) or "(parameters)"
                parts.append(f"{where}: {err.get('msg', 'invalid')}")
            message = f"invalid parameters for flow {flow_name!r}: " + "; ".join(parts)
        super().__init__(message)


class TaskFailed(DagflowError):
    """A task run ended in a failure state."""

    def __init__(self, message: str, *, task: str = "", run_id: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.task = task
        self.run_id = run_id
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_task_failed, (type(self), str(self), self.task, self.run_id, self.cause))


def _rebuild_task_failed(
    cls: type[TaskFailed], message: str, task: str, run_id: str, cause: str
) -> TaskFailed:
    return cls(message, task=task, run_id=run_id, cause=cause)


class TaskTimeout(TaskFailed, TimeoutError):
    """A task ran past its `timeout`."""


class UpstreamFailed(TaskFailed):
    """A task was not run because a task it depends on failed.

    `cause` is the logical key of the root failure (through a chain of tasks that did not run,
    the first that failed), `upstream` its task's name, `upstream_state` how it ended, `via` the
    logical keys of the tasks between (which did not run either), and the root failure's own
    exception is this one's `__cause__`.
    """

    def __init__(
        self,
        message: str,
        *,
        task: str = "",
        run_id: str = "",
        cause: str = "",
        upstream: str = "",
        upstream_state: str = "",
        root: BaseException | None = None,
        via: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, task=task, run_id=run_id, cause=cause)
        self.upstream = upstream
        self.upstream_state = upstream_state
        self.via = via
        if root is not None:
            self.__cause__ = root

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_upstream,
            (str(self), self.task, self.run_id, self.cause, self.upstream, self.upstream_state,
             self.__cause__, self.via),
        )  # fmt: skip


def _rebuild_upstream(
    message: str,
    task: str,
    run_id: str,
    cause: str,
    upstream: str,
    upstream_state: str,
    root: BaseException | None,
    via: tuple[str, ...] = (),
) -> UpstreamFailed:
    return UpstreamFailed(
        message,
        task=task,
        run_id=run_id,
        cause=cause,
        upstream=upstream,
        upstream_state=upstream_state,
        root=root,
        via=via,
    )


class FlowFailed(DagflowError):
    """A flow run ended FAILED or CRASHED."""

    def __init__(self, message: str, *, run_id: str = "", cause: BaseException | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.cause = cause


class FlowTimeout(FlowFailed, TimeoutError):
    """A flow ran past its `timeout`."""


class PauseRejected(FlowFailed):
    """A run paused for approval was rejected, or nobody approved it in time (not retried)."""


class FlowCancelled(DagflowError):
    """A flow run was cancelled."""

    exit_code = 130

    def __init__(self, message: str, *, run_id: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id


class InvalidTransition(DagflowError):
    """The state machine was asked for a transition it forbids: a bug in dagflow."""


class StoreError(DagflowError):
    """The run history database refused or failed."""

    exit_code = 2


class NotFound(StoreError):
    """No record is named by the id or name given (or a prefix names several)."""


class StateConflict(StoreError):
    """The run is not in a state that allows what was asked (cancel a finished run, ...)."""


class ClusterError(DagflowError):
    """A cluster could not be named, started or reached."""

    exit_code = 2


class SettingsError(DagflowError):
    """A `DAGFLOW_*` environment variable holds a value dagflow cannot use."""

    exit_code = 2


class SecretError(DagflowError):
    """Secrets cannot be read or written: no key, a malformed or wrong key.

    Its message never holds a secret value or a key.
    """

    exit_code = 2


class DeploymentError(DagflowError, ValueError):
    """A deployment or one of its schedules is wrong; the message names the field.

    When a deployment's run was given parameters that fail validation, `errors` holds one entry
    per bad field (as `ParameterError.errors`), for the server to name each field.
    """

    exit_code = 2

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = list(errors or ())


class UsageError(DagflowError):
    """A command's argument names nothing usable: a missing file, module or flow."""

    exit_code = 2
