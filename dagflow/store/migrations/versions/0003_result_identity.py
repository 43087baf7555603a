"""Task runs record what their persisted result was computed from (its identity: the task's code
and inputs), so resume reuses a result only for the same work, and whether a later flow attempt
ran the same call again (`superseded`); flow runs keep the location of their persisted return
value.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("result_identity", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("superseded", sa.Boolean, nullable=False, server_default=sa.false())
        )
    _mark_superseded()
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("result_location", sa.Text, nullable=True))
        batch.add_column(sa.Column("result_serializer", sa.String(32), nullable=True))


def _mark_superseded() -> None:
    """Runs resumed before this revision: each task call's older rows are superseded."""
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT run_id, task_key FROM task_runs")).all()
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    older: list[dict[str, str]] = []
    for run_id, key in rows:
        name, _, rest = key.rpartition("[")
        slug, _, token = name.rpartition("-")
        attempt = int(token[8:]) if token[8:].isdigit() else 0
        call = (run_id, f"{slug}[{rest}")
        seen = latest.get(call)
        if seen is None or attempt > seen[0]:
            if seen is not None:
                older.append({"r": run_id, "k": seen[1]})
            latest[call] = (attempt, key)
        else:
            older.append({"r": run_id, "k": key})
    if older:
        conn.execute(
            sa.text("UPDATE task_runs SET superseded = :t WHERE run_id = :r AND task_key = :k"),
            [{**row, "t": True} for row in older],
        )


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("result_serializer")
        batch.drop_column("result_location")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("superseded")
        batch.drop_column("result_identity")
