"""A run per CSV file dropped into ./inbox, with the file's path as its parameter.

    python examples/file_trigger.py          # or: dagflow serve examples/file_trigger.py:ingest \
                                             #         --on-file "inbox/*.csv"
    echo "a,b" > inbox/orders.csv            # in another terminal: a run starts within a second
    dagflow runs ls; dagflow events ls       # the run, and the event that started it

Each file fires once its size has been stable for half a second (a file still being written
waits), once per (path, size, mtime), across restarts: files dropped while nothing was serving
are caught up at start.
"""

from __future__ import annotations

from pathlib import Path

from dagflow import flow, get_run_logger, task, triggers


@task
def count_rows(path: str) -> int:
    with open(path) as f:
        return sum(1 for line in f if line.strip())


@flow
def ingest(path: str) -> int:
    rows = count_rows(path).result()
    get_run_logger().info("%s: %d rows", Path(path).name, rows)
    return rows


if __name__ == "__main__":
    Path("inbox").mkdir(exist_ok=True)
    ingest.serve(
        "inbox",
        triggers=[triggers.files("inbox/*.csv")],
        parameters={"path": "{{ event.path }}"},
    )
