"""A small ETL flow: CSV exports per region -> clean rows -> a SQLite table. No network needed.

Run it:

    dagflow run examples/etl.py:etl                        # on the default `local` cluster
    dagflow run examples/etl.py:etl --param rows=5000      # parameters are validated, coerced
    dagflow run examples/etl.py:etl --cluster local-threads
    python examples/etl.py                                 # plain Python: prints the run id

What it shows: `.map` (one task per region file), `unmapped`, `wait_for=`, a branch on
`.result()`, a task whose first attempt fails and whose retry succeeds, and `get_run_logger()`.
Files go to `$DAGFLOW_HOME/examples/etl` (default `~/.dagflow/examples/etl`) or to `data_dir`.
The tasks read and write that folder, so every worker must see it: true on one machine.
"""

from __future__ import annotations

import csv
import os
import random
import sqlite3
from pathlib import Path

from dagflow import flow, get_run_logger, task, unmapped

DEFAULT_REGIONS = ["north", "south", "east", "west"]
FIELDS = ["order_id", "region", "currency", "amount"]


@task
def export_orders(rows: int, regions: list[str], folder: str) -> list[str]:
    """Stand-in for a source system: write one CSV per region, plus today's exchange rates."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)  # same data every run
    files = [out / f"orders_{region}.csv" for region in regions]
    writers = [csv.writer(f.open("w", newline="")) for f in files]
    for w in writers:
        w.writerow(FIELDS)
    for i in range(rows):
        amount = "" if i % 97 == 0 else f"{rng.uniform(5, 500):.2f}"  # every 97th row is corrupt
        writers[i % len(regions)].writerow([i, regions[i % len(regions)], "EUR", amount])
    (out / "fx_rates.csv").write_text("currency,usd\nEUR,1.10\n")
    # The exporter is "still writing" the rates when we first look: see read_rates.
    (out / "fx_rates.csv.lock").touch()
    get_run_logger().info("exported %d orders into %d files", rows, len(files))
    return [str(f) for f in files]


@task(retries=2, retry_delay=0.5, retry_on=(OSError,))
def read_rates(folder: str) -> dict[str, float]:
    """A flaky read: the first attempt finds a lock file and fails; the retry succeeds."""
    lock = Path(folder) / "fx_rates.csv.lock"
    if lock.exists():
        lock.unlink()  # by the time we retry, the "exporter" has finished
        get_run_logger().warning("rates file is locked; the task will retry")
        raise OSError(f"{lock.name} exists: the rates file is still being written")
    with (Path(folder) / "fx_rates.csv").open() as f:
        return {row["currency"]: float(row["usd"]) for row in csv.DictReader(f)}


@task
def extract(path: str) -> list[dict[str, str]]:
    """Read one region's CSV file."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    get_run_logger().info("read %d rows from %s", len(rows), Path(path).name)
    return rows


@task
def transform(rows: list[dict[str, str]], rates: dict[str, float]) -> dict[str, list]:
    """Parse amounts and convert them to USD; set aside rows that cannot be parsed."""
    good, bad = [], []
    for row in rows:
        try:
            usd = round(float(row["amount"]) * rates[row["currency"]], 2)
        except (ValueError, KeyError):
            bad.append(row)
            continue
        good.append((int(row["order_id"]), row["region"], usd))
    return {"good": good, "bad": bad}


@task
def validate(batches: list[dict[str, list]], max_rejected: float) -> bool:
    """True when few enough rows were rejected to trust the batch."""
    good = sum(len(b["good"]) for b in batches)
    bad = sum(len(b["bad"]) for b in batches)
    fraction = bad / max(good + bad, 1)
    get_run_logger().info("%d good rows, %d rejected (%.1f%%)", good, bad, 100 * fraction)
    return fraction <= max_rejected


@task(timeout=120, tags=["db"])
def load(batches: list[dict[str, list]], db_path: str) -> int:
    """Upsert the good rows into the `orders` table; safe to run again."""
    rows = [r for b in batches for r in b["good"]]
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS orders "
            "(order_id INTEGER PRIMARY KEY, region TEXT NOT NULL, amount_usd REAL NOT NULL)"
        )
        db.executemany("INSERT OR REPLACE INTO orders VALUES (?, ?, ?)", rows)
    db.close()
    get_run_logger().info("loaded %d rows into %s", len(rows), db_path)
    return len(rows)


@task
def quarantine(batches: list[dict[str, list]], folder: str) -> int:
    """Keep a batch that failed validation aside for a human to look at; load nothing."""
    path = Path(folder) / "quarantine.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["order_id", "region", "amount_usd"])
        w.writerows(r for b in batches for r in b["good"])
    get_run_logger().warning("validation failed: batch quarantined in %s", path)
    return 0


@flow(name="etl", description="Regional order exports -> USD -> SQLite.")
def etl(
    rows: int = 1000,
    regions: list[str] = DEFAULT_REGIONS,
    max_rejected: float = 0.05,
    data_dir: str | None = None,
    db_path: str | None = None,
) -> int:
    """Export, extract, transform, validate and load orders; returns the number of rows loaded."""
    logger = get_run_logger()  # records are kept with the run, whichever worker emits them
    home = Path(os.environ.get("DAGFLOW_HOME", Path.home() / ".dagflow"))
    folder = data_dir or str(home / "examples" / "etl")
    db = db_path or str(Path(folder) / "orders.db")

    files = export_orders(rows, regions, folder)  # a TaskFuture: nothing has run yet
    rates = read_rates(folder, wait_for=[files])  # order-only dependency on the export
    raw = extract.map(files)  # mapping over a future waits for it, then fans out per file
    clean = transform.map(raw, unmapped(rates))  # the same rates go to every partition
    checked = validate(clean, max_rejected)

    if checked.result():  # runs everything above, then branches on the value
        loaded = load(clean, db)
    else:
        logger.warning("more than %.0f%% of rows rejected", 100 * max_rejected)
        loaded = quarantine(clean, folder)
    count = loaded.result()
    logger.info("done: %d rows loaded", count)
    return count


if __name__ == "__main__":  # worker processes import this file again: run the flow only here
    run = etl.run()
    print(f"run {run.id} {run.state}")
    print(f"rows loaded: {run.result()}")
