"""`dagflow.pause(...)`: a flow body waits for someone to approve or reject the run.

The run goes PAUSED and its body's thread, on the driver, waits (no Dask worker thread is held;
the tasks already submitted go on). The pause is recorded where the run is recorded (a
`PauseBoard`: the run history), so `dagflow runs approve RUN`, the API or a page can answer it
from any process. The body polls its pause about twice a second; an approval's input is
validated here, with the flow's own model, and a refusal names its fields while the run stays
paused. Rejected: the run fails (`PauseRejected`). Not answered by `timeout`: it fails, or goes
on when `on_timeout="approve"`. A cancel request or the flow's own timeout end the wait too. If
the driver dies meanwhile, the run is detected CRASHED (its heartbeat stops) and `dagflow
resume` runs the body again, which pauses again.
"""

from __future__ import annotations

import time
from typing import Any, Literal, TypeVar, overload

from dagflow.core.context import current_flow_run
from dagflow.core.pauses import PauseStatus
from dagflow.core.states import StateType
from dagflow.errors import DefinitionError, PauseRejected

POLL_SECONDS = 0.5
M = TypeVar("M")


@overload
def pause(
    reason: str = "",
    *,
    timeout: float | None = 3600.0,
    input: None = None,
    on_timeout: Literal["fail", "approve"] = "fail",
) -> None: ...


@overload
def pause(
    reason: str = "",
    *,
    timeout: float | None = 3600.0,
    input: type[M],
    on_timeout: Literal["fail", "approve"] = "fail",
) -> M: ...


def pause(
    reason: str = "",
    *,
    timeout: float | None = 3600.0,
    input: Any = None,
    on_timeout: Literal["fail", "approve"] = "fail",
) -> Any:
    """Pause the current flow run until it is approved (returns the approver's input, an
    instance of `input`, or None) or rejected (raises `PauseRejected`).

    `timeout`: seconds to wait (None: for ever); then the run fails, or with
    `on_timeout="approve"` goes on (with `input()` built from its defaults).
    """
    ctx = current_flow_run.get()
    if ctx is None:
        raise DefinitionError("dagflow.pause() works in a flow's body, not outside a flow run")
    model = _check(input, timeout, on_timeout)
    runner = ctx.runner
    board = runner.pauses
    if board is None:
        raise DefinitionError("this flow run has no run history to record a pause in")
    _stop_if_cancelled(runner)
    with runner.lock:
        runner.pauses_made += 1
        number = runner.pauses_made
    schema = model.model_json_schema() if model is not None else None
    deadline = None if timeout is None else time.time() + timeout
    board.open_pause(runner.run_id, number, reason, schema, deadline)
    hint = f"approve with: dagflow runs approve {runner.run_id[:12]}"
    runner.tracker.flow_transition(
        StateType.PAUSED, f"paused for approval: {reason} ({hint})" if reason else f"({hint})"
    )
    for sink in runner.sinks:  # recorded PAUSED before anyone is told to answer it
        try:
            sink.flush(timeout=10)
        except Exception:
            pass  # a failing sink is the sink's to report
    if runner.flow.options.notify:
        runner.notify("PAUSED", None, f"{reason} ({hint})" if reason else hint)
    while True:
        _stop_if_cancelled(runner)
        found = board.read_pause(runner.run_id, number)
        if found.status is PauseStatus.SUBMITTED:
            try:
                value = model.model_validate(found.submitted) if model is not None else None
            except Exception as exc:  # pydantic's ValidationError: name the fields
                board.settle_pause(runner.run_id, number, PauseStatus.WAITING, _errors(exc))
            else:
                board.settle_pause(runner.run_id, number, PauseStatus.APPROVED)
                by = f" by {found.by}" if found.by else ""
                _go_on(runner, f"approved{by}")
                return value
        elif found.status is PauseStatus.REJECTED:
            by = f" by {found.by}" if found.by else ""
            why = f": {found.error}" if found.error else ""
            raise PauseRejected(
                f"flow run rejected{by} while paused for approval{why}", run_id=runner.run_id
            )
        elif found.status is PauseStatus.APPROVED:  # settled by an earlier poll
            return None
        if deadline is not None and time.time() >= deadline:
            if on_timeout == "approve":
                board.settle_pause(runner.run_id, number, PauseStatus.APPROVED, "timed out")
                _go_on(runner, f"approved: nobody answered within {timeout:g}s")
                return model() if model is not None else None
            board.settle_pause(runner.run_id, number, PauseStatus.TIMED_OUT)
            raise PauseRejected(
                f"flow run was not approved within {timeout:g}s of pausing"
                + (f" ({reason})" if reason else ""),
                run_id=runner.run_id,
            )
        time.sleep(POLL_SECONDS)


def _stop_if_cancelled(runner: Any) -> None:
    if runner.cancel_requested or (runner.current is not None and runner.current.cancelling):
        from dagflow.engine.attempt import Cancelled

        raise Cancelled(f"flow run {runner.run_id} is being cancelled")


def _go_on(runner: Any, message: str) -> None:
    with runner.lock:
        if runner.flow_run.state is StateType.PAUSED:
            runner.tracker.flow_transition(StateType.RUNNING, message)


def _check(model: Any, timeout: Any, on_timeout: Any) -> Any:
    if model is not None and not (
        isinstance(model, type) and callable(getattr(model, "model_validate", None))
    ):
        raise DefinitionError(
            f"dagflow.pause(input=...) takes a pydantic model class, got {model!r}"
        )
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise DefinitionError(f"dagflow.pause(timeout=...) must be seconds > 0, got {timeout!r}")
    if on_timeout not in ("fail", "approve"):
        raise DefinitionError(
            f"dagflow.pause(on_timeout=...) is 'fail' or 'approve', got {on_timeout!r}"
        )
    if on_timeout == "approve" and model is not None:
        try:
            model()
        except Exception:
            raise DefinitionError(
                f"dagflow.pause(on_timeout='approve') needs an input model whose fields all "
                f"have defaults ({model.__name__} has required fields)"
            ) from None
    return model


def _errors(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"{type(exc).__name__}: {exc}"
    parts = []
    for err in errors(include_input=False):
        where = ".".join(str(p) for p in err.get("loc", ())) or "(input)"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)
