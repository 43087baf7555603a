"""dagflow's page inside the Dask dashboard: the runs on this cluster, in dagflow's own states.

A scheduler preload module (`dask scheduler --preload dagflow.dashboard`; dagflow's local
clusters add it themselves). `dask_setup` adds to the scheduler's HTTP server:

- `/dagflow` (and `/individual-dagflow-runs`, the name the dashboard's "More..." menu and
  dask-labextension list): an HTML page, one row per flow run on this cluster, newest first;
- `/dagflow/api/runs` (`?run=RUN_ID` for one run): the same as JSON.

Which runs: those with a `distributed.span(flow name, run id)` on this scheduler. Their states
come from **dagflow's run history** (the database this scheduler's environment names, as for any
dagflow process): a FAILED run with failed tasks shows FAILED and its failed count, whatever
Dask says (a failed task is "done" for Dask: the wrapper returns the failure as a value). Dask's
own progress (done/total keys of the run's task groups) is shown beside it. When
`DAGFLOW_API_URL` names a dagflow server, each run links to its page there.

A request costs O(spans + the listed runs' task groups) on the scheduler and one indexed query
(run by id, task counts grouped by state) in a worker thread: the event loop never waits on the
database. The page carries no script at all (it reloads itself with a meta refresh) and sends a
Content-Security-Policy; every stored string is escaped.
"""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

from tornado import web
from tornado.ioloop import IOLoop

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_RUNS = 200
REFRESH_SECONDS = 2
BUCKETS = ("waiting", "processing", "memory", "erred", "forgotten")
_BUCKET_OF = {
    "released": "waiting",
    "waiting": "waiting",
    "queued": "waiting",
    "no-worker": "waiting",
    "processing": "processing",
    "memory": "memory",
    "erred": "erred",
    "forgotten": "forgotten",
}
CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'"
)


def run_rows(
    scheduler: Any, run_id: str | None = None, limit: int = MAX_RUNS
) -> list[dict[str, Any]]:
    """The newest `limit` dagflow runs known to the scheduler, newest first (or just `run_id`)."""
    ext = scheduler.extensions.get("spans")
    if ext is None:
        return []
    rows: list[dict[str, Any]] = []
    for span in reversed(list(ext.spans.values())):
        name = span.name
        if len(name) < 2 or not RUN_ID.match(str(name[-1])):
            continue
        if run_id is not None and name[-1] != run_id:
            continue
        rows.append(_row(span))
        if len(rows) >= limit:
            break
    return rows


def _row(span: Any) -> dict[str, Any]:
    counts = dict.fromkeys(BUCKETS, 0)
    for group in span.groups:  # this run's own groups; a subflow is a span of its own
        for state, n in group.states.items():
            if n:
                counts[_BUCKET_OF.get(state, "waiting")] += n
    total = sum(counts.values())
    done = counts["memory"] + counts["forgotten"]
    parent = span.parent
    while parent is not None and not RUN_ID.match(str(parent.name[-1])):
        parent = parent.parent
    return {
        "flow": str(span.name[-2]),
        "run_id": str(span.name[-1]),
        "parent_run_id": str(parent.name[-1]) if parent is not None else None,
        "span_id": span.id,
        "submitted": span.enqueued,
        "tasks": total,
        "done": done,
        "progress": round(done / total, 4) if total else 0.0,
        "states": counts,
    }


