"""`Client(url, token)`: the dagflow server's HTTP API, read back as dagflow's own values.

    from dagflow.client import Client

    with Client("http://127.0.0.1:4200", token) as client:
        for run in client.list_flow_runs(state="FAILED", limit=10):
            print(run.id, run.flow_name, run.state, run.counts())
        run = client.get_flow_run("3f2a")          # FlowRun: task runs, histories, logs()

It returns the same `FlowRun` / `TaskRun` / `LogEvent` values as `dagflow.get_flow_run` and
`dagflow.list_flow_runs`, and implements `dagflow.core.history.RunHistory`, so with
`DAGFLOW_API_URL` and `DAGFLOW_API_TOKEN` set the `runs` and `logs` commands read through a
server: a laptop can watch the team's history without database credentials.

It also reads and drives deployments (`deployments`, `set_paused`, `run_deployment`) and asks
for an ended run to be resumed by its serving process (`request_resume`), so `dagflow
deployments ls|show|run|pause|resume` work through a server too.

Errors map back to dagflow's: 404 `NotFound`, 409 `StateConflict`, 401 `SettingsError` (a
missing or wrong token), 422 `UsageError` naming the field (`DeploymentError` with the CLI's own
line for a deployment run's parameters); a server that cannot be reached or fails is a
`StoreError`. httpx is imported here only, when a client is made.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from dagflow.core.history import RunSummary, Setback
from dagflow.core.runs import FlowRun, LogEvent
from dagflow.core.states import StateType
from dagflow.errors import (
    DeploymentError,
    NotFound,
    SettingsError,
    StateConflict,
    StoreError,
    UsageError,
)
from dagflow.server.models import (
    CancelOut,
    HistoryOut,
    LogPageOut,
    RunDetail,
    RunPageOut,
    TaskRunOut,
    TaskRunPageOut,
    log_of,
    run_of,
    summary_of,
)
from dagflow.settings import API_TOKEN

if TYPE_CHECKING:
    from dagflow.core.deployments import Deployment
    from dagflow.server.deployment_models import DeploymentOut
    from dagflow.store.deployments import DeploymentInfo

SETBACKS = frozenset({StateType.RETRYING, StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED})

__all__ = ["Client"]

PAGE = 500


class Client:
    """A dagflow server's API at `url` (`http://host:4200`), authenticated by `token`."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 30.0, verify: Any = True
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout, verify=verify
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ HTTP

    def _get(self, path: str, params: Any = None, timeout: float | None = None) -> Any:
        return self._call("GET", path, params, timeout)

    def _call(
        self,
        method: str,
        path: str,
        params: Any = None,
        timeout: float | None = None,
        body: Any = None,
    ) -> Any:
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        if body is not None:
            extra["json"] = body
        try:
            response = self._http.request(method, path, params=params, **extra)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the dagflow server at {self.url}: {exc}") from None
        if response.is_success:
            return response.json()
        raise _error(self.url, response)

    # ------------------------------------------------------------------ RunHistory

    def list_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """The newest runs first with their task runs counted by state (one request a page)."""
        if limit < 1:
            raise UsageError(f"limit must be at least 1, got {limit}")
        out: list[RunSummary] = []
        cursor: str | None = None
        while len(out) < limit:
            params: dict[str, Any] = {"limit": min(limit - len(out), PAGE)}
            if flow is not None:
                params["flow"] = flow
            if state is not None:
                params["state"] = str(state).strip().upper()
            if cursor is not None:
                params["cursor"] = cursor
            page = RunPageOut.model_validate(self._get("/runs", params))
            out.extend(summary_of(r) for r in page.runs)
            cursor = page.next_cursor
            if cursor is None:
                break
        return out

    def get_flow_run(self, ref: str, *, task_history: bool = True) -> FlowRun:
        """One run by id or unique prefix, with every task run, their histories, and `logs()`.
        (The API's task runs come without their steps: `task_history` changes nothing here.)"""
        detail = RunDetail.model_validate(self._get(f"/runs/{_ref(ref)}"))
        run = run_of(detail, list(self._task_runs(detail.id)))
        run_id = run.id
        run._log_loader = lambda: self.logs(run_id)
        return run

    def resolve(self, ref: str) -> str:
        return str(self._get(f"/runs/{_ref(ref)}")["id"])

    def run_state(self, run_id: str) -> StateType | None:
        try:
            return StateType(self._get(f"/runs/{_ref(run_id)}")["state"])
        except NotFound:
            return None

    def logs_after(
        self, run_id: str, task: str | None = None, after: int = 0, wait: float = 0.0
    ) -> list[tuple[int, LogEvent]]:
        """Log records after record id `after`; `wait` seconds for new ones (long-poll)."""
        page = self._log_page(run_id, task, after, PAGE, wait)
        return [(row.id, log_of(run_id, row)) for row in page.logs]

    def setbacks(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, Setback]]:
        """Task retries and failures after history step `after` (without tracebacks: a task's
        own page, `runs show --task`, has its traceback)."""
        page = HistoryOut.model_validate(
            self._get(f"/runs/{run_id}/history", {"after": after, "limit": 5000})
        )
        out: list[tuple[int, Setback]] = []
        for step in page.steps:
            if step.task_key is None or step.to_state not in SETBACKS:
                continue
            if task is not None and task not in (
                step.task_key,
                step.dask_key,
                step.task_key.rpartition("[")[0],
            ):
                continue
            out.append(
                (
                    step.id,
                    Setback(
                        step.task_key,
                        None,
                        step.to_state,
                        step.attempt,
                        step.time.timestamp(),
                        step.message,
                    ),
                )
            )
        return out

    def task_names(self, run_id: str) -> list[str]:
        return sorted({t.name for t in self._task_runs(run_id)})

    def has_task(self, run_id: str, ref: str) -> bool:
        return any(ref in (t.name, t.key, t.dask_key) for t in self._task_runs(run_id))

    # ------------------------------------------------------------------ the Python API's reads

    def list_flow_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[FlowRun]:
        """Like `dagflow.list_flow_runs`: newest first, each with its task runs loaded."""
        return [self.get_flow_run(s.run.id) for s in self.list_runs(flow, state, limit)]

    def logs(self, ref: str, task: str | None = None) -> list[LogEvent]:
        """Every log record of a run, in time order (as `FlowRun.logs()` gives them)."""
        run_id = self.resolve(ref)
        out: list[LogEvent] = []
        after = 0
        while True:
            page = self._log_page(run_id, task, after, PAGE, 0.0)
            out.extend(log_of(run_id, row) for row in page.logs)
            if len(page.logs) < PAGE:
                return sorted(out, key=lambda ev: ev.time)
            after = page.next_after

    def cancel(self, ref: str) -> StateType:
        """Ask the server to cancel a run; returns its state after (CANCELLED or CANCELLING)."""
        return self.request_cancel(ref)[1]

    def request_cancel(self, ref: str) -> tuple[str, StateType]:
        """Ask the server to cancel a run: its id, and its state after."""
        out = CancelOut.model_validate(self._call("POST", f"/runs/{_ref(ref)}/cancel"))
        return out.id, out.state

    def request_resume(self, ref: str) -> tuple[str, StateType, float]:
        """Queue an ended run of a deployment for its serving process to resume: its id, its
        state (it keeps it until resumed) and when the resume was asked."""
        from dagflow.server.models import ResumeOut

        out = ResumeOut.model_validate(self._call("POST", f"/runs/{_ref(ref)}/resume"))
        return out.id, out.state, out.resume_requested.timestamp()

    # ------------------------------------------------------------------ deployments

    def deployments(self, refs: Sequence[str] | None = None) -> list[DeploymentInfo]:
        """Registered deployments (all, or those named), as `Store.deployments` gives them."""
        from dagflow.server.deployment_models import DeploymentOut

        if refs is None:
            found = self._get("/deployments")
        else:
            found = [self._get(f"/deployments/{_deployment(r)}") for r in refs]
        return [_info_of(DeploymentOut.model_validate(d)) for d in found]

    def deployment(self, ref: str) -> Deployment:
        return self.deployments([ref])[0].deployment

    def parameter_schema(self, ref: str) -> dict[str, Any] | None:
        """The JSON schema of the deployment's flow parameters (None if the server cannot load
        its flow)."""
        found: dict[str, Any] | None = self._get(f"/deployments/{_deployment(ref)}")[
            "parameter_schema"
        ]
        return found

    def set_paused(self, ref: str, paused: bool) -> str:
        """Pause or resume a deployment; returns its full name."""
        action = "pause" if paused else "resume"
        return str(self._call("POST", f"/deployments/{_deployment(ref)}/{action}")["name"])

    def run_deployment(
        self,
        ref: str,
        params: Sequence[str] = (),
        parameters: dict[str, Any] | None = None,
    ) -> str:
        """Create a run of deployment `ref` now (a serving process starts it); its id.

        `parameters` are JSON values, `params` `NAME=VALUE` text as `--param` takes it; both
        override the deployment's defaults and are validated by the server as the CLI would.
        """
        body = {"parameters": dict(parameters or {}), "params": list(params)}
        return str(self._call("POST", f"/deployments/{_deployment(ref)}/runs", body=body)["id"])

    def health(self) -> dict[str, Any]:
        found: dict[str, Any] = self._get("/health")
        return found

    # ------------------------------------------------------------------ paging

    def _task_runs(self, run_id: str) -> Iterator[TaskRunOut]:
        offset = 0
        while True:
            page = TaskRunPageOut.model_validate(
                self._get(f"/runs/{run_id}/task-runs", {"offset": offset, "limit": 1000})
            )
            yield from page.task_runs
            offset += len(page.task_runs)
            if not page.task_runs or offset >= page.total:
                return

    def _log_page(
        self, run_id: str, task: str | None, after: int, limit: int, wait: float
    ) -> LogPageOut:
        params: dict[str, Any] = {"after": after, "limit": limit, "wait": wait}
        if task is not None:
            params["task"] = task
        timeout = self._http.timeout.read
        read = None if timeout is None else timeout + wait
        return LogPageOut.model_validate(self._get(f"/runs/{run_id}/logs", params, read))


