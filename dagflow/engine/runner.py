"""`FlowRunner`: one flow run on a Dask client, from validated parameters to a final state.

The flow body runs on the driver in a thread of its own, so that the calling thread stays free to
notice Ctrl-C (cancel the run's tasks, end CANCELLED) and the flow's timeout. Task calls in the
body add to the run's graph; `.result()` or the end of the body submits the pending calls as one
wave. Workers report transitions over the run's Dask topic; the run's `RunTracker` folds them
into the `FlowRun` (checking each against the state machine) and hands them to the sinks.

A task's future is held until its final state is known, then released, so results that nothing
refers to any more can leave the workers' memory. The run ends only when every task it started
has a final state: reported by its worker, or, if a report is lost, derived from its future.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import dask
from distributed.client import _wait  # `distributed.wait` insists on a default client

from dagflow.clusters import ClusterHandle, missing_resources
from dagflow.core.context import FlowRunContext, current_flow_run
from dagflow.core.definitions import Flow
from dagflow.core.graph import Call, Key, RunGraph, TaskFuture, key_str
from dagflow.core.runs import FlowRun, FlowRunStarted, StateEvent, TaskRun
from dagflow.core.states import StateType, Transition
from dagflow.engine import printing
from dagflow.engine.compiler import Compiler, ResumePlan
from dagflow.engine.sinks import EventSink, global_sinks
from dagflow.engine.tracker import RunTracker, run_hooks
from dagflow.engine.wrapper import Failure, error_text
from dagflow.errors import (
    ClusterError,
    DagflowError,
    DefinitionError,
    FlowCancelled,
    FlowFailed,
    FlowTimeout,
    TaskFailed,
)

log = logging.getLogger(__name__)
S = StateType

EVENT_GRACE_SECONDS = 5.0


class _Cancelled(Exception):
    """Raised inside the body thread once the run is being cancelled."""


class FlowRunner:
    """Runs one flow run; implements the `Resolver` that its futures call back into."""

    def __init__(
        self,
        flow: Flow[..., Any],
        parameters: dict[str, Any],
        cluster: ClusterHandle,
        *,
        parent: FlowRunner | None = None,
        sinks: Sequence[EventSink] = (),
        run_id: str | None = None,
        resume: ResumePlan | None = None,
        resumed_from: tuple[StateType, int] | None = None,
    ) -> None:
        self.flow = flow
        self.parameters = parameters
        self.cluster = cluster
        self.client = cluster.client
        self.parent = parent
        self.run_id = run_id or uuid.uuid4().hex
        self.topic = f"dagflow-{self.run_id}"
        self.own_sinks = list(sinks)
        self.sinks = [*global_sinks(), *sinks]
        self.flow_run = FlowRun(
            id=self.run_id,
            flow_name=flow.name,
            parameters=parameters,
            flow_version=flow.version,
            parent_run_id=parent.run_id if parent else None,
            dashboard_link=cluster.dashboard_link,
            cluster_address=cluster.address,
            entrypoint=entrypoint_of(flow),
        )
        self.tracker = RunTracker(self.flow_run, self.sinks)
        self.lock = self.tracker.lock
        self.inflight = self.tracker.inflight
        self.failed = self.tracker.failed
        self.observed: set[str] = set()  # failed keys whose error the body saw or allowed
        self.children: list[FlowRunner] = []
        self.cancelling = False  # stop submitting: this attempt is being torn down
        self.cancel_requested = False  # the user (or a parent) asked to cancel the run
        self.attempt = 0
        self.graph: RunGraph | None = None
        self.compiler: Compiler | None = None
        self.resume = resume
        # One Dask span per run (a subflow's nests in its parent's): every wave is submitted
        # under the same span ids, so the dashboard shows the run as one span, not one per wave.
        parent_span: dict[str, tuple[str, ...]] = parent.span if parent else {"name": (), "ids": ()}
        self.span: dict[str, tuple[str, ...]] = {
            "name": (*parent_span["name"], flow.name, self.run_id),
            "ids": (*parent_span["ids"], str(uuid.uuid4()), str(uuid.uuid4())),
        }
        if resumed_from is not None:
            state, attempts = resumed_from
            self.flow_run.state = state
            self.flow_run.history.append(Transition(None, state, time.time(), attempts))
            self.attempt = self.tracker.attempt = attempts

    # ----------------------------------------------------------------- run lifecycle

    def run(self) -> FlowRun:
        """Run to a final state; never raises for the flow's own failures."""
        fr = self.flow_run
        now = time.time()
        fr.started = now
        self.tracker.emit(
            [
                FlowRunStarted(
                    self.run_id,
                    fr.flow_name,
                    fr.flow_version,
                    dict(self.parameters),
                    now,
                    fr.parent_run_id,
                    None,
                    fr.cluster_address,
                    fr.dashboard_link,
                    fr.entrypoint,
                ),
            ]
        )
        self.tracker.flow_transition(S.PENDING)
        self.tracker.start()
        self.client.subscribe_topic(self.topic, self.tracker.on_topic)
        try:
            self._run_attempts()
        finally:
            try:
                self.client.unsubscribe_topic(self.topic)
            except Exception:
                log.debug("unsubscribe failed", exc_info=True)
            self.tracker.stop()
        return fr

    def _run_attempts(self) -> None:
        policy = self.flow.options.retry
        while True:
            self.attempt += 1
            self.tracker.attempt = self.flow_run.attempts = self.attempt
            state, message, error = self._run_attempt()
            retry = state in (S.FAILED, S.TIMED_OUT) and not self.cancel_requested
            if retry and policy.should_retry(error or Exception(), self.attempt - 1):
                delay = policy.delay(self.attempt)
                self.tracker.flow_transition(
                    S.RETRYING,
                    f"{message} (retry {self.attempt}/{policy.retries} in {delay:.2f}s)",
                )
                if self._sleep(delay):
                    continue
                state, message = S.CANCELLED, "cancelled while waiting to retry"
            self._finish(state, message, error)
            return

    def _run_attempt(self) -> tuple[StateType, str, BaseException | None]:
        """One execution of the body; returns (final state, message, error)."""
        self.graph = RunGraph(self, f"{self.run_id[:8]}{self.attempt}")
        self.compiler = Compiler(
            self.run_id,
            self.topic,
            persist_all=self.flow.options.persist_results,
            resume=self.resume,
        )
        self.observed.clear()
        self.cancelling = False
        outcome: dict[str, Any] = {}
        ctx = FlowRunContext(self.run_id, self.flow.name, self.graph, self, self.tracker.flow_log)
        body = threading.Thread(
            target=self._body,
            args=(ctx, outcome),
            name=f"dagflow-flow-{self.flow.name}",
            daemon=True,
        )
        timeout = self.flow.options.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self.tracker.flow_transition(S.RUNNING)
            body.start()
            while body.is_alive():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._cancel_tasks(f"flow timed out after {timeout:g}s", user=False)
                    body.join(10)
                    error = FlowTimeout(
                        f"flow {self.flow.name!r} timed out after {timeout:g}s", run_id=self.run_id
                    )
                    self._settle_remaining(S.CANCELLED, "flow timed out")
                    return S.TIMED_OUT, str(error), error
                body.join(0.2 if remaining is None else min(0.2, remaining))
        except KeyboardInterrupt:
            self.cancel("cancelled by the user (Ctrl-C)")
            if body.is_alive():
                body.join(10)
            self._settle_remaining(S.CANCELLED, "flow run cancelled")
            return S.CANCELLED, "cancelled by the user (Ctrl-C)", None
        if self.cancel_requested:
            self._settle_remaining(S.CANCELLED, "flow run cancelled")
            return S.CANCELLED, "flow run cancelled", None
        lost = self._scheduler_lost(outcome.get("error"))
        if lost:
            with self.lock:
                keys = list(self.inflight)
            self.tracker.apply(
                [self.tracker.derived(k, S.CRASHED, lost, "SchedulerLost") for k in keys]
            )
            return S.CRASHED, lost, FlowFailed(lost, run_id=self.run_id)
        if "error" in outcome:
            exc = outcome["error"]
            self._settle_remaining(S.CANCELLED, "flow body failed")
            return S.FAILED, error_text(exc), exc
        return self._verdict(outcome)

    def _scheduler_lost(self, error: BaseException | None) -> str | None:
        """The run's message when this attempt lost its Dask scheduler, else None."""
        status = self.client.status
        if status == "running" and (error is None or "scheduler-connection-lost" not in str(error)):
            return None
        return (
            f"lost the connection to the Dask scheduler at {self.cluster.address} "
            f"(client {status}); the run crashed: its tasks' outcome is unknown"
        )

    def _body(self, ctx: FlowRunContext, outcome: dict[str, Any]) -> None:
        token = current_flow_run.set(ctx)
        try:
            args, kwargs = self.flow.parameters.call_arguments(self.parameters)
            with printing.capture(self.flow.options.log_prints):
                value = self.flow.fn(*args, **kwargs)
            outcome["value"] = self._resolve_return(value)
            self._await_all()
        except BaseException as exc:
            outcome["error"] = exc
            try:
                self._await_all()
            except BaseException:
                log.debug("waiting for tasks after a body error failed", exc_info=True)
        finally:
            current_flow_run.reset(token)

    def _verdict(self, outcome: dict[str, Any]) -> tuple[StateType, str, BaseException | None]:
        """The attempt's state from its tasks: failed if any failure went unhandled.

        A failure is handled when the body saw it (`.result()` raised) or a downstream task took
        it through `allow_failure`. A task that could not run because of a handled failure is
        still unhandled; the error the run reports is then its root cause's.
        """
        assert self.graph is not None
        token = self.graph.run_token
        with self.lock:
            this_attempt = [tr for tr in self.flow_run.task_runs.values() if token in tr.key]
        unhandled = [
            tr for tr in this_attempt if tr.state.is_failure and tr.key not in self.observed
        ]
        if not unhandled:
            self.flow_run._value = outcome.get("value")
            self.flow_run._has_value = True
            return S.COMPLETED, "", None
        causes = [tr for tr in unhandled if tr.state is not S.UPSTREAM_FAILED] or [
            tr for tr in this_attempt if tr.state.is_failure and tr.state is not S.UPSTREAM_FAILED
        ]
        first = causes[0] if causes else unhandled[0]
        more = f" (and {len(unhandled) - 1} more)" if len(unhandled) > 1 else ""
        message = f"task {first.name!r} [{first.key}] ended {first.state}: {first.error}{more}"
        return S.FAILED, message, self._task_error(first) or FlowFailed(message, run_id=self.run_id)

    def _task_error(self, tr: TaskRun) -> BaseException | None:
        """The failed task's own exception, fetched from its worker (small: a `Failure`)."""
        name, _, index = tr.key.rpartition("[")
        key = (name, int(index.rstrip("]")))
        fut = self._future_for(key)
        if fut is None:
            return None
        try:
            value = fut.result(timeout=10)
        except Exception as exc:
            return exc
        return value.error if type(value) is Failure else None

    def _future_for(self, key: Key) -> Any:
        with self.lock:
            return self.inflight.get(key) or self.failed.get(key)

    def _finish(self, state: StateType, message: str, error: BaseException | None) -> None:
        fr = self.flow_run
        if error is not None and state is not S.COMPLETED:
            fr._exception = error
            fr.error_type = type(error).__name__
        if state is S.CANCELLED:
            fr._exception = FlowCancelled(
                f"flow run {self.run_id} cancelled: {message}", run_id=self.run_id
            )
        fr.error = message or None
        if fr.state is S.CANCELLING:
            state = S.CANCELLED
        self.tracker.flow_transition(state, message)
        fr.ended = time.time()
        options = self.flow.options
        if state.is_success:
            run_hooks(options.on_completion, self.flow, fr)
        elif state is S.CRASHED:
            run_hooks(options.on_crashed, self.flow, fr)
        elif state.is_failure or state is S.TIMED_OUT:
            run_hooks(options.on_failure, self.flow, fr)
        self.tracker.release_all()

    # ----------------------------------------------------------------- Resolver protocol

    def submit_pending(self) -> None:
        """Compile and submit every pending call as one wave."""
        assert self.graph is not None and self.compiler is not None
        with self.lock:
            if self.cancelling:
                raise _Cancelled("the flow run is being cancelled")
            calls = self.graph.take_pending()
            if not calls:
                return
            self._check_resources(calls)
            wave = self.compiler.compile(calls)
            try:
                with dask.annotate(span=self.span):
                    futures = self.client.get(wave.graph, wave.keys, sync=False)
            except Exception as exc:
                culprit = self.compiler.find_unpicklable(calls)
                if culprit:
                    raise DefinitionError(culprit) from None
                raise DagflowError(f"submitting tasks to the cluster failed: {exc}") from exc
            self.tracker.submitted(calls, futures)
            for call in calls:
                self.observed.update(key_str(key) for key in call.refs.soft)
                _forget_arguments(call)

    def _check_resources(self, calls: list[Call]) -> None:
        """Fail at submission, instead of waiting forever, when no worker has a task's resource."""
        if self.cluster.adaptive:
            return  # an adaptive cluster may start workers that have it
        needed: dict[str, float] = {}
        for call in calls:
            for name, amount in call.task.options.resources:
                needed[name] = max(needed.get(name, 0.0), amount)
        if not needed:
            return
        missing = set(missing_resources(self.client, needed))
        for call in calls:
            for name, amount in call.task.options.resources:
                if name in missing:
                    raise ClusterError(
                        f"task {call.task.name!r} needs resource {name}={amount:g}, which no "
                        f"worker of the cluster at {self.cluster.address} declares; start "
                        f'workers with --resources "{name}={amount:g}"'
                    )

    def resolve(self, future: TaskFuture[Any], timeout: float | None) -> Any:
        self._check_owner(future)
        if future.dask_future is None:
            self.submit_pending()
        try:
            value = future.dask_future.result(timeout=timeout)
        except Exception as exc:
            if self.cancelling:
                raise _Cancelled("the flow run is being cancelled") from None
            if type(exc).__name__ == "CancelledError":
                raise _Cancelled(f"{future!r} was cancelled") from None
            if isinstance(exc, TimeoutError):
                raise
            self.observed.add(key_str(future.key))
            raise TaskFailed(
                f"task {future.task_name!r} [{key_str(future.key)}] crashed: {error_text(exc)}",
                task=future.task_name,
                run_id=self.run_id,
                cause=type(exc).__name__,
            ) from None
        if type(value) is Failure:
            self.observed.add(key_str(future.key))
            raise value.error
        return value

    def wait_for_future(self, future: TaskFuture[Any], timeout: float | None) -> None:
        self._check_owner(future)
        if future.dask_future is None:
            self.submit_pending()
        self.client.sync(_wait, [future.dask_future], timeout=timeout)

    def future_state(self, future: TaskFuture[Any]) -> StateType:
        tr = self.flow_run.task_runs.get(key_str(future.key))
        return tr.state if tr is not None else S.PENDING

    def _check_owner(self, future: TaskFuture[Any]) -> None:
        if future.run_id != self.run_id:
            raise DefinitionError(f"{future!r} belongs to another flow run")

    def _resolve_return(self, value: Any) -> Any:
        """The body's return value with every future replaced by its result."""
        found: list[TaskFuture[Any]] = []
        _find_futures(value, found)
        if not found:
            return value
        self.submit_pending()
        results = {id(tf): self.resolve(tf, None) for tf in found}
        return _replace_futures(value, results)

    # ----------------------------------------------------------------- completion

    def _await_all(self) -> None:
        """Submit what is left and wait until every task of this attempt has a final state."""
        self.submit_pending()
        with self.lock:
            futures = list(self.inflight.values())
        if futures:
            self.client.sync(_wait, futures)
        self._settle_errored()
        deadline = time.monotonic() + EVENT_GRACE_SECONDS
        with self.tracker.settled:
            while self._unsettled() and time.monotonic() < deadline and not self.cancelling:
                self.tracker.settled.wait(0.05)
        self._reconcile()

    def _unsettled(self) -> list[Key]:
        return [k for k, f in self.inflight.items() if f.status == "finished"]

    def _settle_errored(self) -> None:
        """Futures that erred in Dask (a lost worker, KilledWorker) never report: derive."""
        with self.lock:
            items = list(self.inflight.items())
        events: list[StateEvent] = []
        for key, fut in items:
            if fut.status == "error":
                exc = fut.exception()
                blamed = getattr(exc, "task", key)
                ks = key_str(key)
                tr = self.flow_run.task_runs.get(ks)
                if blamed != key and blamed is not None:
                    state = S.UPSTREAM_FAILED
                    message = f"upstream {key_str(blamed)} failed: {error_text(exc)}"
                else:
                    state = S.FAILED
                    name = tr.name if tr else key[0]
                    message = f"task {name!r} [{ks}] failed in Dask: {error_text(exc)}"
                events.append(self.tracker.derived(key, state, message, type(exc).__name__))
            elif fut.status == "cancelled":
                events.append(self.tracker.derived(key, S.CANCELLED, "cancelled", None))
        if events:
            self.tracker.apply(events)

    def _reconcile(self) -> None:
        """Tasks whose final report never arrived: read their outcome from the cluster."""
        with self.lock:
            missing = [(k, f) for k, f in self.inflight.items() if f.status == "finished"]
        if not missing:
            return
        log.warning(
            "run %s: %d task reports lost; reading their outcome", self.run_id, len(missing)
        )
        values = self.client.gather([f for _, f in missing], errors="skip")
        events: list[StateEvent] = []
        for (key, _), value in zip(missing, values, strict=False):
            if type(value) is Failure:
                events.append(
                    self.tracker.derived(
                        key, S(value.state), error_text(value.error), type(value.error).__name__
                    )
                )
            else:
                events.append(
                    self.tracker.derived(key, S.COMPLETED, "state read from the cluster", None)
                )
        self.tracker.apply(events)

    def _settle_remaining(self, state: StateType, message: str) -> None:
        """At cancellation or timeout: every task without a final state gets `state`."""
        self._settle_errored()
        with self.lock:
            keys = list(self.inflight)
        events = [self.tracker.derived(k, state, message, None) for k in keys]
        if events:
            self.tracker.apply(events)

    def cancel(self, reason: str) -> None:
        """Cancel this run (and its subflows): stop its tasks on the cluster."""
        self._cancel_tasks(reason)
        for child in list(self.children):
            child.cancel(reason)

    def _cancel_tasks(self, reason: str, user: bool = True) -> None:
        with self.lock:
            if user and self.flow_run.state is S.RUNNING:
                self.tracker.flow_transition(S.CANCELLING, reason)
            self.cancel_requested = self.cancel_requested or user
            self.cancelling = True
            futures = list(self.inflight.values())
        if futures:
            try:
                self.client.cancel(futures, reason=reason)
            except Exception:
                log.debug("cancel failed", exc_info=True)

    def _sleep(self, seconds: float) -> bool:
        """Sleep between flow attempts; False if interrupted."""
        try:
            time.sleep(seconds)
        except KeyboardInterrupt:
            self.cancel_requested = True
            return False
        return True


