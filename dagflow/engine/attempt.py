"""`FlowAttempt`: one execution of a flow body, and the `Resolver` its futures call back into.

An attempt owns what lives as long as one execution of the body: the run's graph for this attempt
(its keys carry the attempt's run token), the compiler, the failures the body saw, and whether it
is being torn down. Task calls in the body add to the graph; `.result()` (or the body's end)
compiles every pending call into one wave and submits it in one message. When the body is done
the attempt waits until every task it started has an end (reported by its worker, or derived
from its Dask future when no report can come), and asks the run machine for its verdict.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

import dask
from distributed.client import _wait  # `distributed.wait` insists on a default client
from distributed.utils import CancelledError

from dagflow.core.context import FlowRunContext, current_flow_run
from dagflow.core.graph import Call, RunGraph, TaskFuture
from dagflow.core.keys import key_name, key_text, parse_key, run_token
from dagflow.core.machine import Outcome, RunState, Verdict
from dagflow.core.states import StateType
from dagflow.core.walk import leaves, transform
from dagflow.engine import chunk_guard, printing
from dagflow.engine.batches import Chunks, Fused, MapPlanner
from dagflow.engine.chunks import blamed_key, dask_futures, values_of
from dagflow.engine.compiler import Compiler
from dagflow.engine.failures import Failure, error_text
from dagflow.engine.logs import LogLimits
from dagflow.engine.shipping import shipping_for
from dagflow.engine.submission import check_resources, forget_arguments, quiet_serialization_errors
from dagflow.errors import DagflowError, DefinitionError, TaskFailed, UpstreamFailed

if TYPE_CHECKING:
    from dagflow.core.config import RunConfig
    from dagflow.core.flow import FlowDefinition
    from dagflow.engine.compiler import ResumePlan
    from dagflow.engine.tracker import RunTracker
    from dagflow.settings import Settings


class Run(Protocol):
    """What an attempt needs of its run (the engine's `FlowRunner` is one)."""

    run_id: str
    topic: str
    flow: FlowDefinition[..., Any]
    parameters: dict[str, Any]
    tracker: RunTracker
    client: Any
    cluster: Any
    settings: Settings
    resume: ResumePlan | None
    span: dict[str, tuple[str, ...]]
    config: RunConfig


log = logging.getLogger(__name__)
S = StateType

EVENT_GRACE_SECONDS = 5.0
DRAIN_SECONDS = 30.0  # how long the end of an attempt waits for the reports already received


class Cancelled(Exception):
    """Raised inside the body thread once the run is being cancelled."""


class FlowAttempt:
    """One execution of a flow body on the runner's cluster."""

    def __init__(self, runner: Run, number: int) -> None:
        self.runner = runner
        self.number = number  # the flow attempt's number (its tasks' `RunState` attempt)
        self.run_id = runner.run_id
        self.tracker = runner.tracker
        self.lock = runner.tracker.lock
        self.client = runner.client
        self.graph = RunGraph(self, run_token(runner.run_id, number))
        self.compiler = Compiler(
            runner.run_id,
            runner.topic,
            results_url=runner.settings.results_url,
            log_limits=LogLimits(runner.settings.log_max_record, runner.settings.log_max_per_task),
            persist_all=runner.flow.options.persist_results,
            resume=runner.resume,
            shipping=shipping_for(runner.client),
            config=runner.config,
        )
        self.observed: set[str] = set()  # failed keys whose error the body saw or allowed
        self.planner = MapPlanner(self._threads)  # how maps are cut into chunks
        self.cancelling = False  # stop submitting: this attempt is being torn down

    # ----------------------------------------------------------------- the body

    def run_body(self, outcome: dict[str, Any]) -> None:
        """The body thread: run the flow function, then wait for every task it started."""
        runner = self.runner
        flow = runner.flow
        ctx = FlowRunContext(
            self.run_id, flow.name, self.graph, runner, self.tracker.flow_log, runner.config
        )
        token = current_flow_run.set(ctx)
        try:
            args, kwargs = flow.parameters.call_arguments(runner.parameters)
            with printing.capture(flow.options.log_prints):
                value = flow.fn(*args, **kwargs)
            outcome["value"] = self._resolve_return(value)
            self.await_all()
        except BaseException as exc:
            outcome["error"] = exc
            try:
                self.await_all()
            except BaseException:
                log.debug("waiting for tasks after a body error failed", exc_info=True)
        finally:
            current_flow_run.reset(token)

    def verdict(self) -> Verdict:
        with self.lock:
            return self.tracker.state.verdict(self.graph.run_token, self.observed)

    def task_error(self, key: str) -> BaseException | None:
        """The failed task's own exception, fetched from its worker (small: a `Failure`)."""
        fut = self.tracker.future_for(key)
        if fut is None:
            return None
        try:
            value = fut.result(timeout=10)
        except Exception as exc:
            return exc
        return value.error if type(value) is Failure else None

    # ----------------------------------------------------------------- Resolver protocol

    def submit_pending(self) -> None:
        """Compile and submit every pending call: one wave, or a few rounds when adaptive maps
        first time a few probe items (see `batches.py`)."""
        with self.lock:
            if self.cancelling:
                raise Cancelled("the flow run is being cancelled")
            calls = self.graph.take_pending()
            if not calls:
                return
            check_resources(self.runner.cluster, self.client, calls)
        try:
            rest = calls
            while rest:
                plan = self.planner.plan_round(rest)
                for note in plan.notes:
                    self.tracker.flow_log(logging.INFO, note)
                with self.lock:
                    if self.cancelling:
                        raise Cancelled("the flow run is being cancelled")
                    self._submit(plan.calls, plan.chunks, plan.fused)
                for probe in plan.probes:
                    self.planner.measure(probe, self._task_run, self._wait_news)
                rest = plan.rest
        finally:
            for call in calls:
                forget_arguments(call)

    def _submit(self, calls: list[Call], chunks: Chunks, fused: Fused) -> None:
        if chunks:
            chunk_guard.install(self.client)  # once per client: a poison item fails alone
        wave = self.compiler.compile(calls, chunks, fused)
        try:
            with dask.annotate(span=self.runner.span), quiet_serialization_errors():
                futures = self.client.get(wave.graph, wave.keys, sync=False)
        except Exception as exc:
            culprit = self.compiler.find_unpicklable(calls)
            if culprit:
                raise DefinitionError(culprit) from None
            raise DagflowError(f"submitting tasks to the cluster failed: {exc}") from exc
        self.tracker.submitted(calls, futures, wave.chunks, wave.fused)
        for call in calls:
            self.observed.update(key_text(key) for key in call.soft_keys())
            forget_arguments(call)

    def _task_run(self, key: str) -> Any:
        with self.lock:
            return self.tracker.state.task_run(key)

    def _wait_news(self, seconds: float) -> None:
        if self.cancelling:
            raise Cancelled("the flow run is being cancelled")
        with self.tracker.settled:
            self.tracker.settled.wait(seconds)

    def _threads(self) -> int:
        try:
            return sum(self.client.nthreads().values())
        except Exception:
            log.debug("could not count the cluster's threads", exc_info=True)
            return 1

    def resolve(self, future: TaskFuture[Any], timeout: float | None) -> Any:
        self._check_owner(future)
        if future.dask_future is None:
            self.submit_pending()
            self._check_held(future)
        try:
            value = future.dask_future.result(timeout=timeout)
        except Exception as exc:
            if self.cancelling:
                raise Cancelled("the flow run is being cancelled") from None
            if isinstance(exc, CancelledError):
                raise Cancelled(f"{future!r} was cancelled") from None
            if isinstance(exc, TimeoutError):
                raise
            self.observed.add(key_text(future.key))
            raise TaskFailed(
                f"task {future.task_name!r} [{key_text(future.key)}] crashed: {error_text(exc)}",
                task=future.task_name,
                run_id=self.run_id,
                cause=type(exc).__name__,
            ) from None
        if type(value) is Failure:
            self._observe(future, value.error)
            raise value.error
        return value

    def _observe(self, future: TaskFuture[Any], error: BaseException) -> None:
        """The body saw `future`'s failure; one that did not run because of an upstream failure
        shows the body that root failure too (its `__cause__`), and the tasks between."""
        self.observed.add(key_text(future.key))
        if isinstance(error, UpstreamFailed):
            token = self.graph.run_token
            for ref in (error.cause, *error.via):
                try:
                    name, index = parse_key(ref)
                except ValueError:
                    continue
                self.observed.add(key_text((key_name(name, token), index)))

    def wait_for_future(self, future: TaskFuture[Any], timeout: float | None) -> None:
        """Wait until the task has finished, or `timeout` seconds have passed (then return
        anyway: the task keeps running)."""
        self._check_owner(future)
        if future.dask_future is None:
            self.submit_pending()
            self._check_held(future)
        try:
            self.client.sync(_wait, dask_futures([future.dask_future]), timeout=timeout)
        except TimeoutError:
            return

    def future_state(self, future: TaskFuture[Any]) -> StateType:
        """The task run's state; once its Dask future is done, its final state (whose report
        may still be on its way from the worker: wait for it, briefly)."""
        key = key_text(future.key)
        tr = self.tracker.state.task_run(key)
        if tr is not None and tr.state.is_final and key not in self.tracker.reopened:
            return tr.state
        fut = future.dask_future
        if fut is None or not fut.done():
            return tr.state if tr is not None else S.PENDING
        if not self._await_final(key, EVENT_GRACE_SECONDS):
            self._settle_errored()
            self._reconcile()
        tr = self.tracker.state.task_run(key)
        return tr.state if tr is not None else S.PENDING

    def _await_final(self, key: str, grace: float) -> bool:
        """Wait up to `grace` s for the final report of `key` (whose Dask future is done)."""

        def final() -> bool:
            tr = self.tracker.state.task_run(key)
            return tr is not None and tr.state.is_final and key not in self.tracker.reopened

        deadline = time.monotonic() + grace
        with self.tracker.settled:
            while not final() and time.monotonic() < deadline and not self.cancelling:
                self.tracker.settled.wait(0.05)
            return final()

    def _check_owner(self, future: TaskFuture[Any]) -> None:
        if future.run_id != self.run_id:
            raise DefinitionError(f"{future!r} belongs to another flow run")

    def _check_held(self, future: TaskFuture[Any]) -> None:
        if future.dask_future is None:  # submitted, and let go when its run ended
            raise DefinitionError(
                f"{future!r}: its flow run has ended and its result is released; return "
                "what you need from the flow (or persist it) to use it afterwards"
            )

    def _resolve_return(self, value: Any) -> Any:
        """The body's return value with every future replaced by its result."""
        if not any(type(leaf) is TaskFuture for leaf in leaves(value)):
            return value
        self.submit_pending()
        return transform(
            value, lambda leaf: self.resolve(leaf, None) if type(leaf) is TaskFuture else leaf
        )

    # ----------------------------------------------------------------- completion

    def await_all(self) -> None:
        """Submit what is left and wait until every task of this attempt has an end, then
        close the attempt (`RunState.close`).

        A task computed again while the others finished (its result lost with a worker) is
        held again, so the attempt waits for it too; what the pump has received is folded
        before the attempt closes, so such a loss is never recorded after the run's end.
        """
        while True:
            self.submit_pending()
            with self.lock:
                futures = list(self.tracker.inflight.values())
            if futures:
                self.client.sync(_wait, dask_futures(futures))
            self._settle_errored()
            deadline = time.monotonic() + EVENT_GRACE_SECONDS
            with self.tracker.settled:
                while self._unsettled() and not self.cancelling:
                    if time.monotonic() >= deadline:
                        if not self.tracker.backlog():
                            break
                        # reports are there, waiting to be folded: they are not lost
                        deadline = time.monotonic() + EVENT_GRACE_SECONDS
                    self.tracker.settled.wait(0.05)
            self._reconcile()
            # A worker lost with the last ends (its results computed again by Dask) arrives in
            # the same message as those ends: fold it before deciding, it may reopen tasks.
            if not self.tracker.drain(DRAIN_SECONDS):
                log.warning("run %s: reports still wait to be recorded", self.run_id)
            if self.cancelling or self.tracker.close(self.number, if_settled=True):
                return

    def _unsettled(self) -> bool:
        """Whether a task finished in Dask still waits for its final report (or was reopened);
        stops at the first one (this runs under the lock, every 50 ms, over every task)."""
        if self.tracker.reopened:
            return True
        return any(f.status == "finished" for f in self.tracker.inflight.values())

    def _settle_errored(self) -> None:
        """Futures that erred in Dask (a lost worker, KilledWorker) never report: derive."""
        with self.lock:
            items = list(self.tracker.inflight.items())
        erred: list[tuple[str, str | None, str, str]] = []
        cancelled: list[str] = []
        for key, fut in items:
            if fut.status == "error":
                exc = fut.exception()
                blamed_text = blamed_key(key, getattr(exc, "task", None))
                erred.append((key, blamed_text, type(exc).__name__, error_text(exc)))
            elif fut.status == "cancelled":
                cancelled.append(key)
        if not (erred or cancelled):
            return

        def stimulus(st: RunState) -> Outcome:
            now = time.time()
            out = st.settle(cancelled, S.CANCELLED, "cancelled", now)
            for key, blamed, error_type, error in erred:
                out.extend(st.future_erred(key, blamed, error_type, error, now))
            return out

        self.tracker.change(stimulus)

    def _reconcile(self) -> None:
        """Tasks whose final report never arrived: read their outcome from the cluster."""
        with self.lock:
            missing = [(k, f) for k, f in self.tracker.inflight.items() if f.status == "finished"]
        if not missing:
            return
        log.warning(
            "run %s: %d task reports lost; reading their outcome", self.run_id, len(missing)
        )
        futures = [f for _, f in missing]
        values = values_of(futures, self.client.gather(dask_futures(futures), errors="skip"))

        def stimulus(st: RunState) -> Outcome:
            now = time.time()
            out = Outcome()
            for (key, _), value in zip(missing, values, strict=False):
                if type(value) is Failure:
                    error = value.error
                    state, message, kind = S(value.state), error_text(error), type(error).__name__
                else:
                    state, message, kind = S.COMPLETED, "state read from the cluster", None
                out.extend(st.read_back(key, state, message, kind, now))
            return out

        self.tracker.change(stimulus)

    def settle_remaining(self, state: StateType, message: str) -> None:
        """At cancellation or timeout: every task without an end gets `state`."""
        self._settle_errored()
        with self.lock:
            keys = list(self.tracker.inflight)
        if keys:
            self.tracker.change(lambda st: st.settle(keys, state, message, time.time()))

    def cancel_tasks(self, reason: str) -> None:
        """Stop submitting, and cancel this attempt's tasks on the cluster."""
        with self.lock:
            self.cancelling = True
            futures = list(self.tracker.inflight.values())
        if futures:
            try:
                self.client.cancel(dask_futures(futures), reason=reason)
            except Exception:
                log.debug("cancel failed", exc_info=True)
