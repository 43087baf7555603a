"""`RunTracker`: the driver's record of one flow run, kept from the events that reach it.

It turns the compact records workers send (see `wrapper.py`) into `StateEvent`s and `LogEvent`s,
checks each transition against the state machine, folds it into the `FlowRun`, calls task hooks
on final states, and hands every accepted event to the sinks, in order, from the one pump thread
of the run. It also holds the run's Dask futures until their task's final state is known.

A task that reports RUNNING again from another worker while it was RUNNING lost its worker
mid-task: the tracker records the lost attempt as CRASHED before the new one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dagflow.core.definitions import Task
from dagflow.core.graph import Call, Key, key_str
from dagflow.core.runs import FlowRun, LogEvent, RunEvent, StateEvent, TaskRun
from dagflow.core.states import StateType, Transition, can_transition
from dagflow.engine.logs import reemit
from dagflow.engine.sinks import EventSink, dispatch

log = logging.getLogger(__name__)
S = StateType
WORKER_LOST = "WorkerLost"


class RunTracker:
    """Folds one run's events into its `FlowRun` and passes them on to the sinks."""

    def __init__(self, flow_run: FlowRun, sinks: Sequence[EventSink]) -> None:
        self.flow_run = flow_run
        self.run_id = flow_run.id
        self.sinks = list(sinks)
        self.lock = threading.RLock()
        self.settled = threading.Condition(self.lock)
        self.inflight: dict[Key, Any] = {}  # key -> distributed.Future, until its final state
        self.failed: dict[Key, Any] = {}  # futures holding a `Failure`, until the run ends
        self.attempt = 0
        self._tasks: dict[str, Task[..., Any]] = {}  # key name -> task, for hooks
        self._crashes: dict[str, int] = {}
        self._queue: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._pump = threading.Thread(target=self._pump_events, name="dagflow-events", daemon=True)

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

    def on_topic(self, event: tuple[float, Any]) -> None:
        """Dask topic handler; runs on the client's event loop: hand over, never work here."""
        self._queue.put(event[1])

    # ------------------------------------------------------------------ what the runner tells

    def submitted(self, calls: Sequence[Call], futures: Sequence[Any]) -> None:
        """A wave went to the cluster: its tasks are PENDING and their futures held.

        Per task: one `TaskRun`, one event; the PENDING step of the history is one shared value.
        """
        now = time.time()
        pending = Transition(None, S.PENDING, now, 0, "")
        events: list[RunEvent] = []
        append = events.append
        run_id = self.run_id
        task_runs = self.flow_run.task_runs
        inflight = self.inflight
        i = 0
        with self.lock:
            for call in calls:
                name = call.task.name
                self._tasks[call.name] = call.task
                mapped = call.mapped
                for tf in call.futures:
                    fut = futures[i]
                    i += 1
                    key = tf.key
                    tf.dask_future = fut
                    inflight[key] = fut
                    ks = f"{key[0]}[{key[1]}]"
                    index = key[1] if mapped else None
                    task_runs[ks] = TaskRun(ks, name, index, S.PENDING, history=[pending])
                    append(StateEvent(run_id, ks, None, S.PENDING, now, 0, "", name, index))
        self.emit(events)

    def flow_transition(self, to: StateType, message: str = "") -> None:
        fr = self.flow_run
        current = fr.state if fr.history else None
        if not can_transition(current, to):
            log.error("run %s: illegal flow transition %s -> %s", self.run_id, current, to)
            return
        ev = StateEvent(self.run_id, None, current, to, time.time(), self.attempt, message)
        fr.history.append(_transition(ev))
        fr.state = to
        self.emit([ev])

    def flow_log(self, level: int, message: str) -> None:
        ev = LogEvent(self.run_id, None, None, level, time.time(), message, None)
        with self.lock:
            self.flow_run.log_records.append(ev)
        reemit(ev)
        self.emit([ev])

    def derived(
        self, key: Key, state: StateType, message: str, error_type: str | None = None
    ) -> StateEvent:
        """An event the driver infers (lost report, KilledWorker, cancellation)."""
        ks = key_str(key)
        tr = self.flow_run.task_runs.get(ks)
        return StateEvent(
            self.run_id,
            ks,
            tr.state if tr else None,
            state,
            time.time(),
            tr.attempts if tr else 0,
            message,
            tr.name if tr else key[0],
            tr.map_index if tr else None,
            error_type=error_type,
        )

    def emit(self, events: Sequence[RunEvent]) -> None:
        if self.sinks and events:
            dispatch(self.sinks, events)

    def release_all(self) -> None:
        """Drop the run's references; a future is released once nobody holds it (the same
        Future objects sit in the user's TaskFutures)."""
        with self.lock:
            self.inflight.clear()
            self.failed.clear()

    # ------------------------------------------------------------------ worker reports

    def _pump_events(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            events: list[StateEvent | LogEvent] = []
            for record in batch:
                if record[0] == "log":
                    events.append(self._log_event(record))
                else:
                    events.extend(self._task_events(record))
            if events:
                self.apply(events)

    def _log_event(self, record: Sequence[Any]) -> LogEvent:
        _, name, index, level, t, message, worker = record
        ks = f"{name}[{index}]"
        tr = self.flow_run.task_runs.get(ks)
        return LogEvent(self.run_id, ks, tr.name if tr else name, level, t, message, worker)

    def _task_events(self, record: Sequence[Any]) -> list[StateEvent]:
        name, index, state, t, attempt, message, error_type, tb, worker, extra = record
        ks = f"{name}[{index}]"
        tr = self.flow_run.task_runs.get(ks)
        if tr is None:
            return []
        out: list[StateEvent] = []
        current = tr.state
        to = S(state)
        if to is S.RUNNING and current is S.RUNNING and worker != tr.worker:
            self._crashes[ks] = self._crashes.get(ks, 0) + 1
            out.append(
                StateEvent(
                    self.run_id,
                    ks,
                    current,
                    S.CRASHED,
                    t,
                    tr.attempts,
                    f"worker {tr.worker} was lost while running the task",
                    tr.name,
                    tr.map_index,
                    tr.worker,
                    WORKER_LOST,
                )
            )
            current = S.CRASHED
        location = size = serializer = cache_key = None
        if extra is not None:
            location, size, serializer, cache_key = extra
        out.append(
            StateEvent(
                self.run_id,
                ks,
                current,
                to,
                t,
                attempt + self._crashes.get(ks, 0),
                message,
                tr.name,
                tr.map_index,
                worker,
                error_type,
                tb,
                location,
                size,
                serializer,
                cache_key,
            )
        )
        return out

    def apply(self, events: Sequence[StateEvent | LogEvent]) -> None:
        """Fold events into the FlowRun, check them, wake waiters, pass them to sinks."""
        accepted: list[StateEvent | LogEvent] = []
        with self.lock:
            for ev in events:
                if type(ev) is LogEvent:
                    self.flow_run.log_records.append(ev)
                    accepted.append(ev)
                    continue
                assert type(ev) is StateEvent and ev.task_key is not None
                ks = ev.task_key
                tr = self.flow_run.task_runs.get(ks)
                # A task whose worker was lost is CRASHED, then runs again elsewhere.
                if tr is None or (tr.state.is_final and ks not in self._crashes):
                    continue
                if not can_transition(tr.state, ev.to_state):
                    log.error(
                        "run %s: ignoring illegal transition %s -> %s of %s",
                        self.run_id,
                        tr.state,
                        ev.to_state,
                        ks,
                    )
                    continue
                if ev.from_state is not tr.state:
                    ev = replace(ev, from_state=tr.state)
                tr.apply(ev)
                accepted.append(ev)
                if ev.to_state.is_final and not _lost_attempt(ev):
                    name, _, index = ks.rpartition("[")
                    key = (name, int(index[:-1]))
                    fut = self.inflight.pop(key, None)
                    if fut is not None and ev.to_state in (S.FAILED, S.TIMED_OUT):
                        self.failed[key] = fut  # small `Failure`; the run may report it
            self.settled.notify_all()
        for ev in accepted:
            if type(ev) is LogEvent:
                reemit(ev)
            elif isinstance(ev, StateEvent) and ev.to_state.is_final and not _lost_attempt(ev):
                self._task_hooks(ev)
        self.emit(accepted)

    def _task_hooks(self, ev: StateEvent) -> None:
        """Call the task's on_completion / on_failure / on_crashed hooks with its task run."""
        assert ev.task_key is not None
        task = self._tasks.get(ev.task_key.rpartition("[")[0])
        if task is None:
            return
        options = task.options
        if ev.to_state.is_success:
            hooks = options.on_completion
        elif ev.to_state is S.CRASHED:
            hooks = options.on_crashed
        elif ev.to_state.is_failure:
            hooks = options.on_failure
        else:
            return
        if hooks:
            run_hooks(hooks, task, self.flow_run.task_runs[ev.task_key])


def _lost_attempt(ev: StateEvent) -> bool:
    """A CRASHED attempt that Dask runs again on another worker: not the task's end."""
    return ev.to_state is S.CRASHED and ev.error_type == WORKER_LOST


def _transition(ev: StateEvent) -> Transition:
    return Transition(ev.from_state, ev.to_state, ev.time, ev.attempt, ev.message)


def run_hooks(hooks: Sequence[Callable[..., Any]], owner: Any, run: Any) -> None:
    """Call each hook with (task or flow, its run); a failing hook is logged, nothing more."""
    for hook in hooks:
        try:
            hook(owner, run)
        except Exception:
            log.exception("hook %r of %r raised; the run's state is unchanged", hook, owner)
