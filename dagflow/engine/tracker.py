"""`RunTracker`: the driver's pump of one run's record, between the cluster and the sinks.

Workers' reports arrive on the run's Dask topic, on the client's event loop; the tracker queues
them there and folds them from its own thread, so the event loop never waits. Every change of the
run's record goes through `change(stimulus)`: under the run's lock the run machine
(`core/machine.py`) decides, then the tracker does what follows from its answer, in order: it
releases the Dask futures of tasks that reached their end (keeping failed ones, whose `Failure`
the run may report), wakes whoever waits for a task, passes the events to the sinks, and calls
the tasks' hooks. The tracker decides nothing itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from dagflow.core.config import Masker, masked
from dagflow.core.fusion import stages_of
from dagflow.core.graph import Call, Column, Refs
from dagflow.core.keys import key_text, parse_key
from dagflow.core.machine import Outcome, RunState
from dagflow.core.reports import ResultInfo, parse_reports
from dagflow.core.runs import FlowRun, RunEvent, StateEvent, TaskEdges, TaskRun
from dagflow.core.states import StateType
from dagflow.core.task import TaskDefinition
from dagflow.core.text import bounded, storable
from dagflow.engine.chunks import Chunk, ItemFuture
from dagflow.engine.logs import reemit
from dagflow.engine.sinks import EventSink, dispatch

log = logging.getLogger(__name__)
S = StateType


class RunTracker:
    """Applies one run's stimuli to its `RunState` and passes the results on."""

    def __init__(
        self,
        state: RunState,
        sinks: Sequence[EventSink],
        log_limit: int = 64 * 1024,
        hold: Callable[[str], Any] | None = None,
        masker: Masker | None = None,
    ) -> None:
        self.state = state
        self.masker = masker  # the run's secret values, replaced in what leaves the driver
        self.flow_run: FlowRun = state.flow_run
        self.run_id = state.run_id
        self.sinks = list(sinks)
        self.log_limit = log_limit  # characters of one flow body log record
        self._hold = hold  # a Dask future for a key, to wait for a task computed again
        self.reopened: set[str] = set()  # tasks computed again after their end, not ended again
        self.lock = threading.RLock()
        self.settled = threading.Condition(self.lock)
        self.inflight: dict[str, Any] = {}  # task key -> distributed.Future, until its end
        self.held: list[Any] = []  # every TaskFuture submitted: let go of at the end
        self.fused_chunks: set[Any] = set()  # chunk keys whose values are one list per stage
        self.failed: dict[str, Any] = {}  # futures holding a `Failure`, until the run ends
        self.tasks: dict[str, TaskDefinition[..., Any]] = {}  # key name -> task, for hooks
        self.edges: set[tuple[str, str]] = set()  # task-name dependencies already emitted
        self._queue: queue.SimpleQueue[Callable[[RunState], Outcome] | None] = queue.SimpleQueue()
        self._pump = threading.Thread(target=self._pump_reports, name="dagflow-events", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._pump.start()

    def stop(self) -> None:
        """Process what has arrived, then make every sink durable."""
        self._queue.put(None)
        self._pump.join()
        for sink in self.sinks:
            try:
                sink.flush(timeout=30)
            except Exception:
                log.exception("event sink %r failed to flush", sink)

    def on_reports(self, records: list[Any]) -> None:
        """Reports from workers (called on the client's event loop): hand over, never work here."""
        self._queue.put(_reports_of(records))

    def on_worker_lost(
        self,
        worker: str,
        processing: list[str],
        recomputed: list[str],
        chunked: list[str] | None = None,
    ) -> None:
        """The scheduler lost `worker` (called on the client's event loop): hand over.
        `chunked` holds the items of chunks it was processing."""

        def stimulus(state: RunState) -> Outcome:
            now = time.time()
            out = state.worker_lost(worker, processing, now)
            if chunked:
                out.extend(state.worker_lost(worker, chunked, now, running_only=True))
            out.extend(state.recomputed(worker, recomputed, now))
            return out

        self._queue.put(stimulus)

    def drain(self, timeout: float) -> bool:
        """Wait until every stimulus queued before now has been folded (False after `timeout`
        s). Never call it holding the lock: the pump takes it."""
        if not self._pump.is_alive() or threading.current_thread() is self._pump:
            return True
        folded = threading.Event()

        def marker(state: RunState) -> Outcome:
            folded.set()
            return Outcome()

        self._queue.put(marker)
        return folded.wait(timeout)

    def close(self, attempt: int, if_settled: bool = False) -> bool:
        """Flow attempt `attempt` stops waiting for its tasks (`RunState.close`). With `if_settled`,
        only when none is in flight, checked under the same lock as the closing: a result lost
        with a worker is then either waited for (its task reopened first) or not computed again
        for the run (closed first). Returns whether it closed."""
        closed = False

        def stimulus(state: RunState) -> Outcome:
            nonlocal closed
            if if_settled and self.inflight:
                return Outcome()
            closed = True
            return state.close(attempt, time.time())

        self.change(stimulus)
        return closed

    def backlog(self) -> bool:
        """Whether stimuli wait to be folded (reports arrived but not recorded yet)."""
        return not self._queue.empty()

    def _pump_reports(self) -> None:
        while True:
            stimulus = self._queue.get()
            if stimulus is None:
                return
            try:
                self.change(stimulus)
            except Exception:
                log.exception("run %s: reports could not be recorded", self.run_id)

    # ------------------------------------------------------------------ changes

    def change(self, stimulus: Callable[[RunState], Outcome]) -> Outcome:
        """Apply `stimulus` to the run machine and carry out what it decided."""
        with self.lock:
            outcome = stimulus(self.state)
            for tr in outcome.finished:
                key = tr.dask_key or ""
                fut = self.inflight.pop(key, None)
                if fut is not None and tr.state in (S.FAILED, S.TIMED_OUT):
                    self.failed[key] = fut  # a small `Failure`; the run may report it
            for tr in outcome.finished:
                self.reopened.discard(tr.dask_key or "")
            for tr in outcome.reopened:
                key = tr.dask_key or ""
                self.reopened.add(key)
                held = self._hold(key) if self._hold is not None else None
                if held is not None and key not in self.inflight:
                    self.inflight[key] = held
            if outcome.events:
                self.settled.notify_all()
        for ev in outcome.events:
            if type(ev) is not StateEvent:
                reemit(ev)  # type: ignore[arg-type]
        self.emit(outcome.events)
        for tr in outcome.finished:
            self._task_hooks(tr)
        return outcome

    def submitted(
        self,
        calls: Sequence[Any],
        futures: Sequence[Any],
        chunks: dict[int, list[tuple[int, int]]] | None = None,
        fused: dict[int, list[tuple[Any, int]]] | None = None,
    ) -> None:
        """A wave went to the cluster: its tasks are PENDING and their futures held (an item
        that runs in a chunk holds an `ItemFuture` of its chunk's future; an item of a map fused
        into another's chunks, of its head's chunk)."""
        now = time.time()
        follows = stages_of(fused or {})
        # id(head) -> its chunks, each with its first item's position in the map and its size
        made: dict[int, list[tuple[Chunk, int, int]]] = {}
        with self.lock:
            events = self.state.submitted(calls, now)
            inflight = self.inflight
            i = 0
            held = self.held
            for call in calls:
                self.tasks[call.name] = call.task
                if id(call) in follows:
                    head_id, stage = follows[id(call)]
                    for chunk, position, size in made[head_id]:
                        for offset in range(size):
                            tf = call.futures[position + offset]
                            tf.dask_future = fut = ItemFuture(chunk, offset, stage)
                            held.append(tf)
                            inflight[key_text(tf.key)] = fut
                    continue
                cut = chunks.get(id(call)) if chunks else None
                if cut is not None:
                    stage0 = None
                    if fused and id(call) in fused:
                        stage0 = 0
                        self.fused_chunks.update((call.name, a, b) for a, b in cut)
                    item_futures = call.futures
                    base = call.start
                    own = made[id(call)] = []
                    for a, b in cut:
                        chunk = Chunk(futures[i])
                        own.append((chunk, a - base, b - a))
                        i += 1
                        for index in range(a, b):
                            tf = item_futures[index - base]
                            tf.dask_future = fut = ItemFuture(chunk, index - a, stage0)
                            held.append(tf)
                            inflight[f"{call.name}[{index}]"] = fut
                    continue
                for tf in call.futures:
                    fut = futures[i]
                    i += 1
                    tf.dask_future = fut
                    held.append(tf)
                    inflight[key_text(tf.key)] = fut
            new_edges = name_edges(calls) - self.edges
            self.edges |= new_edges
        self.emit(events)
        if new_edges:
            self.emit([TaskEdges(self.run_id, tuple(sorted(new_edges)))])

    def flow_transition(
        self,
        to: StateType,
        message: str = "",
        error_type: str | None = None,
        result: ResultInfo | None = None,
    ) -> None:
        if self.masker is not None:
            message = self.masker(message)
        with self.lock:
            ev = self.state.flow_transition(to, time.time(), message, error_type, result)
        self.emit([ev])

    def flow_log(self, level: int, message: str) -> None:
        if self.masker is not None:
            message = self.masker(message)
        message = storable(bounded(message, self.log_limit))
        with self.lock:
            if self.flow_run.state.is_final:
                return  # a timed-out body's thread, still running: the run has ended
            ev = self.state.log(level, time.time(), message)
        reemit(ev)
        self.emit([ev])

    def emit(self, events: Sequence[RunEvent]) -> None:
        if self.sinks and events:
            if self.masker is not None:  # what workers masked already is unchanged by it
                events = [masked(ev, self.masker) for ev in events]
            dispatch(self.sinks, events)

    def future_for(self, key: str) -> Any:
        with self.lock:
            return self.inflight.get(key) or self.failed.get(key)

    def release_all(self) -> None:
        """Let go of every Dask future of the run, the ones in the user's TaskFutures too, so
        the results leave the workers now: TaskFutures sit in reference cycles (through their
        resolver) and would hold them until Python's next full garbage collection."""
        with self.lock:
            self.inflight.clear()
            self.failed.clear()
            self.fused_chunks.clear()
            held, self.held = self.held, []
        for tf in held:
            tf.dask_future = None

    def _task_hooks(self, tr: TaskRun) -> None:
        """Call the task's on_completion / on_failure / on_crashed hooks with its task run."""
        task = self.tasks.get(parse_key(tr.dask_key)[0]) if tr.dask_key else None
        if task is None:
            return
        options = task.options
        if tr.state.is_success:
            hooks = options.on_completion
        elif tr.state is S.CRASHED:
            hooks = options.on_crashed
        elif tr.state.is_failure:
            hooks = options.on_failure
        else:
            return
        if hooks:
            run_hooks(hooks, task, tr)


def name_edges(calls: Sequence[Call]) -> set[tuple[str, str]]:
    """The (upstream, downstream) task-name pairs of a wave's calls: one pass over their refs."""
    edges: set[tuple[str, str]] = set()
    for call in calls:
        ups: set[str] = set()
        _ref_names(call.refs, ups)
        for arg in (*call.args, *call.kwargs.values()):
            if type(arg) is Column and arg.refs is not None:
                for refs in arg.refs:
                    if refs:
                        _ref_names(refs, ups)
        down = call.task.name
        edges.update((up, down) for up in ups)
    return edges


def _ref_names(refs: Refs, into: set[str]) -> None:
    for fut in refs.hard.values():
        into.add(fut.task_name)
    for fut in refs.soft.values():
        into.add(fut.task_name)


def _reports_of(batch: list[Any]) -> Callable[[RunState], Outcome]:
    reports = parse_reports(batch)
    return lambda state: state.reports(reports)


def run_hooks(hooks: Sequence[Callable[..., Any]], owner: Any, run: Any) -> None:
    """Call each hook with (task or flow, its run); a failing hook is logged, nothing more."""
    for hook in hooks:
        try:
            hook(owner, run)
        except Exception:
            log.exception("hook %r of %r raised; the run's state is unchanged", hook, owner)
