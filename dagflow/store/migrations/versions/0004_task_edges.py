"""Runs keep the dependencies between their task names (`task_edges`), for the task graph page.

Revision ID: 0004
Revises: 0002 (to be re-chained onto 0003 when the deployments migration lands first)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_edges",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("upstream", sa.String(255), primary_key=True),
        sa.Column("downstream", sa.String(255), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("task_edges")
