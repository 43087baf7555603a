"""Task runs record what their persisted result was computed from (its identity: the task's code
and inputs), so resume reuses a result only for the same work; flow runs keep the location of
their persisted return value.

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
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("result_location", sa.Text, nullable=True))
        batch.add_column(sa.Column("result_serializer", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("result_serializer")
        batch.drop_column("result_location")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("result_identity")
