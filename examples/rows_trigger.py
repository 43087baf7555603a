"""A run per new order: rows of a table past a watermark start runs, each row once.

    python examples/rows_trigger.py                     # creates shop.db, serves
    sqlite3 shop.db "INSERT INTO orders (total) VALUES (12.5)"   # a run within ~2 s

The watermark (the last `id` that started a run) is stored with the runs it created, so a
restart resumes after the last row handled; `batch=True` would start one run per poll with
`{{ event.rows }}` instead.
"""

from __future__ import annotations

import sqlite3

from dagflow import flow, get_run_logger, triggers


@flow
def bill(order: int, total: float) -> float:
    get_run_logger().info("billing order %d: %.2f", order, total)
    return total


if __name__ == "__main__":
    with sqlite3.connect("shop.db") as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL)")
    bill.serve(
        "orders",
        triggers=[
            triggers.rows(
                "sqlite:///shop.db",
                "SELECT id, total FROM orders WHERE id > :watermark ORDER BY id",
                interval=2.0,
            )
        ],
        parameters={"order": "{{ event.row.id }}", "total": "{{ event.row.total }}"},
    )
