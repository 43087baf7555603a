"""Deployments and their schedules; flow runs learn their deployment, tick, origin, idempotency
key, claim and cancel request.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("flow_name", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("entrypoint", sa.String(1024), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("cluster", sa.String(512), nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("paused", sa.Boolean, nullable=False),
        sa.Column("max_active_runs", sa.Integer, nullable=False),
        sa.Column("catchup", sa.Boolean, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.UniqueConstraint("flow_name", "name", name="uq_deployments_flow_name"),
    )
    op.create_table(
        "deployment_schedules",
        sa.Column(
            "deployment_id",
            sa.String(512),
            sa.ForeignKey("deployments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cron", sa.String(255), nullable=True),
        sa.Column("interval_seconds", sa.Float, nullable=True),
        sa.Column("anchor", sa.Float, nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("deployment_id", sa.String(512), nullable=True))
        batch.add_column(sa.Column("scheduled_time", sa.Float, nullable=True))
        batch.add_column(sa.Column("origin", sa.String(32), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(600), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("cancel_requested", sa.Float, nullable=True))
    op.create_index("ux_flow_runs_idempotency_key", "flow_runs", ["idempotency_key"], unique=True)
    op.create_index("ix_flow_runs_state_scheduled", "flow_runs", ["state", "scheduled_time"])
    op.create_index("ix_flow_runs_deployment_state", "flow_runs", ["deployment_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_deployment_state", "flow_runs")
    op.drop_index("ix_flow_runs_state_scheduled", "flow_runs")
    op.drop_index("ux_flow_runs_idempotency_key", "flow_runs")
    with op.batch_alter_table("flow_runs") as batch:
        for column in (
            "cancel_requested",
            "claimed_at",
            "claimed_by",
            "idempotency_key",
            "origin",
            "scheduled_time",
            "deployment_id",
        ):
            batch.drop_column(column)
    op.drop_table("deployment_schedules")
    op.drop_table("deployments")
