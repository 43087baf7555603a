"""Triggers: the `events` table, trigger positions, a deployment's triggers and a run's event.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("deployment_id", sa.String(512), nullable=False),
        sa.Column("trigger", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index(
        "ix_events_deployment_trigger_time", "events", ["deployment_id", "trigger", "time"]
    )
    op.create_index("ix_events_run", "events", ["run_id"])
    op.create_table(
        "trigger_positions",
        sa.Column("deployment_id", sa.String(512), primary_key=True),
        sa.Column("trigger", sa.String(255), primary_key=True),
        sa.Column("position", sa.Text, nullable=True),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("last_event_id", sa.String(64), nullable=True),
        sa.Column("last_event_time", sa.Float, nullable=True),
        sa.Column("updated", sa.Float, nullable=False),
    )
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("triggers", sa.Text, nullable=True))
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("event_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("event_id")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("triggers")
    op.drop_table("trigger_positions")
    op.drop_index("ix_events_run", "events")
    op.drop_index("ix_events_deployment_trigger_time", "events")
    op.drop_index("ix_events_time", "events")
    op.drop_table("events")
