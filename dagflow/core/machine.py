"""The run machine: what happened on the cluster, in; the state events to record, out.

`RunState` holds one flow run's record (its `FlowRun` and `TaskRun`s) and is the only place that
decides about states. Each stimulus (a wave submitted, reports from workers, a worker lost, a
Dask future that erred, a cancellation) goes in; out come the `StateEvent`s and `LogEvent`s to
record and the task runs that reached their end. It does no I/O, reads no clock and takes no
lock: times come in with the stimuli, the engine calls it from one thread at a time. That is how
it is tested, without a cluster (in the style of distributed's worker state machine).

What it decides:

- **Duplicates and stale reports.** A report of a transition already recorded (same task,
  attempt and state) is dropped; so is a report about a task whose end is already recorded
  (cancelled, failed in Dask) or about a key this run never submitted. Neither is an error.
- **Attempt numbers**, in one place: a worker counts the attempts of one execution (1, 2, ... with
  its retries); the machine adds what earlier executions used (a lost worker's attempt, the
  attempts of a run being resumed), so recorded attempts only grow.
- **Lost workers.** A task RUNNING on a worker that is lost (the scheduler says so, or the task
  reports RUNNING from another worker) gets a CRASHED attempt; Dask runs it again and its next
  report continues from there. A task lost before its first report is CRASHED from PENDING.
- **The end of a flow attempt** (`close`): once it stops waiting for its tasks, a result of it
  lost with a worker is not reopened (its end stands), late reports of it are dropped, and a
  task still without an end ends CRASHED saying why: no task of an ended attempt stays PENDING.
- **Upstream blame.** A task whose Dask future erred because of another key is UPSTREAM_FAILED.
- **The verdict.** A flow attempt completes unless a task failure went unhandled (neither seen
  by the body through `.result()` nor passed on through `allow_failure`); its message and root
  cause name the first failure that was not only an upstream's.

Anything else that breaks the transition table is a bug in dagflow: `InvalidTransition` raises.

Beside it: `reports.py` (what workers report, and its wire forms), `verdict.py` (the verdict).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagflow.core.reports import LogReport, Report, ResultInfo
from dagflow.core.runs import FlowRun, LogEvent, StateEvent, TaskRun
from dagflow.core.states import StateType, Transition, next_state
from dagflow.core.verdict import Verdict, failure_summary, judge

if TYPE_CHECKING:
    from dagflow.core.graph import Call

S = StateType
WORKER_LOST = "WorkerLost"
_RUNNING = S.RUNNING.value
_COMPLETED = S.COMPLETED.value
LOGS_IN_MEMORY = 10_000  # records a live FlowRun keeps; all of them are in the run history


@dataclass(slots=True)
class Outcome:
    """What one stimulus produced: events to record, and task runs that reached their end."""

    events: list[StateEvent | LogEvent] = field(default_factory=list)
    finished: list[TaskRun] = field(default_factory=list)
    reopened: list[TaskRun] = field(default_factory=list)  # ended, but to be computed again

    def extend(self, other: Outcome) -> None:
        self.events.extend(other.events)
        self.finished.extend(other.finished)
        self.reopened.extend(other.reopened)


@dataclass(slots=True)
class _Task:
    """The machine's bookkeeping of one task run, beside its `TaskRun`."""

    run: TaskRun
    offset: int = 0  # attempts used by earlier executions (lost workers, earlier runs)
    flow_attempt: int = 0  # the flow attempt that submitted it
    lost_worker: str | None = None  # set while a lost attempt waits for Dask to run it again


