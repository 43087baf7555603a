"""The run page's charts, as Bokeh documents sent with `json_item` (no inline script).

- **Gantt timeline**: one bar per attempt of each task run (its RUNNING to how that attempt
  ended), coloured by that end, so retries and crashed attempts sit side by side on the task's
  row. A task name with more than `DETAIL_LIMIT` task runs (a large map), or every name once the
  chart holds `MAX_DETAILED` rows, is drawn as ONE bar per name from its first start to its last
  end, labelled with its counts: a 10,000-task run draws a handful of bars.
- **Task graph**: one node per task name with its task runs' counts by state, edges from the
  run's recorded name-level dependencies, laid out in layers (longest path from a source).

Each function returns `(json_item, live)`: the chart and whether the run is still active (the page
re-embeds it while it is). Text reaches the browser as data (JSON), never as markup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from dagflow.core.history import Attempt, TaskGroup
from dagflow.core.states import StateType
from dagflow.server.pages.render import duration
from dagflow.store import Store

S = StateType
DETAIL_LIMIT = 50  # task runs of one name drawn one row each, up to this many
MAX_DETAILED = 400  # rows of single task runs, in all
ROW_HEIGHT = 22

COLORS = {
    S.COMPLETED: "#2e9d5b",
    S.CACHED: "#7cc49a",
    S.RUNNING: "#2f7fd1",
    S.RETRYING: "#e79b2c",
    S.FAILED: "#d43d3d",
    S.TIMED_OUT: "#b8326b",
    S.CRASHED: "#7a1f1f",
    S.UPSTREAM_FAILED: "#c27bd1",
    S.CANCELLING: "#9a9a9a",
    S.CANCELLED: "#9a9a9a",
    S.PENDING: "#c9ced6",
    S.SCHEDULED: "#c9ced6",
    S.PAUSED: "#c9ced6",
}


def group_state(counts: dict[StateType, int]) -> StateType:
    """The state a group of task runs is shown in: any failure, else any activity, else done."""
    for s in (S.FAILED, S.TIMED_OUT, S.CRASHED, S.UPSTREAM_FAILED):
        if counts.get(s):
            return s
    for s in (S.RUNNING, S.RETRYING, S.PENDING, S.CANCELLING):
        if counts.get(s):
            return s
    return max(counts, key=lambda s: counts[s]) if counts else S.PENDING


def counts_text(counts: dict[StateType, int]) -> str:
    return ", ".join(f"{n} {s.value.lower()}" for s, n in sorted(counts.items()) if n)


def split_groups(groups: list[TaskGroup]) -> tuple[list[TaskGroup], list[TaskGroup]]:
    """Which task names get a row per task run (detailed), and which one bar (aggregated)."""
    detailed: list[TaskGroup] = []
    rows = 0
    aggregated: list[TaskGroup] = []
    for g in groups:
        if g.total <= DETAIL_LIMIT and rows + g.total <= MAX_DETAILED:
            detailed.append(g)
            rows += g.total
        else:
            aggregated.append(g)
    return detailed, aggregated


def gantt(store: Store, ref: str) -> tuple[dict[str, Any], bool]:
    summary = store.run_summary(ref)
    run = summary.run
    live = not run.state.is_final
    now = time.time()
    groups = store.task_groups(run.id)
    detailed, aggregated = split_groups(groups)
    attempts = store.attempts(run.id, [g.name for g in detailed])
    bars = _attempt_bars(attempts, now if live else (run.ended or now))
    order = {g.name: i for i, g in enumerate(groups)}
    rows: list[tuple[int, float, str]] = []
    seen: set[str] = set()
    for a in sorted(attempts, key=lambda a: (order.get(a.name, 0), a.started, a.key)):
        if a.key not in seen:
            seen.add(a.key)
            rows.append((order.get(a.name, 0), a.started, a.key))
    group_bars = _group_bars(aggregated, now if live else (run.ended or now))
    for g in aggregated:
        rows.append((order[g.name], g.first_started or now, group_label(g)))
    labels = [label for _, _, label in sorted(rows)]
    return _gantt_figure(labels, bars, group_bars), live


def group_label(g: TaskGroup) -> str:
    return f"{g.name} x{g.total}"


def _attempt_bars(attempts: list[Attempt], end: float) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = {
        k: [] for k in ("row", "start", "end", "color", "state", "attempt", "took")
    }
    for a in attempts:
        stop = a.ended if a.ended is not None else max(end, a.started)
        data["row"].append(a.key)
        data["start"].append(a.started * 1000.0)
        data["end"].append(stop * 1000.0)
        data["color"].append(COLORS.get(a.state, "#888888"))
        data["state"].append(a.state.value)
        data["attempt"].append(a.attempt)
        data["took"].append(duration(stop - a.started))
    return data


def _group_bars(groups: Iterable[TaskGroup], end: float) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = {k: [] for k in ("row", "start", "end", "color", "counts")}
    for g in groups:
        if g.first_started is None:
            continue
        state = group_state(g.counts)
        stop = g.last_ended if g.last_ended and state is not S.RUNNING else end
        data["row"].append(group_label(g))
        data["start"].append(g.first_started * 1000.0)
        data["end"].append(max(stop, g.first_started) * 1000.0)
        data["color"].append(COLORS.get(state, "#888888"))
        data["counts"].append(counts_text(g.counts))
    return data


def _gantt_figure(
    labels: list[str], bars: dict[str, list[Any]], group_bars: dict[str, list[Any]]
) -> dict[str, Any]:
    from bokeh.embed import json_item
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool
    from bokeh.plotting import figure

    height = min(40 + ROW_HEIGHT * max(len(labels), 3), 1200)
    fig = figure(
        y_range=FactorRange(factors=list(reversed(labels)) or ["(no task ran yet)"]),
        x_axis_type="datetime",
        height=height,
        sizing_mode="stretch_width",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        toolbar_location="above",
        name="gantt",
    )
    attempts = fig.hbar(
        y="row",
        left="start",
        right="end",
        height=0.7,
        color="color",
        source=ColumnDataSource(bars, name="attempt-bars"),
        name="attempts",
    )
    groups = fig.hbar(
        y="row",
        left="start",
        right="end",
        height=0.7,
        color="color",
        alpha=0.8,
        source=ColumnDataSource(group_bars, name="group-bars"),
        name="groups",
    )
    fig.add_tools(
        HoverTool(
            renderers=[attempts],
            tooltips=[
                ("task", "@row"),
                ("attempt", "@attempt"),
                ("ended", "@state"),
                ("took", "@took"),
            ],
        ),
        HoverTool(renderers=[groups], tooltips=[("tasks", "@row"), ("states", "@counts")]),
    )
    fig.ygrid.grid_line_color = None
    fig.yaxis.major_label_text_font_size = "11px"
    fig.outline_line_color = None
    return dict(json_item(fig))


def task_graph(store: Store, ref: str) -> tuple[dict[str, Any], bool]:
    summary = store.run_summary(ref)
    run = summary.run
    groups = store.task_groups(run.id)
    edges = [e for e in store.task_edges(run.id) if e[0] != e[1]]
    return _graph_figure(groups, edges), not run.state.is_final


def layers(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the length of the longest path from a node without upstream."""
    ups: dict[str, set[str]] = {n: set() for n in names}
    for a, b in edges:
        if a in ups and b in ups:
            ups[b].add(a)
    layer: dict[str, int] = {}

    def depth(n: str, stack: frozenset[str]) -> int:
        if n in layer:
            return layer[n]
        if n in stack:  # a cycle cannot come from a run's graph; guard anyway
            return 0
        d = max((depth(u, stack | {n}) + 1 for u in ups[n]), default=0)
        layer[n] = d
        return d

    for n in names:
        depth(n, frozenset())
    return layer