def entrypoint_of(flow: Flow[..., Any]) -> str | None:
    """`/abs/path/file.py:function` of the flow, so a later `dagflow resume` can load it."""
    import inspect

    try:
        path = inspect.getsourcefile(flow.fn)
    except TypeError:
        return None
    qualname = getattr(flow.fn, "__qualname__", "")
    if path is None or "<" in qualname:
        return f"{flow.fn.__module__}:{qualname}" if "<" not in qualname else None
    return f"{path}:{qualname}"


def _forget_arguments(call: Call) -> None:
    """After submission the cluster holds the arguments; drop the driver's references."""
    call.args = ()
    call.kwargs = {}
    call.futures = []


def _find_futures(value: Any, found: list[TaskFuture[Any]]) -> None:
    kind = type(value)
    if kind is TaskFuture:
        found.append(value)
    elif kind in (list, tuple, set, frozenset):
        for v in value:
            _find_futures(v, found)
    elif kind is dict:
        for v in value.values():
            _find_futures(v, found)


def _replace_futures(value: Any, results: dict[int, Any]) -> Any:
    kind = type(value)
    if kind is TaskFuture:
        return results[id(value)]
    if kind in (list, tuple, set, frozenset):
        return kind(_replace_futures(v, results) for v in value)
    if kind is dict:
        return {k: _replace_futures(v, results) for k, v in value.items()}
    return value
