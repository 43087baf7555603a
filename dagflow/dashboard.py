"""dagflow's page inside the Dask dashboard: the runs on this cluster and their tasks' progress.

A scheduler preload module (`dask scheduler --preload dagflow.dashboard`; dagflow's local
clusters add it themselves). Importing it registers the Bokeh page `/dagflow` with the stock
dashboard (and, as `/individual-dagflow-runs`, in its "More..." menu and in dask-labextension);
`dask_setup` adds the JSON route `/dagflow/api/runs` (`?run=RUN_ID` for one run).

Where the numbers come from: each flow run submits its tasks inside `distributed.span(flow name,
run id)`, and each run's task groups are its own (keys carry the run token), so a run's progress
is the sum of its span's task groups' state counts (Dask states: waiting, processing, memory,
erred, forgotten). A request costs O(spans + the listed runs' task groups), never O(tasks), and
nothing runs per transition. A task that dagflow records as FAILED still ends in Dask's `memory`
(the wrapper returns the failure as a value), so these are Dask's states; the run's own record
has dagflow's.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tornado import web

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_RUNS = 200
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


class RunsHandler(web.RequestHandler):
    """GET /dagflow/api/runs[?run=RUN_ID]: the runs on this cluster as JSON."""

    def initialize(self, scheduler: Any) -> None:
        self.scheduler = scheduler

    def get(self) -> None:
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
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"runs": rows}))


def runs_doc(scheduler: Any, extra: dict[str, Any], doc: Any) -> None:
    """The Bokeh page: one row per run with its tasks by Dask state, refreshed every second."""
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource
    from bokeh.models.widgets import DataTable, Div, NumberFormatter, TableColumn
    from distributed.dashboard.components.scheduler import BOKEH_THEME, env

    fields = ("flow", "run_id", "submitted", "tasks", *BUCKETS, "progress")
    source = ColumnDataSource({f: [] for f in fields})

    def update() -> None:
        import datetime as dt

        rows = run_rows(scheduler)
        data: dict[str, list[Any]] = {f: [] for f in fields}
        for row in rows:
            data["flow"].append(row["flow"])
            data["run_id"].append(row["run_id"])
            data["submitted"].append(
                dt.datetime.fromtimestamp(row["submitted"]).strftime("%Y-%m-%d %H:%M:%S")
            )
            data["tasks"].append(row["tasks"])
            for bucket in BUCKETS:
                data[bucket].append(row["states"][bucket])
            data["progress"].append(row["progress"])
        source.data = data

    columns = [
        TableColumn(field="flow", title="flow"),
        TableColumn(field="run_id", title="run id", width=260),
        TableColumn(field="submitted", title="submitted"),
        TableColumn(field="tasks", title="tasks"),
        *[TableColumn(field=b, title=b) for b in BUCKETS],
        TableColumn(field="progress", title="done", formatter=NumberFormatter(format="0%")),
    ]
    table = DataTable(source=source, columns=columns, sizing_mode="stretch_width", height=600)
    title = Div(
        text="<h2>dagflow runs</h2><p>Tasks of each flow run on this cluster by Dask state "
        "(done = memory + forgotten). JSON: <code>dagflow/api/runs</code></p>"
    )
    update()
    doc.add_periodic_callback(update, 1000)
    doc.title = "Dask: dagflow runs"
    doc.add_root(column(title, table, sizing_mode="stretch_width"))
    doc.template = env.get_template("simple.html")
    doc.template_variables.update(extra)
    doc.theme = BOKEH_THEME


def dask_setup(server: Any) -> None:
    """Preload hook: add the JSON route to the scheduler's HTTP server."""
    from distributed import Scheduler

    app = getattr(server, "http_application", None)
    if not isinstance(server, Scheduler) or app is None:
        return
    app.add_handlers(r".*", [(r"/dagflow/api/runs/?", RunsHandler, {"scheduler": server})])


def _register_page() -> None:
    from distributed.dashboard.scheduler import applications

    applications.setdefault("/dagflow", runs_doc)
    # the dashboard's "More..." menu and dask-labextension list the "individual-" pages
    applications.setdefault("/individual-dagflow-runs", runs_doc)


_register_page()
