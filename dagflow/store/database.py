"""Opening the run history database: engines, SQLite pragmas, and the schema version check.

Opening a database never harms one that is not ours. Before anything is written, the database is
inspected: one with tables but no `dagflow_alembic_version` is not a dagflow database, one whose
revision this code does not know was written by a newer dagflow, a file SQLite cannot read is
corrupted or foreign; each is refused with a one-line `StoreError` and left as it was. Only then
is an SQLite file switched to WAL mode and an empty or older dagflow database upgraded to the
code's head revision (Alembic, configured in code: no alembic.ini is looked up), under a lock
(PostgreSQL: an advisory lock; SQLite: its write lock) so that processes opening a new database
at the same moment upgrade it once.

Alembic is imported only to upgrade: the check reads the version table with one query and learns
the known revisions from the migration files' `revision` / `down_revision` lines (a test holds
this to what Alembic itself reads), so a command that only reads the history starts quickly.

Every SQLite connection gets a busy timeout and foreign keys; PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError

from dagflow.errors import StoreError
from dagflow.store.schema import VERSION_TABLE
from dagflow.store.settings import display_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
UPGRADE_LOCK = 0x646167666C6F77  # pg_advisory_xact_lock key held while upgrading ("dagflow")


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database stands against the code's migrations."""

    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def make_engine(
    url: URL,
    application_name: str = "dagflow",
    pool_size: int = 5,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
) -> Engine:
    """An engine for `url` with dagflow's connection settings (nothing is connected yet).

    `busy_timeout_ms` is how long an SQLite statement waits for another writer's lock before it
    fails with "database is locked".
    """
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"application_name": application_name, "connect_timeout": 10}
        kwargs["pool_pre_ping"] = True
        kwargs["pool_size"] = pool_size
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        hint = " (install dagflow[postgres])" if url.get_backend_name() == "postgresql" else ""
        raise StoreError(f"no driver for {display_url(url)}: {exc}{hint}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_timeout_ms))
    return engine


def _sqlite_pragmas(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # Connection-level settings only: none of these writes to the file.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def insert_for(conn: Connection) -> Any:
    """The dialect's INSERT (it has `on_conflict_do_*`); imported here, when a write needs it, so
    a command that only reads never loads both dialects."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def upsert_named(
    conn: Connection, table: Table, key: str, name: str, values: dict[str, Any], now: float
) -> None:
    """Make row `name` of `table` (unique column `key`) hold `values`: inserted with both
    times, or its values and `updated` replaced (variables, secrets and limits are such rows)."""
    stmt = insert_for(conn)(table).values({key: name, **values, "created": now, "updated": now})
    conn.execute(
        stmt.on_conflict_do_update(index_elements=[table.c[key]], set_={**values, "updated": now})
    )


def alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _revisions() -> dict[str, str | None]:
    """Each migration's revision and the one it revises, read from the files (not run)."""
    found: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        values: dict[str, Any] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    values[target.id] = ast.literal_eval(node.value)
        if isinstance(values.get("revision"), str):
            found[values["revision"]] = values.get("down_revision")
    return found


def head_revision() -> str:
    """The revision no other revises: the schema this code writes."""
    revisions = _revisions()
    heads = set(revisions) - {down for down in revisions.values() if down}
    assert len(heads) == 1, f"migrations must have one head, found {sorted(heads)}"
    return heads.pop()


def known_revisions() -> set[str]:
    return set(_revisions())


def check_schema(engine: Engine) -> SchemaStatus:
    """Inspect without writing; raise `StoreError` if the database is not one we may touch."""
    where = display_url(engine.url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            current = None
            if VERSION_TABLE in tables:
                current = conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            if tables and engine.dialect.name == "sqlite":
                _check_intact(conn, where)
            conn.rollback()
    except DBAPIError as exc:
        reason = driver_reason(exc)
        if "malformed" in reason:
            raise StoreError(_damaged(where, reason)) from None
        raise StoreError(f"cannot open the dagflow database {where}: {reason}") from None
    if VERSION_TABLE not in tables and tables:
        sample = ", ".join(sorted(tables)[:3])
        raise StoreError(
            f"{where} is not a dagflow database (it has tables {sample} but no {VERSION_TABLE});"
            " refusing to touch it"
        )
    if current is not None and current not in known_revisions():
        raise StoreError(
            f"{where} has schema revision {current}, newer than this dagflow knows"
            f" (head {head_revision()}); upgrade dagflow to use it"
        )
    return SchemaStatus(current, head_revision())


QUICK_CHECK_MAX_BYTES = 1 << 30  # above this, damage is found on the first failing read instead


def _check_intact(conn: Connection, where: str) -> None:
    """Refuse a damaged SQLite file before anything writes to it (`PRAGMA quick_check`).

    Damage in a page the schema check does not read (4 KiB overwritten mid-file) would
    otherwise go unnoticed until a later write made it worse. The check reads every page: about
    a second per gigabyte here, so larger files are left to fail on their first damaged read.
    """
    path = conn.engine.url.database
    if not path or path == ":memory:":
        return
    try:
        size = Path(path).stat().st_size
    except OSError:
        return
    if size > QUICK_CHECK_MAX_BYTES:
        return
    found = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    if found != ["ok"]:
        raise StoreError(_damaged(where, found[0]))


def _damaged(where: str, reason: str) -> str:
    return (
        f"{where} is damaged (SQLite: {reason}); dagflow will not write to it: restore it from a "
        "backup, or move it away and dagflow starts a new one"
    )


def upgrade(engine: Engine) -> SchemaStatus:
    """Check, then bring the database to the head revision; returns the status before."""
    status = check_schema(engine)
    if engine.dialect.name == "sqlite":
        _enable_wal(engine)
    if not status.up_to_date:
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        try:
            with engine.begin() as conn:
                # Several processes may open a new database at once (two `dagflow serve`):
                # one upgrades, under a lock; the others then find it done.
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                current = MigrationContext.configure(
                    conn, opts={"version_table": VERSION_TABLE}
                ).get_current_revision()
                if current != status.head:
                    command.upgrade(alembic_config(conn), "head")
        except DBAPIError as exc:
            where = display_url(engine.url)
            raise StoreError(
                f"upgrading the dagflow database {where} failed: {driver_reason(exc)}"
            ) from None
    return status


def _enable_wal(engine: Engine) -> None:
    if engine.url.database in (None, "", ":memory:"):
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode = WAL")
            conn.commit()
    except DBAPIError as exc:
        where = display_url(engine.url)
        raise StoreError(
            f"cannot open the dagflow database {where}: {driver_reason(exc)}"
        ) from None


def driver_reason(exc: SQLAlchemyError) -> str:
    """The driver's own message, first line only."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__