class RunState:
    """The state of one flow run, changed only through the stimuli below."""

    def __init__(self, flow_run: FlowRun, prior_attempts: dict[str, int] | None = None) -> None:
        self.flow_run = flow_run
        self.run_id = flow_run.id
        self.attempt = 0  # the flow attempt running now
        self._tasks: dict[str, _Task] = {}  # by Dask key text: one execution each
        self._latest: dict[str, _Task] = {}  # by logical key: the latest execution of a task
        self._prior = dict(prior_attempts or {})  # logical key -> attempts recorded before
        self.closed = 0  # the last flow attempt whose tasks all had their end (see `close`)

    # ------------------------------------------------------------------ the flow run

    def resumed(self, state: StateType, attempts: int, now: float) -> None:
        """The run is an earlier run being resumed: it starts from its recorded end."""
        self.flow_run.state = state
        self.flow_run.history.append(Transition(None, state, now, attempts))
        self.attempt = attempts

    def scheduled(self, now: float) -> None:
        """The run was recorded SCHEDULED before it ran (a deployment's run): it starts there."""
        self.flow_run.state = S.SCHEDULED
        self.flow_run.history.append(Transition(None, S.SCHEDULED, now, 0))

    def flow_transition(
        self,
        to: StateType,
        now: float,
        message: str = "",
        error_type: str | None = None,
        result: ResultInfo | None = None,
    ) -> StateEvent:
        """Move the flow run itself; an illegal move raises `InvalidTransition`. A failure
        carries its error's type; a completion, where its persisted return value is."""
        fr = self.flow_run
        current = fr.state if fr.history else None
        if to.is_final and current is S.CANCELLING:
            to = S.CANCELLED  # a run being cancelled ends cancelled, whatever else happened
        next_state(current, to)
        ev = StateEvent(
            self.run_id, None, current, to, now, self.attempt, message,
            error_type=error_type if to.is_failure else None,
            result_location=result.location if result is not None else None,
            result_size=result.size if result is not None else None,
            result_serializer=result.serializer if result is not None else None,
        )  # fmt: skip
        if result is not None:
            fr.result_location, fr.result_serializer = result.location, result.serializer
        fr.history.append(Transition(current, to, now, self.attempt, message))
        fr.state = to
        fr.attempts = max(fr.attempts, self.attempt)
        return ev

    def log(self, level: int, now: float, message: str) -> LogEvent:
        """A record of the flow body's own logger."""
        ev = LogEvent(self.run_id, None, None, level, now, message, None)
        self._keep(ev)
        return ev

    def _keep(self, ev: LogEvent) -> None:
        """Keep a record on the live FlowRun; past `LOGS_IN_MEMORY`, the oldest half goes."""
        records = self.flow_run.log_records
        records.append(ev)
        if len(records) > 2 * LOGS_IN_MEMORY:
            del records[:LOGS_IN_MEMORY]

    # ------------------------------------------------------------------ submission

    def submitted(self, calls: Sequence[Call], now: float) -> list[StateEvent]:
        """A wave went to the cluster: each of its tasks is PENDING.

        The hot path of submission (once per task): one `TaskRun` and one event per task, and
        one `Transition` shared by every PENDING history.
        """
        pending = Transition(None, S.PENDING, now, 0, "")
        run_id = self.run_id
        rows = self.flow_run.all_task_runs
        tasks = self._tasks
        latest = self._latest
        prior = self._prior
        events: list[StateEvent] = []
        append = events.append
        attempt = self.attempt
        for call in calls:
            name = call.task.name
            slug = call.task.slug
            mapped = call.mapped
            for key_name, index in call.iter_keys():
                ks = f"{key_name}[{index}]"
                logical = f"{slug}[{index}]"
                map_index = index if mapped else None
                tr = TaskRun(logical, name, map_index, S.PENDING, history=[pending], dask_key=ks)
                rows[ks] = tr
                before = latest.get(logical) if latest else None
                offset = before.run.attempts if before is not None else prior.get(logical, 0)
                task = tasks[ks] = latest[logical] = _Task(tr, offset, attempt)
                if offset:
                    task.run.attempts = offset
                append(StateEvent(run_id, ks, None, S.PENDING, now, offset, "", name, map_index))
        return events

    # ------------------------------------------------------------------ reports

    def reports(self, records: Iterable[Report | LogReport]) -> Outcome:
        """Fold reports from workers, in the order they arrived."""
        out = Outcome()
        for record in records:
            if type(record) is LogReport:
                ev = self._log_report(record)
                if ev is not None:
                    out.events.append(ev)
            else:
                assert type(record) is Report
                self._report(record, out)
        return out

    def _log_report(self, r: LogReport) -> LogEvent | None:
        ks = f"{r.name}[{r.item}]"
        task = self._tasks.get(ks)
        name = task.run.name if task is not None else r.name
        ev = LogEvent(self.run_id, ks, name, r.level, r.time, r.message, r.worker)
        self._keep(ev)
        return ev

    def _report(self, r: Report, out: Outcome) -> None:
        ks = f"{r.name}[{r.item}]"
        task = self._tasks.get(ks)
        if task is None:
            return  # a key this run never submitted (or one of a finished attempt)
        tr = task.run
        to = S(r.state)
        if task.lost_worker is not None and r.worker == task.lost_worker:
            return  # a late word from the worker whose attempt was already recorded lost
        if to is S.RUNNING and tr.state is S.RUNNING and r.worker != tr.worker:
            # RUNNING again, elsewhere: Dask re-ran the task after its worker was lost.
            self._crash(task, r.time, f"worker {tr.worker} was lost while running the task", out)
        attempt = task.offset + r.attempt if r.attempt else max(task.offset, tr.attempts)
        if _recorded(tr, attempt, to):
            return  # delivered twice
        if tr.state.is_final and self._ended(task):
            return  # the task's end is already recorded (cancelled, failed in Dask)
        location = size = serializer = cache_key = identity = None
        if r.result is not None:
            location, size, serializer, cache_key, identity = r.result
        ev = StateEvent(
            self.run_id,
            ks,
            tr.state,
            to,
            r.time,
            attempt,
            r.message,
            tr.name,
            tr.map_index,
            r.worker,
            r.error_type,
            r.traceback,
            location,
            size,
            serializer,
            cache_key,
            identity,
        )
        self._apply(task, ev, out)

    # ------------------------------------------------------------------ what the driver sees

    def worker_lost(
        self, worker: str, keys: Iterable[str], now: float, running_only: bool = False
    ) -> Outcome:
        """The scheduler lost `worker` while it was processing `keys`: those attempts CRASHED.

        `running_only`: the keys are the items of chunks that were processing; only the items
        known to be running there crashed (the others had not started, or had ended).
        """
        out = Outcome()
        message = f"worker {worker} was lost while running the task"
        for key in keys:
            task = self._tasks.get(key)
            if task is None or task.lost_worker is not None:
                continue
            state = task.run.state
            if state in (S.RUNNING, S.RETRYING) and task.run.worker in (worker, None):
                self._crash(task, now, message, out)
            elif state is S.PENDING and not running_only:
                # lost before its first report left the worker: that attempt crashed too
                task.offset += 1
                self._crash(task, now, message, out, worker=worker)
        return out

    def recomputed(self, worker: str, keys: Iterable[str], now: float) -> Outcome:
        """Results lost with `worker` that Dask computes again: each is a new attempt.

        The task's completion stays in its history; it goes back to PENDING with a message, and
        its next report (RUNNING, or CACHED when its persisted result is reloaded) continues
        from there. Its hooks are called again when it ends again.
        """
        out = Outcome()
        message = f"its result was lost with worker {worker}: computing it again"
        for key in keys:
            task = self._tasks.get(key)
            if task is None or not task.run.state.is_success:
                continue
            if task.flow_attempt <= self.closed:
                continue  # its flow attempt is over: nothing waits for it, its end stands
            tr = task.run
            task.offset = tr.attempts
            ev = StateEvent(
                self.run_id, tr.dask_key, tr.state, S.PENDING, now, tr.attempts + 1, message,
                tr.name, tr.map_index,
            )  # fmt: skip
            self._apply(task, ev, out)
            task.lost_worker = worker  # its late words are not this new attempt's
            out.reopened.append(tr)
        return out

    def future_erred(
        self, key: str, blamed: str | None, error_type: str, error: str, now: float
    ) -> Outcome:
        """A task's Dask future erred (no report can come): KilledWorker, or its upstream's.

        A task whose last attempt was lost and whose upstream then failed in Dask ends FAILED
        (a CRASHED attempt cannot be blamed on an upstream).
        """
        out = Outcome()
        task = self._tasks.get(key)
        if task is None or (task.run.state.is_final and self._ended(task)):
            return out
        tr = task.run
        if blamed is not None and blamed != key and tr.state is not S.CRASHED:
            upstream = self._tasks.get(blamed)
            shown = upstream.run.key if upstream is not None else blamed
            state, message = S.UPSTREAM_FAILED, f"upstream {shown} failed: {error}"
        else:
            state, message = S.FAILED, f"task {tr.name!r} [{tr.key}] failed in Dask: {error}"
        self._derive(task, state, now, message, error_type, out)
        return out

    def read_back(
        self, key: str, state: StateType, message: str, error_type: str | None, now: float
    ) -> Outcome:
        """A task finished but its reports never arrived: its outcome, read from the cluster."""
        out = Outcome()
        task = self._tasks.get(key)
        if task is None or (task.run.state.is_final and self._ended(task)):
            return out
        if state in (S.COMPLETED, S.FAILED, S.TIMED_OUT) and task.run.state is not S.RUNNING:
            self._derive(task, S.RUNNING, now, "state read from the cluster", None, out)
        self._derive(task, state, now, message, error_type, out)
        return out

    def settle(self, keys: Iterable[str], state: StateType, message: str, now: float) -> Outcome:
        """At cancellation or timeout: each of `keys` without an end gets `state`.

        A task whose attempt was lost keeps its CRASHED end: it will not run again.
        """
        out = Outcome()
        for key in keys:
            task = self._tasks.get(key)
            if task is None or task.run.state.is_final:
                continue
            self._derive(task, state, now, message, None, out)
        return out

    def close(self, attempt: int, now: float) -> Outcome:
        """Flow attempt `attempt` (and every earlier one) stops waiting for its tasks: from here
        on, a result of it lost with a worker is not computed again for the run (its end
        stands), its late reports are dropped, and a task of it still without an end (a bug, or
        a loss that came too late to wait for) ends CRASHED saying why: no task of an ended
        attempt is left PENDING or RUNNING.
        """
        out = Outcome()
        self.closed = max(self.closed, attempt)
        for task in self._tasks.values():
            tr = task.run
            if task.flow_attempt != attempt or tr.state.is_final:
                continue
            last = tr.history[-1].message if tr.history else ""
            message = "the flow attempt ended before the task had an end" + (
                f" ({last})" if last else ""
            )
            self._derive(task, S.CRASHED, now, message, None, out)
        return out

    def task_run(self, key: str) -> TaskRun | None:
        task = self._tasks.get(key)
        return task.run if task is not None else None

    # ------------------------------------------------------------------ the verdict

    def verdict(self, token: str, handled: set[str]) -> Verdict:
        """How the flow attempt whose keys carry `token` ended (`verdict.judge`); `handled`
        holds the keys of failures that the body saw or passed on through `allow_failure`."""
        return judge(self._attempt_runs(token), handled)

    def failure_summary(self, token: str, root_key: str) -> tuple[str, TaskRun] | None:
        """How the flow attempt `token` failed because of the task run `root_key` (a logical
        key): the message naming it, and its task run; None if it has no such failure."""
        return failure_summary(self._attempt_runs(token), root_key)

    def _attempt_runs(self, token: str) -> list[TaskRun]:
        marker = f"-{token}["
        return [tr for ks, tr in self.flow_run.all_task_runs.items() if marker in ks]

    # ------------------------------------------------------------------ internals

    def _ended(self, task: _Task) -> bool:
        """Whether a task in a final state has its end: not a lost attempt waiting to run
        again, unless its flow attempt is over (nothing runs it again for the run)."""
        return task.lost_worker is None or task.flow_attempt <= self.closed

    def _crash(
        self, task: _Task, now: float, message: str, out: Outcome, worker: str | None = None
    ) -> None:
        tr = task.run
        attempt = max(tr.attempts, task.offset)
        ev = StateEvent(
            self.run_id, tr.dask_key, tr.state, S.CRASHED, now, attempt, message, tr.name,
            tr.map_index, worker or tr.worker, WORKER_LOST,
        )  # fmt: skip
        self._apply(task, ev, out, lost=True)
        task.offset = tr.attempts
        task.lost_worker = worker or tr.worker or "?"

    def _derive(
        self,
        task: _Task,
        state: StateType,
        now: float,
        message: str,
        error_type: str | None,
        out: Outcome,
    ) -> None:
        tr = task.run
        ev = StateEvent(
            self.run_id, tr.dask_key, tr.state, state, now, max(tr.attempts, task.offset), message,
            tr.name, tr.map_index, error_type=error_type,
        )  # fmt: skip
        self._apply(task, ev, out)

    def _apply(self, task: _Task, ev: StateEvent, out: Outcome, lost: bool = False) -> None:
        tr = task.run
        next_state(tr.state, ev.to_state)  # raises InvalidTransition: a bug, not a user's input
        tr.apply(ev)
        out.events.append(ev)
        if lost:
            return
        task.lost_worker = None
        if ev.to_state.is_final:
            out.finished.append(tr)


def _recorded(tr: TaskRun, attempt: int, state: StateType) -> bool:
    return any(step.attempt == attempt and step.to_state is state for step in tr.history)
