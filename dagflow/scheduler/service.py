"""`Server`: the `dagflow serve` loop: create ticks, claim due runs, run each in a child process.

One loop, about every `poll` seconds (sooner when a tick is due):

1. every `refresh` seconds, re-read its deployments' rows: a paused one gets no new ticks (and
   its upcoming ticks were dropped by `deployments pause`), a removed one is no longer served;
2. end the due ticks that catchup=false deployments skip (a later tick is due);
3. claim due runs of its deployments, within `limit` running children and each deployment's
   `max_active_runs`, and start one child process per run (`child.py`, forked from a warm fork
   server: `processes.py`), passing it the cluster: the shared LocalCluster's address for the
   default local cluster, else the deployment's cluster name; then, within `limit` too, claim
   its deployments' ended runs someone asked to resume (`store/control.py`): the child resumes
   those, as `dagflow resume` would;
4. create the ticks the planner says are due (`planning.py`), each once by idempotency key (and
   claim again if one of them is due already);
5. reap children that ended and log how their runs ended. A child that could not start its run
   (the flow's file no longer imports, parameters no longer valid) is logged as that one line;
   the deployment stays served, and the others keep running on time.

Triggers are watched beside the loop, one thread per trigger (`watchers.py`: files, rows, flow
runs); a watcher that creates runs wakes the loop, which claims them at once.

SIGINT/SIGTERM: the first stops claiming (claimed runs not yet started are given back) and lets
running runs finish; the second cancels them (SIGTERM to each child: its run ends CANCELLED); the
loop then returns 0. A database error in one loop is logged and the next loop tries again: the
service never dies of a user's mistake or of a busy database.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from dagflow.core.deployments import Deployment
from dagflow.core.triggers import FilesTrigger, FlowRunTrigger, RowsTrigger, Trigger
from dagflow.scheduler import child as child_module
from dagflow.scheduler.planning import Planner, PlanOptions
from dagflow.scheduler.processes import ForkServer

if TYPE_CHECKING:
    from dagflow.scheduler.watchers import Watcher
    from dagflow.store import Claimed, Store

log = logging.getLogger("dagflow.scheduler")

ENDINGS = {
    child_module.EXIT_COMPLETED: "COMPLETED",
    child_module.EXIT_FAILED: "FAILED",
    child_module.EXIT_CANCELLED: "CANCELLED",
}


@dataclass(frozen=True, slots=True)
class Served:
    """A deployment this process serves, and the cluster its runs use."""

    deployment: Deployment
    cluster: str  # a cluster name, profile or scheduler address, as `--cluster` takes it


@dataclass(slots=True)
class Child:
    process: Any  # subprocess.Popen, or what a custom `spawn` returns (has poll, pid, send_signal)
    claimed: Claimed
    started: float
    resume: bool = False  # it resumes an ended run (a resume request)


def serve_id() -> str:
    """This process's name in `claimed_by`: host, pid and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Spawn(Protocol):
    """Starts the child process of one claimed run (`processes.py`; `resume`: an ended run to
    resume); returns a handle with `poll()`, `pid` and `send_signal(sig)`."""

    def __call__(self, run_id: str, served_by: str, cluster: str, resume: bool = False) -> Any: ...


