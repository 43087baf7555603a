"""`FlowRunner`: one flow run on a Dask client, from validated parameters to a final state.

The runner owns the run's lifecycle, not its record: what state anything is in is decided by the
run machine (`core/machine.py`), through the run's `RunTracker`. It announces the run, listens to
the run's Dask topic, and runs the body once per flow attempt (`attempt.py`), each in a thread of
its own, so that the calling thread stays free to notice Ctrl-C (cancel the run's tasks, end
CANCELLED) and the flow's timeout; between attempts it applies the flow's retry policy. At the end
it records the run's final state and calls the flow's hooks.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from distributed.client import FutureCancelledError

from dagflow.core.config import EMPTY, RunConfig, secret_parameter_values
from dagflow.core.flow import FlowDefinition
from dagflow.core.keys import parse_key
from dagflow.core.machine import RunState
from dagflow.core.pauses import PauseBoard
from dagflow.core.reports import ResultInfo
from dagflow.core.reuse import ResumePlan, plan_from
from dagflow.core.runs import FlowRun, FlowRunStarted
from dagflow.core.states import StateType
from dagflow.engine.attempt import Cancelled, FlowAttempt
from dagflow.engine.chunks import Chunk, ItemFuture, is_chunk_key
from dagflow.engine.failures import error_text
from dagflow.engine.routing import router_for
from dagflow.engine.scheduler_state import trim_on_scheduler
from dagflow.engine.sinks import EventSink
from dagflow.engine.tracker import RunTracker, run_hooks
from dagflow.errors import FlowCancelled, FlowFailed, FlowTimeout, PauseRejected, UpstreamFailed
from dagflow.settings import Settings

log = logging.getLogger(__name__)
S = StateType
BODY_GRACE_SECONDS = 0.5  # after a timeout or cancel: how long the body may take to notice


class Cluster(Protocol):
    """What a run needs of an open cluster (`dagflow.clusters.ClusterHandle` is one)."""

    @property
    def client(self) -> Any: ...  # distributed.Client

    @property
    def address(self) -> str: ...

    @property
    def dashboard_link(self) -> str | None: ...

    @property
    def adaptive(self) -> bool: ...


class FlowRunner:
    """Runs one flow run, attempt after attempt, to its final state."""

    def __init__(
        self,
        flow: FlowDefinition[..., Any],
        parameters: dict[str, Any],
        cluster: Cluster,
        *,
        settings: Settings,
        parent: FlowRunner | None = None,
        sinks: Sequence[EventSink] = (),
        run_id: str | None = None,
        resume: ResumePlan | None = None,
        resumed_from: tuple[StateType, int] | None = None,
        scheduled: bool = False,
        config: RunConfig = EMPTY,
        pauses: PauseBoard | None = None,
    ) -> None:
        self.flow = flow
        self.parameters = parameters
        self.cluster = cluster
        self.client = cluster.client
        self.settings = settings
        self.parent = parent
        self.run_id = run_id or uuid.uuid4().hex
        self.router = router_for(cluster.client)
        self.topic = self.router.topic  # the client's one topic; reports are routed by token
        self.tokens: list[str] = []
        self.sinks = list(sinks)
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
        prior = resume.attempts() if resume is not None else None
        # What the run reads (variables, secrets) as it was when it started; a subflow reads
        # its parent's. Secret values and `SecretStr` parameters are masked in what it records.
        # Where `dagflow.pause()` records the run's pauses and reads their answers.
        self.pauses: PauseBoard | None = parent.pauses if parent is not None else pauses
        self.pauses_made = 0
        base: RunConfig = parent.config if parent is not None else config
        self.config: RunConfig = base.with_masked(secret_parameter_values(parameters))
        self.tracker = RunTracker(
            RunState(self.flow_run, prior),
            self.sinks,
            settings.log_max_record,
            self._hold,
            masker=self.config.masker,
        )
        self.lock = self.tracker.lock
        self.children: list[FlowRunner] = []
        self.cancel_requested = False  # the user (or a parent) asked to cancel the run
        self.current: FlowAttempt | None = None
        self.resume = resume
        self.result: ResultInfo | None = None  # where the return value was persisted
        # One Dask span per run (a subflow's nests in its parent's): every wave is submitted
        # under the same span ids, so the dashboard shows the run as one span, not one per wave.
        parent_span: dict[str, tuple[str, ...]] = parent.span if parent else {"name": (), "ids": ()}
        self.span: dict[str, tuple[str, ...]] = {
            "name": (*parent_span["name"], flow.name, self.run_id),
            "ids": (*parent_span["ids"], str(uuid.uuid4()), str(uuid.uuid4())),
        }
        if resumed_from is not None:
            self.tracker.state.resumed(*resumed_from, time.time())
        elif scheduled:  # its SCHEDULED row exists: the run continues from there
            self.tracker.state.scheduled(time.time())

    def _hold(self, key: str) -> Any:
        """A Dask future for a task's key, to wait for it while it is computed again; None when
        this client no longer wants the key (a new Future would never hear of it)."""
        from distributed import Future

        dask_key = parse_key(key)
        if dask_key in self.client.futures:
            return Future(dask_key, self.client)
        name, index = dask_key
        for held in list(self.client.futures):  # an item of a chunk: the chunk is computed again
            if is_chunk_key(held) and held[0] == name and held[1] <= index < held[2]:
                stage = 0 if held in self.tracker.fused_chunks else None  # a fused head's
                return ItemFuture(Chunk(Future(held, self.client)), index - held[1], stage)
        return None

    @property
    def state(self) -> RunState:
        return self.tracker.state

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
        try:
            self._run_attempts()
        finally:
            for token in self.tokens:
                self.router.unregister(token)
            self.tracker.stop()
            trim_on_scheduler(self.client, self.span["ids"][-2:])
        return fr

    def _run_attempts(self) -> None:
        policy = self.flow.options.retry
        while True:
            self.state.attempt += 1
            state, message, error = self._run_attempt()
            self.tracker.close(self.state.attempt)  # no task of it is left without an end
            retry = (
                state in (S.FAILED, S.TIMED_OUT)
                and not self.cancel_requested
                and not isinstance(error, PauseRejected)  # an approver's no is final
            )
            attempt = self.state.attempt
            if retry and policy.should_retry(error or Exception(), attempt - 1):
                self._carry_over()
                delay = policy.delay(attempt)
                self.tracker.flow_transition(
                    S.RETRYING, f"{message} (retry {attempt}/{policy.retries} in {delay:.2f}s)"
                )
                if self._sleep(delay):
                    continue
                state, message = S.CANCELLED, "cancelled while waiting to retry"
            self._finish(state, message, error)
            return

    def _run_attempt(self) -> tuple[StateType, str, BaseException | None]:
        """One execution of the body; returns (final state, message, error)."""
        attempt = self.current = FlowAttempt(self, self.state.attempt)
        self.tokens.append(attempt.graph.run_token)
        self.router.register(attempt.graph.run_token, self.tracker)
        outcome: dict[str, Any] = {}
        body = threading.Thread(
            target=attempt.run_body,
            args=(outcome,),
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
                    # The body's thread cannot be stopped; from now on its task calls are
                    # refused (the attempt is cancelling), and the run ends now, at its timeout.
                    attempt.cancel_tasks(f"flow timed out after {timeout:g}s")
                    body.join(BODY_GRACE_SECONDS)
                    error = FlowTimeout(
                        f"flow {self.flow.name!r} timed out after {timeout:g}s", run_id=self.run_id
                    )
                    attempt.settle_remaining(S.CANCELLED, "flow timed out")
                    return S.TIMED_OUT, str(error), error
                if self.cancel_requested:
                    body.join(BODY_GRACE_SECONDS)  # its next task call or wait stops it
                    break
                body.join(0.2 if remaining is None else min(0.2, remaining))
        except KeyboardInterrupt:
            self.cancel("cancelled by the user (Ctrl-C)")
            if body.is_alive():
                body.join(BODY_GRACE_SECONDS)
            attempt.settle_remaining(S.CANCELLED, "flow run cancelled")
            return S.CANCELLED, "cancelled by the user (Ctrl-C)", None
        if self.cancel_requested:
            attempt.settle_remaining(S.CANCELLED, "flow run cancelled")
            return S.CANCELLED, "flow run cancelled", None
        lost = self._scheduler_lost(outcome.get("error"))
        if lost:
            with self.lock:
                keys = list(self.tracker.inflight)
            self.tracker.change(lambda st: st.settle(keys, S.CRASHED, lost, time.time()))
            return S.CRASHED, lost, FlowFailed(lost, run_id=self.run_id)
        if "error" in outcome:
            exc = outcome["error"]
            attempt.settle_remaining(S.CANCELLED, "flow body failed")
            if isinstance(exc, UpstreamFailed) and exc.__cause__ is not None:
                # the body asked for a value that never came: the run reports why
                with self.lock:
                    found = self.state.failure_summary(attempt.graph.run_token, exc.cause)
                return S.FAILED, found[0] if found else error_text(exc.__cause__), exc
            return S.FAILED, error_text(exc), exc
        verdict = attempt.verdict()
        if verdict.state is S.COMPLETED:
            self.flow_run._value = outcome.get("value")
            self.flow_run._has_value = True
            if self.flow.options.persist_results:
                try:
                    self.result = self._persist_value(outcome.get("value"))
                except Exception as exc:
                    message = (
                        f"flow {self.flow.name!r} returned a value that could not be persisted: "
                        f"{error_text(exc)}"
                    )
                    return S.FAILED, message, FlowFailed(message, run_id=self.run_id)
            return S.COMPLETED, "", None
        failed = verdict.root
        cause = (
            attempt.task_error(failed.dask_key) if failed is not None and failed.dask_key else None
        )
        return (
            verdict.state,
            verdict.message,
            cause or FlowFailed(verdict.message, run_id=self.run_id),
        )

    def _carry_over(self) -> None:
        """Before a flow retry: what this attempt's tasks left (results, attempts) is reused."""
        with self.lock:
            rows = [
                (tr.dask_key or "", tr.state, tr.attempts, tr.result_location,
                 tr.result_serializer, tr.result_identity)
                for tr in self.flow_run.all_task_runs.values()
            ]  # fmt: skip
        newer = plan_from(rows, spent_retries=False)
        self.resume = newer if self.resume is None else self.resume.updated(newer)

    def _scheduler_lost(self, error: BaseException | None) -> str | None:
        """The run's message when this attempt lost its Dask scheduler, else None."""
        status = self.client.status
        lost_connection = (
            isinstance(error, FutureCancelledError) and error.reason == "scheduler-connection-lost"
        )
        if status == "running" and not lost_connection:
            return None
        return (
            f"lost the connection to the Dask scheduler at {self.cluster.address} "
            f"(client {status}); the run crashed: its tasks' outcome is unknown"
        )

    def _persist_value(self, value: Any) -> ResultInfo:
        """Write the flow's return value where its tasks' results go (`persist_results=True`),
        so that the run read back from the history, in any process, returns it."""
        from dagflow.engine.results import ResultStorage

        serializer = self.flow.options.result_serializer
        stored = ResultStorage(self.settings.results_url).write(
            f"{self.run_id}/flow-result", value, serializer
        )
        return ResultInfo(stored.location, stored.size, stored.serializer, None)

    def _finish(self, state: StateType, message: str, error: BaseException | None) -> None:
        fr = self.flow_run
        if error is not None and state is not S.COMPLETED:
            fr._exception = error
            root = error.__cause__ if isinstance(error, UpstreamFailed) else None
            fr.error_type = type(root or error).__name__  # the root failure's type
        if state is S.CANCELLED:
            fr._exception = FlowCancelled(
                f"flow run {self.run_id} cancelled: {message}", run_id=self.run_id
            )
        if self.config.masker is not None:
            message = self.config.masker(message)
        fr.error = message or None
        result = self.result if state is S.COMPLETED else None
        self.tracker.flow_transition(state, message, fr.error_type, result)
        fr.ended = time.time()
        options = self.flow.options
        final = fr.state
        if final.is_success:
            run_hooks(options.on_completion, self.flow, fr)
        elif final is S.CRASHED:
            run_hooks(options.on_crashed, self.flow, fr)
        elif final.is_failure:
            run_hooks(options.on_failure, self.flow, fr)
        if options.notify:
            self.notify(final.value, fr.error)
        self.tracker.release_all()

    def notify(self, state: str, error: str | None, reason: str | None = None) -> None:
        """Tell the flow's notifiers (`notify=`) that asked for `state`; never raises."""
        from dagflow.notifications import send_quietly

        send_quietly(
            self.flow.options.notify,
            state,
            self.flow.name,
            self.run_id,
            error,
            self.settings.api_url,
            reason,
        )

    def check_running(self) -> None:
        """Refuse new work (a subflow) once this run is cancelled or timed out."""
        attempt = self.current
        if self.cancel_requested or (attempt is not None and attempt.cancelling):
            raise Cancelled(f"flow run {self.run_id} is being cancelled: no subflow starts")

    def cancel(self, reason: str) -> None:
        """Cancel this run (and its subflows): stop its tasks on the cluster."""
        with self.lock:
            if self.flow_run.state in (S.RUNNING, S.PAUSED):
                self.tracker.flow_transition(S.CANCELLING, reason)
            self.cancel_requested = True
        if self.current is not None:
            self.current.cancel_tasks(reason)
        for child in list(self.children):
            child.cancel(reason)

    def _sleep(self, seconds: float) -> bool:
        """Sleep between flow attempts; False if interrupted."""
        try:
            time.sleep(seconds)
        except KeyboardInterrupt:
            self.cancel_requested = True
            return False
        return True


def entrypoint_of(flow: FlowDefinition[..., Any]) -> str | None:
    """`/abs/path/file.py:function` of the flow, so a later `dagflow resume` can load it."""
    try:
        path = inspect.getsourcefile(flow.fn)
    except TypeError:
        return None
    qualname = getattr(flow.fn, "__qualname__", "")
    if path is None or "<" in qualname:
        return f"{flow.fn.__module__}:{qualname}" if "<" not in qualname else None
    return f"{path}:{qualname}"
