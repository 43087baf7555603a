"""Flows to serve on schedules: a report every minute, a cleanup every night (Paris time).

Serve them from the command line (one deployment, options on the command line):

    dagflow serve examples/scheduled.py:report --cron "* * * * *" --param size=20

from the YAML file beside this one (both deployments):

    dagflow serve examples/dagflow.yaml

or from Python: `python examples/scheduled.py`. Then watch `dagflow runs ls`, trigger a run with
`dagflow deployments run report/every-minute --param size=5 --wait`, and stop with Ctrl-C.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

import dagflow
from dagflow import flow, get_run_logger, task


@task
def measure(size: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(size)]


@task
def summarize(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "mean": sum(values) / max(1, len(values)), "max": max(values)}


@flow
def report(size: int = 10, shards: int = 3) -> dict[str, float]:
    """Measure in a few shards, then summarize: what a periodic report does."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = measure.map([size] * shards, range(shards))
    values = [v for part in parts for v in part.result()]
    summary = summarize(values).result()
    get_run_logger().info("report at %s: %s", now, summary)
    return summary


@task
def sweep(older_than_days: int) -> int:
    get_run_logger().info("would remove files older than %d days", older_than_days)
    return 0


@flow
def cleanup(older_than_days: int = 30) -> int:
    return sweep(older_than_days).result()


if __name__ == "__main__":
    dagflow.serve(
        report.to_deployment("every-minute", cron="* * * * *", parameters={"size": 20}),
        cleanup.to_deployment("nightly", cron="30 2 * * *", timezone="Europe/Paris"),
    )