def _graph_figure(groups: list[TaskGroup], edges: list[tuple[str, str]]) -> dict[str, Any]:
    from bokeh.embed import json_item
    from bokeh.models import ColumnDataSource, HoverTool, Range1d
    from bokeh.models.annotations import LabelSet
    from bokeh.plotting import figure

    names = [g.name for g in groups]
    layer = layers(names, edges)
    slots: dict[int, int] = {}
    pos: dict[str, tuple[float, float]] = {}
    for name in names:
        col = layer.get(name, 0)
        row = slots.get(col, 0)
        slots[col] = row + 1
        pos[name] = (col * 3.0, -row * 1.6)
    nodes: dict[str, list[Any]] = {k: [] for k in ("x", "y", "name", "color", "counts", "label")}
    for g in groups:
        x, y = pos[g.name]
        nodes["x"].append(x)
        nodes["y"].append(y)
        nodes["name"].append(g.name)
        nodes["color"].append(COLORS.get(group_state(g.counts), "#888888"))
        nodes["counts"].append(counts_text(g.counts))
        failed = sum(n for s, n in g.counts.items() if s.is_failure)
        nodes["label"].append(f"{g.name}  {g.total}" + (f" ({failed} failed)" if failed else ""))
    xs, ys = [], []
    for a, b in edges:
        if a in pos and b in pos:
            xs.append([pos[a][0] + 1.1, pos[b][0] - 1.1])
            ys.append([pos[a][1], pos[b][1]])
    width_layers = max(layer.values(), default=0) + 1
    tall = max(slots.values(), default=1)
    fig = figure(
        height=min(80 + 60 * tall, 800),
        sizing_mode="stretch_width",
        x_range=Range1d(start=-1.6, end=width_layers * 3.0 - 1.4),
        y_range=Range1d(start=-(tall - 1) * 1.6 - 1.0, end=1.0),
        tools="pan,wheel_zoom,reset,save",
        toolbar_location="above",
        name="graph",
    )
    fig.axis.visible = False
    fig.grid.visible = False
    fig.outline_line_color = None
    fig.multi_line(xs, ys, line_color="#8a94a6", line_width=1.5, name="edges")
    source = ColumnDataSource(nodes, name="node-data")
    boxes = fig.rect(
        "x",
        "y",
        width=2.2,
        height=0.9,
        fill_color="color",
        fill_alpha=0.25,
        line_color="color",
        line_width=2,
        source=source,
        name="nodes",
    )
    fig.add_layout(
        LabelSet(
            x="x",
            y="y",
            text="label",
            source=source,
            text_align="center",
            text_baseline="middle",
            text_font_size="11px",
        )
    )
    fig.add_tools(HoverTool(renderers=[boxes], tooltips=[("task", "@name"), ("states", "@counts")]))
    return dict(json_item(fig))
