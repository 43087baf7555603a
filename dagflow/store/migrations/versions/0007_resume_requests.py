"""Flow runs learn `resume_requested`: a FAILED or CRASHED run queued for a serving process.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("resume_requested", sa.Float, nullable=True))
    op.create_index("ix_flow_runs_resume_requested", "flow_runs", ["resume_requested"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_resume_requested", "flow_runs")
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("resume_requested")
