"""Opening databases: creation, upgrade, and refusing foreign, corrupted or newer ones untouched."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from dagflow.errors import SettingsError, StoreError
from dagflow.store import database, open_store
from dagflow.store.schema import VERSION_TABLE, metadata
from dagflow.store.settings import load_settings


def test_fresh_database_is_created_at_head_with_every_table(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert store.status.current is None
        tables = set(inspect(store.engine).get_table_names())
        assert {"flows", "flow_runs", "task_runs", "state_history", "logs", VERSION_TABLE} <= tables
        assert database.check_schema(store.engine).current == database.head_revision()
    finally:
        store.close()


def test_migrations_create_exactly_the_declared_schema(db_url: str) -> None:
    store = open_store(db_url)
    try:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            diffs = compare_metadata(ctx, metadata)
        assert diffs == []
    finally:
        store.close()


def test_sqlite_file_is_in_wal_mode(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    store.close()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_database_is_dagflow_db_under_dagflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGFLOW_DATABASE_URL", raising=False)
    assert load_settings().url.database == str(tmp_path / "home" / "dagflow.db")
    assert (tmp_path / "home").is_dir()


def test_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"not a dagflow database .*customers"):
        open_store(f"sqlite:///{path}")
    assert path.read_bytes() == before
    assert not (tmp_path / "other.db-wal").exists()


def test_corrupted_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "dagflow.db"
    path.write_bytes(b"this is not a database\n" * 200)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        open_store(f"sqlite:///{path}")
    assert "cannot open the dagflow database" in str(info.value)
    assert "not a database" in str(info.value)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before


def test_newer_schema_is_refused_and_left_untouched(db_url: str) -> None:
    store = open_store(db_url)
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match=r"revision 9999, newer than this dagflow knows"):
        open_store(db_url)
    engine = database.make_engine(load_settings(db_url).url)
    with engine.connect() as conn:
        assert conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}")) == "9999"
    engine.dispose()


def test_bad_urls_and_settings_are_one_line_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError, match="is not a database URL"):
        load_settings("not a url")
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        load_settings("mysql://localhost/x")
    monkeypatch.setenv("DAGFLOW_HEARTBEAT_SECONDS", "soon")
    with pytest.raises(SettingsError, match="DAGFLOW_HEARTBEAT_SECONDS must be a positive number"):
        load_settings("sqlite://")


def test_unreachable_postgres_is_a_one_line_error() -> None:
    with pytest.raises(StoreError) as info:
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    assert str(info.value).startswith("cannot open the dagflow database postgresql+psycopg://")
    assert "\n" not in str(info.value)


def test_a_damaged_sqlite_file_is_refused_and_left_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 KiB overwritten mid-file: found before any write; one line, exit 2, file as it was."""
    import hashlib
    import os

    from click.testing import CliRunner

    from dagflow.cli import main
    from tests.store.conftest import new_id, run_events

    url = f"sqlite:///{tmp_path / 'dagflow.db'}"
    store = open_store(url)
    writer = store.writer
    for _ in range(20):
        writer.handle(run_events(new_id(), 100))
    assert writer.wait_committed(30)
    store.close()
    with sqlite3.connect(tmp_path / "dagflow.db") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = tmp_path / "dagflow.db"
    size = path.stat().st_size
    assert size > 64 * 1024
    with path.open("r+b") as fh:
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(os.urandom(4096))
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    monkeypatch.setenv("DAGFLOW_DATABASE_URL", url)
    flow_file = tmp_path / "f.py"
    flow_file.write_text(
        "from dagflow import flow, task\n@task\ndef t() -> int:\n    return 1\n"
        "@flow(cluster='local-threads')\ndef f() -> int:\n    return t().result()\n"
    )
    for args in (["run", str(flow_file)], ["runs", "ls"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "is damaged" in lines[0] and "will not write" in lines[0]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_the_revisions_read_from_the_files_are_alembics(db_url: str) -> None:
    """The quick check (no Alembic import) knows the same revisions and head as Alembic, and
    reads the same current revision from a database."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(database.MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert database.head_revision() == script.get_current_head()
    assert database.known_revisions() == {s.revision for s in script.walk_revisions()}
    store = open_store(db_url)
    try:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            assert database.check_schema(store.engine).current == ctx.get_current_revision()
    finally:
        store.close()


def test_reading_an_up_to_date_database_imports_no_alembic(sqlite_url: str) -> None:
    open_store(sqlite_url).close()
    code = (
        "import sys\nfrom dagflow.store import open_store\n"
        f"open_store({sqlite_url!r}).close()\n"
        "print('alembic' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_processes_opening_a_new_database_at_once_upgrade_it_once(db_url: str) -> None:
    """Two `dagflow serve` processes started together on a fresh database both come up."""
    import subprocess
    import sys

    code = f"from dagflow.store import open_store; open_store({db_url!r}).close(); print('ok')"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert [out.strip() for out, _ in outcomes] == ["ok"] * 3, [err[-500:] for _, err in outcomes]
