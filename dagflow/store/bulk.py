"""Bulk statements of the writer: many rows per statement, with insert-or-ignore and upsert.

Rows come as tuples in the column order given (`batch.py` builds them). SQLite runs one
`executemany` of a statement compiled once (no per-row work in SQLAlchemy). PostgreSQL runs ONE
`INSERT ... SELECT FROM json_populate_recordset(NULL::table, rows)` per table and batch: a round
trip per batch, not per row, and the rows travel as one JSON text (encoded in C, parsed by the
server). Conflict clauses are SQLAlchemy's (`on_conflict_do_nothing` / `_do_update`), so
both databases get the same semantics from the same declaration.

No value overflows its column: a string longer than its `String(n)` column is cut to fit, with a
marker saying how much was cut (`core/text.bounded`), so a long name or message never costs the
batch it is in (PostgreSQL would refuse it; SQLite would store it whole).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, String, Table, bindparam, cast, func, literal_column, select
from sqlalchemy.engine import Connection, Dialect

from dagflow.core.text import bounded

# Adds the conflict clause to an INSERT of either dialect (both have the same methods).
Conflict = Callable[[Any], Any]


class BulkInsert:
    """`execute(conn, rows)` inserts rows (tuples in `columns` order) with a conflict clause."""

    def __init__(
        self, dialect: Dialect, table: Table, columns: Sequence[str], conflict: Conflict
    ) -> None:
        # the dialects are imported by the writer that needs them, not by every reader
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        self.columns = tuple(columns)
        self._limits = [
            (i, length) for i, name in enumerate(self.columns) if (length := _length(table, name))
        ]
        self._pg = dialect.name == "postgresql"
        if self._pg:
            rows = func.json_populate_recordset(
                literal_column(f"NULL::{table.name}"), cast(bindparam("rows"), JSON)
            ).table_valued(*self.columns)
            source = select(*[rows.c[c] for c in self.columns])
            self._stmt = conflict(pg_insert(table).from_select(list(self.columns), source))
        else:
            stmt = conflict(sqlite_insert(table).values({c: bindparam(c) for c in self.columns}))
            compiled = stmt.compile(dialect=dialect)
            self._sql = str(compiled)
            order = compiled.positiontup or []
            self._order = [self.columns.index(name) for name in order]
            self._identity = self._order == list(range(len(self.columns)))

    def execute(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        rows = self._fitted(rows)
        if self._pg:
            cols = self.columns
            text = json.dumps([dict(zip(cols, row, strict=True)) for row in rows])
            conn.execute(self._stmt, {"rows": text})
            return
        if not self._identity:
            rows = [tuple(row[i] for i in self._order) for row in rows]
        conn.exec_driver_sql(self._sql, list(rows))

    def _fitted(self, rows: Sequence[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
        """`rows` with every string cut to its column's length (rows copied only if needed)."""
        limits = self._limits
        out: list[tuple[Any, ...]] | None = None
        for n, row in enumerate(rows):
            for i, length in limits:
                value = row[i]
                if type(value) is str and len(value) > length:
                    if out is None:
                        out = list(rows)
                    fixed = list(out[n])
                    fixed[i] = bounded(value, length)
                    out[n] = row = tuple(fixed)
        return rows if out is None else out


def _length(table: Table, column: str) -> int | None:
    kind = table.c[column].type
    return kind.length if isinstance(kind, String) else None
