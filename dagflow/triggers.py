"""Triggers: the events that start a deployment's runs, for `flow.to_deployment(triggers=[...])`.

```python
from dagflow import flow, triggers

@flow
def ingest(path: str) -> int: ...

ingest.serve("inbox", triggers=[triggers.files("inbox/*.csv")],
             parameters={"path": "{{ event.path }}"})
```

Each constructor checks its arguments now (a bad glob, URL or state is one line naming the
trigger); the deployment's name is added when the deployment is built. `dagflow serve` watches
the triggers of the deployments it serves; each event starts its run once, whatever restarts
or second serving processes happen (docs/triggers.md).
"""

from __future__ import annotations

from collections.abc import Iterable

from dagflow.core.triggers import (
    FilesTrigger,
    FlowRunTrigger,
    RowsTrigger,
    Trigger,
    WebhookTrigger,
    split_glob,
)

__all__ = [
    "FilesTrigger",
    "FlowRunTrigger",
    "RowsTrigger",
    "Trigger",
    "WebhookTrigger",
    "files",
    "flow_run",
    "rows",
    "webhook",
]


def files(
    path: str,
    pattern: str | None = None,
    *,
    settle: float = 0.5,
    poll: float = 2.0,
    window: float | None = None,
    name: str | None = None,
) -> FilesTrigger:
    """Files arriving: `files("inbox/*.csv")`, `files("s3://bucket/in", "**/*.json")`.

    A local directory is watched with OS file events (polled every `poll` seconds as well); a
    URL is polled every `poll` seconds. A file fires once its size and mtime have not changed
    for `settle` seconds; each (path, size, mtime) fires once. `window=` gathers the files
    settled within that many seconds into one run (`{{ event.paths }}`)."""
    if pattern is None:
        path, pattern = split_glob(path) if isinstance(path, str) else (path, "*")
    return FilesTrigger(path, pattern, settle, poll, window, name or "")


def rows(
    url: str,
    query: str,
    *,
    watermark: str | None = None,
    interval: float = 5.0,
    batch: bool = False,
    start: int | float | str = 0,
    name: str | None = None,
    notify: str | None = None,
) -> RowsTrigger:
    """New rows: `rows("sqlite:///shop.db", "SELECT id, total FROM orders WHERE id > :watermark
    ORDER BY id")`, polled every `interval` seconds. `watermark` is the column whose last value
    is kept (default: the first column), starting from `start`. One run per row
    (`{{ event.row.total }}`), or with `batch=True` one per poll (`{{ event.rows }}`).
    `notify="orders"` (PostgreSQL): a `NOTIFY orders` polls at once (LISTEN, the push path)."""
    return RowsTrigger(url, query, watermark, interval, batch, start, name or "", notify)


def flow_run(
    upstream: str, states: str | Iterable[str] = ("COMPLETED",), *, name: str | None = None
) -> FlowRunTrigger:
    """A run of `upstream` (a flow name, or a deployment `flow/name`) ending in one of
    `states` (COMPLETED by default; FAILED, CRASHED, CANCELLED, TIMED_OUT too):
    `{{ event.run_id }}`, `{{ event.parameters }}`, `{{ event.state }}`."""
    given = (states,) if isinstance(states, str) else tuple(states)
    return FlowRunTrigger(upstream, given, name or "")


def webhook(name: str, *, secret_env: str | None = None) -> WebhookTrigger:
    """`POST /api/v1/webhooks/{name}` on the dagflow server, signed with HMAC-SHA256 of the
    body by the secret in environment variable `secret_env` (default
    `DAGFLOW_WEBHOOK_SECRET_<NAME>`) of the server's process: `{{ event.body }}`."""
    return WebhookTrigger(name, secret_env)
