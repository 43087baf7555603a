"""The CLI starts quickly: `--help` lists every command without importing any of them, and a
command that only reads the history imports neither Dask's scheduler library nor Alembic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from dagflow.cli import COMMANDS, main


def test_help_lists_each_command_with_its_own_short_help() -> None:
    ctx = click.Context(main)
    assert main.list_commands(ctx) == list(COMMANDS)
    for name, (_, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=1000) == short, name
    assert main.get_command(ctx, "nosuch") is None


def loaded_by(args: list[str], home: Path) -> list[str]:
    """The heavy modules loaded by running `dagflow ARGS` in a fresh interpreter."""
    code = (
        "import json, sys\nfrom dagflow.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "heavy = ('distributed', 'dask', 'alembic', 'sqlalchemy', 'tornado', 'bokeh')\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env["DAGFLOW_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    found: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def test_help_imports_no_dask_and_no_database_library(tmp_path: Path) -> None:
    assert loaded_by(["--help"], tmp_path) == []


def test_runs_ls_imports_neither_distributed_nor_alembic(tmp_path: Path) -> None:
    loaded_by(["db", "upgrade"], tmp_path)  # the database exists and is up to date
    found = loaded_by(["runs", "ls"], tmp_path)
    assert "sqlalchemy" in found
    assert "distributed" not in found and "alembic" not in found


def test_runs_ls_of_recorded_runs_imports_no_dask(tmp_path: Path) -> None:
    from dagflow.store import StoreWriter, open_store
    from tests.store.conftest import new_id, run_events

    store = open_store(f"sqlite:///{tmp_path / 'dagflow.db'}")
    writer = StoreWriter(store.url)
    writer.handle(run_events(new_id(), 3))
    writer.close(30)
    store.close()
    found = loaded_by(["runs", "ls"], tmp_path)  # shows a duration for the run
    assert "dask" not in found and "distributed" not in found, found


def test_durations_read_as_dasks_own() -> None:
    from dask.utils import format_time

    from dagflow.cli.output import duration

    assert duration(None) == "-"
    for seconds in (0, 1e-7, 0.00012345, 0.001, 0.001234, 0.999, 1, 59.5, 123.456, 600, 601,
                    1234.567, 7200, 7201, 12345.67, 172800, 172801, 1234567.89):  # fmt: skip
        assert duration(seconds) == format_time(seconds), seconds