class Server:
    """Serves deployments until stopped; see the module docstring."""

    def __init__(
        self,
        store: Store,
        served: Sequence[Served],
        *,
        limit: int = 10,
        poll: float = 0.5,
        refresh: float = 2.0,
        reclaim_after: float = 60.0,
        plan: PlanOptions | None = None,
        spawn: Spawn | None = None,
        served_by: str | None = None,
    ) -> None:
        self.store = store
        self.served = {s.deployment.full_name: s for s in served}
        self.limit = limit
        self.poll = poll
        self.refresh = refresh
        self.reclaim_after = reclaim_after
        self.planner = Planner(plan or PlanOptions())
        self._fork_server: ForkServer | None = None
        if spawn is None:
            self._fork_server = ForkServer()
            spawn = self._fork_server.start
        self.spawn = spawn
        self.served_by = served_by or serve_id()
        self.children: dict[str, Child] = {}
        self.signals = 0
        self.stopping = False
        self._wake = threading.Event()
        self._last_refresh = -math.inf
        self._errors = 0
        self.watchers: list[Watcher] = []

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM (or `stop()`), then return 0."""
        restore = self._install_signals()
        try:
            self._register()
            self._watch()
            log.info(
                "serving %d deployment(s) as %s (limit %d runs at once)",
                len(self.served),
                self.served_by,
                self.limit,
            )
            while True:
                now = time.time()
                if not self.stopping:
                    self._step(now)
                elif self.watchers:
                    self._stop_watchers()  # stopping: no new events either
                self._reap()
                if self.stopping and not self.children:
                    break
                self._sleep(now)
        finally:
            self._stop_watchers()
            self._release()
            restore()
        log.info("stopped")
        return 0

    def stop(self, cancel_runs: bool = False) -> None:
        """As a first (or, with `cancel_runs`, a second) Ctrl-C would."""
        self._signal(signal.SIGTERM, None)
        if cancel_runs:
            self._signal(signal.SIGTERM, None)

    def _register(self) -> None:
        if self._fork_server is not None:
            self._fork_server.warm_up()
        deployments = [s.deployment for s in self.served.values()]
        changed = set(self.store.save_deployments(deployments))
        last = self.store.last_ticks(list(self.served))
        now = time.time()
        for dep in deployments:
            start = None if dep.full_name in changed else last.get(dep.full_name)
            self.planner.start(dep, start, now)

    def _watch(self) -> None:
        """Start a watcher per trigger of the served deployments."""
        for name, served in self.served.items():
            for trigger in served.deployment.triggers:

                def current(name: str = name) -> Deployment | None:
                    found = self.served.get(name)
                    return found.deployment if found is not None else None

                if isinstance(trigger, FlowRunTrigger):
                    self._check_upstream(name, trigger)
                watcher = watcher_for(self.store, served.deployment, trigger, current, self.wake)
                if watcher is not None:
                    self.watchers.append(watcher)
                    watcher.start()
                    log.info("deployment %s: watching %s", name, trigger.describe())

    def _check_upstream(self, name: str, trigger: FlowRunTrigger) -> None:
        """One line if a flow-run trigger names a flow or deployment nobody knows (yet)."""
        served = any(
            trigger.matches(s.deployment.flow_name, s.deployment.full_name)
            for s in self.served.values()
        )
        try:
            known = (
                served
                or any(trigger.matches(f.name, None) for f in self.store.list_flows())
                or bool(self.store.deployment_rows([trigger.upstream]))
            )
        except Exception:
            return
        if not known:
            log.warning(
                "deployment %s: trigger %s: no flow or deployment %r is known yet "
                "(it fires when a run of it ends)",
                name,
                trigger.name,
                trigger.upstream,
            )

    def _stop_watchers(self) -> None:
        for watcher in self.watchers:
            watcher.stop()
        self.watchers = []

    def wake(self) -> None:
        """Run the loop now (a trigger created runs)."""
        self._wake.set()

    # ------------------------------------------------------------------ one loop

    def _step(self, now: float) -> None:
        try:
            if now - self._last_refresh >= self.refresh:
                self._refresh(now)
            # Claim what is due before planning further ahead (planning 1,000 deployments'
            # next ticks takes a while); claim again if planning created a tick already due.
            self._claim(now)
            if self._plan(now) <= now:
                self._claim(now)
            self._errors = 0
        except Exception as exc:  # a busy or unreachable database: try again next loop
            self._errors += 1
            level = logging.WARNING if self._errors in (1, 10) or self._errors % 100 == 0 else 0
            if level:
                log.warning("scheduler loop failed (%d in a row), retrying: %s", self._errors, exc)

    def _claim(self, now: float) -> None:
        self.store.skip_missed(now)
        capacity = self.limit - len(self.children)
        if capacity <= 0 or self.stopping:
            return
        claimed = self.store.claim_due(
            self.served_by, now, capacity, self.reclaim_after, list(self.served)
        )
        for item in claimed:
            if self.stopping:
                break  # Ctrl-C came meanwhile: what is left is given back on the way out
            self._start(item)
        capacity = self.limit - len(self.children)
        if capacity <= 0 or self.stopping:
            return
        for item in self.store.claim_resumes(self.served_by, now, capacity, list(self.served)):
            if self.stopping or item.deployment_id not in self.served:
                self.store.give_back_resume(item.run_id, self.served_by)
                continue
            log.info("run %s of %s: resume requested", item.run_id[:12], item.deployment_id)
            self._start(item, resume=True)

    def _refresh(self, now: float) -> None:
        self._last_refresh = now
        current = self.store.deployment_rows(list(self.served))
        for name in list(self.served):
            dep = current.get(name)
            if dep is None:
                log.warning("deployment %s was removed: no longer served", name)
                del self.served[name]
                continue
            old = self.served[name]
            if dep.paused != old.deployment.paused:
                log.info("deployment %s %s", name, "paused" if dep.paused else "resumed")
            self.served[name] = Served(dep, old.cluster)

    def _plan(self, now: float) -> float:
        """Create the ticks the planner says are due; returns the earliest created (or inf)."""
        from dagflow.store import NewRun

        runs: list[NewRun] = []
        for served in self.served.values():
            dep = served.deployment
            if dep.paused:
                self.planner.skip_to(dep, now)
                continue
            for tick in self.planner.due(dep, now):
                key = dep.idempotency_key(tick)
                runs.append(NewRun(dep, tick, "schedule", key, dict(dep.parameters)))
        if not runs:
            return math.inf
        created = self.store.create_runs(runs)
        log.debug("%d tick(s) planned, %d created", len(runs), len(created))
        return min(run.scheduled_time for run in runs) if created else math.inf

    def _start(self, claimed: Claimed, resume: bool = False) -> None:
        served = self.served.get(claimed.deployment_id)
        if served is None:
            return
        try:
            if resume:
                process = self.spawn(claimed.run_id, self.served_by, served.cluster, resume=True)
            else:
                process = self.spawn(claimed.run_id, self.served_by, served.cluster)
        except OSError as exc:
            log.error("run %s: cannot start its process: %s", claimed.run_id, exc)
            if resume:
                self.store.give_back_resume(claimed.run_id, self.served_by)
            return
        self.children[claimed.run_id] = Child(process, claimed, time.time(), resume)
        log.info(
            "run %s of %s (tick %s) started, pid %s",
            claimed.run_id[:12],
            claimed.deployment_id,
            _hms(claimed.scheduled_time),
            getattr(process, "pid", "?"),
        )

    def _reap(self) -> None:
        for run_id, ch in list(self.children.items()):
            code = ch.process.poll()
            if code is None:
                continue
            del self.children[run_id]
            took = time.time() - ch.started
            name = ch.claimed.deployment_id
            if code in ENDINGS:
                log.info("run %s of %s ended %s in %.1fs", run_id[:12], name, ENDINGS[code], took)
            elif code == child_module.EXIT_NOT_STARTED and ch.resume:
                log.warning(
                    "run %s of %s: resume not started (its reason is above)", run_id[:12], name
                )
            elif code == child_module.EXIT_NOT_STARTED:
                log.warning("run %s of %s not started: %s", run_id[:12], name, self._why(run_id))
            elif code == child_module.EXIT_NOT_TAKEN:
                log.info("run %s of %s not started: cancelled meanwhile", run_id[:12], name)
            else:
                log.error(
                    "run %s of %s: its process ended with code %s (killed?); the run will read "
                    "CRASHED once its heartbeat is stale",
                    run_id[:12],
                    name,
                    code,
                )

    def _why(self, run_id: str) -> str:
        try:
            run = self.store.get_flow_run(run_id, task_history=False)
            return run.error or "no reason recorded"
        except Exception as exc:
            return f"(cannot read the reason: {exc})"

    def _sleep(self, now: float) -> None:
        wake = min(self.planner.next_look(), now + self.poll)
        if self.stopping:
            wake = now + 0.2
        delay = max(0.01, wake - time.time())
        self._wake.wait(delay)
        self._wake.clear()

    def _release(self) -> None:
        try:
            given = self.store.release_claims(self.served_by)
            if given:
                log.info("%d claimed run(s) given back", given)
        except Exception as exc:
            log.warning("could not give back claimed runs: %s", exc)

    # ------------------------------------------------------------------ signals

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.signal(s, self._signal) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, handler in old.items():
                signal.signal(sig, handler)

        return restore

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        if self.signals == 1:
            self.stopping = True
            log.warning(
                "stopping: no new runs; waiting for %d running run(s) to finish "
                "(Ctrl-C again cancels them)",
                len(self.children),
            )
        else:
            log.warning("cancelling %d running run(s)", len(self.children))
            sig = signal.SIGTERM if self.signals == 2 else signal.SIGKILL
            for ch in self.children.values():
                try:
                    ch.process.send_signal(sig)
                except (OSError, ProcessLookupError):
                    pass
        self._wake.set()


def watcher_for(
    store: Store,
    deployment: Deployment,
    trigger: Trigger,
    current: Callable[[], Deployment | None],
    wake: Callable[[], None],
) -> Watcher | None:
    """The watcher of `trigger` (None for a webhook: the server receives those)."""
    if isinstance(trigger, FilesTrigger):
        from dagflow.scheduler.files import FileWatcher

        return FileWatcher(store, deployment.full_name, trigger, current, wake)
    if isinstance(trigger, RowsTrigger):
        from dagflow.scheduler.rows import RowsWatcher

        return RowsWatcher(store, deployment.full_name, trigger, current, wake)
    if isinstance(trigger, FlowRunTrigger):
        from dagflow.scheduler.flowruns import FlowRunWatcher

        return FlowRunWatcher(store, deployment.full_name, trigger, current, wake)
    return None


def _hms(instant: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(instant)) + "Z"
