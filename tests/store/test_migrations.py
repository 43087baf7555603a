"""A database written by an older dagflow is upgraded in place, keeping what it recorded."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from dagflow.store import open_store
from dagflow.store.database import alembic_config, head_revision, make_engine
from dagflow.store.settings import load_settings


def test_a_0001_database_gains_the_entrypoint_column_and_keeps_its_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(load_settings(url).url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.execute(text("INSERT INTO flows (name, version, created) VALUES ('etl', NULL, 1)"))
        conn.execute(
            text(
                "INSERT INTO flow_runs (id, flow_name, parameters, state, attempts, created) "
                "VALUES ('run-1', 'etl', '{}', 'COMPLETED', 1, 1)"
            )
        )
    assert "entrypoint" not in {c["name"] for c in inspect(engine).get_columns("flow_runs")}
    engine.dispose()

    store = open_store(url)
    try:
        assert store.status.current == "0001"
        columns = {c["name"] for c in inspect(store.engine).get_columns("flow_runs")}
        assert "entrypoint" in columns
        run = store.get_flow_run("run-1")
        assert run.flow_name == "etl"
        assert run.entrypoint is None
        again = open_store(url)
        assert again.status.current == head_revision()
        again.close()
    finally:
        store.close()


def test_the_revisions_read_from_the_files_are_alembics() -> None:
    """Opening a current database reads revisions as text (no Alembic import): they must agree."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from dagflow.store.database import MIGRATIONS, known_revisions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert head_revision() == script.get_current_head()
    assert known_revisions() == {rev.revision for rev in script.walk_revisions()}
