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