def with_history(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Add dagflow's state, task counts and page link to each row; (rows, problem or None).

    Runs in a worker thread: it reads the run history database.
    """
    from dagflow import runtime
    from dagflow import settings as dagflow_settings
    from dagflow.errors import DagflowError

    try:
        current = dagflow_settings.load()
        found = runtime.default_store(current).run_summaries([r["run_id"] for r in rows])
    except DagflowError as exc:
        return rows, f"the run history cannot be read from this scheduler: {exc}"
    for row in rows:
        summary = found.get(row["run_id"])
        row["url"] = f"{current.api_url}/runs/{row['run_id']}" if current.api_url else None
        if summary is None:
            row.update(state=None, task_counts={}, failed_tasks=0, error=None)
            continue
        run = summary.run
        row.update(
            state=run.state.value,
            task_counts={s.value: n for s, n in sorted(summary.task_counts.items())},
            failed_tasks=summary.failed_tasks,
            error=run.error,
        )
        if not row["tasks"] and summary.tasks:
            # a finished run's spans are emptied on the scheduler: count from the history
            total, finished = summary.tasks, summary.finished_tasks
            row.update(tasks=total, done=finished, progress=round(finished / total, 4))
    return rows, None


class RunsHandler(web.RequestHandler):
    """GET /dagflow/api/runs[?run=RUN_ID]: the runs on this cluster as JSON."""

    def initialize(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    async def get(self) -> None:
        run_id = self.get_argument("run", None)
        if run_id is not None and not RUN_ID.match(run_id):
            self.set_status(400)
            self.write({"error": f"run must be a 32-character run id, got {run_id!r}"})
            return
        rows = run_rows(self.scheduler, run_id)
        if run_id is not None and not rows:
            self.set_status(404)
            self.write({"error": f"no run {run_id} on this cluster"})
            return
        rows, problem = await IOLoop.current().run_in_executor(None, with_history, rows)
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"runs": rows, "history_error": problem}))


class PageHandler(web.RequestHandler):
    """GET /dagflow: the runs on this cluster as an HTML table, in dagflow's states."""

    def initialize(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    async def get(self) -> None:
        rows, problem = await IOLoop.current().run_in_executor(
            None, with_history, run_rows(self.scheduler)
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.write(render_page(rows, problem))


STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:16px 24px;color:#1d2330}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 9px;
border-bottom:1px solid #e1e5ec}th{background:#eef1f6;font-size:12px;text-transform:uppercase}
.b{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;
font-weight:700;background:#8a94a6}.ok{background:#2e9d5b}.failed{background:#d43d3d}
.running{background:#2f7fd1}.f{color:#d43d3d;font-weight:700}tr.bad{background:#fff4f4}
.note{color:#5d6677}code{font-size:12px}"""


def _state_class(state: str | None) -> str:
    from dagflow.core.states import StateType

    if state is None:
        return ""
    s = StateType(state)
    if s.is_success:
        return "ok"
    if s.is_failure:
        return "failed"
    return "running" if not s.is_final else ""


def render_page(rows: list[dict[str, Any]], problem: str | None) -> str:
    e = html.escape
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>",
        f"<title>Dask: dagflow runs</title><style>{STYLE}</style></head><body>",
        "<h2>dagflow runs on this cluster</h2>",
        "<p class='note'>States and task counts are dagflow's, from its run history; "
        "<i>Dask keys</i> counts this cluster's keys done (a failed task is done for Dask). "
        "JSON: <a href='dagflow/api/runs'>dagflow/api/runs</a>.</p>",
    ]
    if problem:
        out.append(f"<p class='f'>{e(problem)}</p>")
    if not rows:
        out.append("<p class='note'>No dagflow run on this cluster yet.</p>")
    else:
        out.append(
            "<table><tr><th>State</th><th>Flow</th><th>Run</th><th>Submitted (UTC)</th>"
            "<th>Tasks (dagflow)</th><th>Dask keys</th></tr>"
        )
        for row in rows:
            state = row.get("state")
            bad = " class='bad'" if _state_class(state) == "failed" else ""
            counts = " ".join(
                f"<span class='{'f' if k in FAILED else ''}'>{n} {e(k.lower())}</span>"
                for k, n in row.get("task_counts", {}).items()
            )
            run_id = e(row["run_id"])
            link = f"<a href='{e(row['url'])}'>{run_id}</a>" if row.get("url") else run_id
            shown = e(state) if state else "not in this scheduler's run history"
            submitted = datetime.fromtimestamp(row["submitted"], timezone.utc)
            out.append(
                f"<tr{bad} data-run='{run_id}'><td><span class='b {_state_class(state)}'>"
                f"{shown}</span></td><td>{e(row['flow'])}</td><td><code>{link}</code></td>"
                f"<td>{submitted:%Y-%m-%d %H:%M:%S}</td><td>{counts or '-'}</td>"
                f"<td>{row['done']}/{row['tasks']}</td></tr>"
            )
        out.append("</table>")
    out.append("</body></html>")
    return "".join(out)


FAILED = ("FAILED", "TIMED_OUT", "CRASHED", "UPSTREAM_FAILED")


def runs_doc(scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    """The Bokeh entry the dashboard's menu lists; `dask_setup`'s handler serves the page."""
    from bokeh.models.widgets import Div

    doc.title = "Dask: dagflow runs"
    doc.add_root(Div(text="The dagflow page is at <a href='dagflow'>dagflow</a>."))


def dask_setup(server: Any) -> None:
    """Preload hook: add the page and its JSON route to the scheduler's HTTP server.

    The scheduler's own handlers are matched before the Bokeh dashboard's applications, so
    these serve `/dagflow` and `/individual-dagflow-runs` whatever the Bokeh app registered.
    """
    from distributed import Scheduler

    app = getattr(server, "http_application", None)
    if not isinstance(server, Scheduler) or app is None:
        return
    args = {"scheduler": server}
    app.add_handlers(
        r".*",
        [
            (r"/dagflow/api/runs/?", RunsHandler, args),
            (r"/dagflow/?", PageHandler, args),
            (r"/individual-dagflow-runs/?", PageHandler, args),
        ],
    )


def _register_page() -> None:
    from distributed.dashboard.scheduler import applications

    # the dashboard's "More..." menu and dask-labextension list the "individual-" pages
    applications.setdefault("/individual-dagflow-runs", runs_doc)


_register_page()