def _ref(ref: str) -> str:
    ref = (ref or "").strip()
    if not ref:
        raise NotFound("no run id given")
    return quote(ref, safe="")


def _deployment(ref: str) -> str:
    ref = (ref or "").strip()
    if not ref:
        raise NotFound("no deployment named")
    return "/".join(quote(part, safe="") for part in ref.split("/"))


def _info_of(out: DeploymentOut) -> DeploymentInfo:
    from dagflow.core.deployments import Deployment
    from dagflow.core.schedules import schedule_from_spec
    from dagflow.store.deployments import DeploymentInfo

    dep = Deployment(
        name=out.deployment,
        flow_name=out.flow,
        entrypoint=out.entrypoint,
        parameters=out.parameters,
        schedules=tuple(schedule_from_spec(s.spec) for s in out.schedules),
        cluster=out.cluster,
        tags=tuple(out.tags),
        description=out.description,
        paused=out.paused,
        max_active_runs=out.max_active_runs,
        catchup=out.catchup,
    )
    return DeploymentInfo(
        dep,
        out.created.timestamp(),
        out.updated.timestamp(),
        out.next_run.timestamp() if out.next_run else None,
        out.last_run.id if out.last_run else None,
        out.last_run.state if out.last_run else None,
    )


def _error(url: str, response: httpx.Response) -> Exception:
    try:
        body = response.json()
        detail = body.get("detail")
        message = body.get("message")
    except (ValueError, AttributeError):
        detail = message = None
    if response.status_code == 422 and isinstance(message, str):
        return DeploymentError(message, detail if isinstance(detail, list) else None)
    if isinstance(detail, list):
        parts = []
        for item in detail:
            loc = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path"))
            parts.append(f"{loc}: {item.get('msg', 'invalid')}" if loc else str(item.get("msg")))
        text = "; ".join(parts)
    else:
        text = str(detail) if detail else response.reason_phrase
    status = response.status_code
    if status == 401:
        return SettingsError(f"the dagflow server at {url} refused the token: set {API_TOKEN}")
    if status == 404:
        return NotFound(text)
    if status == 409:
        return StateConflict(text)
    if status in (400, 422):
        return UsageError(text)
    return StoreError(f"the dagflow server at {url} answered {status}: {text}")
