"""The initial run history: flows, flow runs, task runs, state history, logs.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("version", sa.String(255), nullable=True),
        sa.Column("created", sa.Float, nullable=False),
    )
    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("flow_name", sa.String(255), sa.ForeignKey("flows.name"), nullable=False),
        sa.Column("flow_version", sa.String(255), nullable=True),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("started", sa.Float, nullable=True),
        sa.Column("ended", sa.Float, nullable=True),
        sa.Column("heartbeat", sa.Float, nullable=True),
        sa.Column("parent_run_id", sa.String(64), nullable=True),
        sa.Column("parent_task_key", sa.String(255), nullable=True),
        sa.Column("cluster_address", sa.String(512), nullable=True),
        sa.Column("dashboard_link", sa.String(1024), nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_flow_runs_flow_created", "flow_runs", ["flow_name", "created"])
    op.create_index("ix_flow_runs_state_created", "flow_runs", ["state", "created"])
    op.create_index("ix_flow_runs_state_heartbeat", "flow_runs", ["state", "heartbeat"])
    op.create_index("ix_flow_runs_created", "flow_runs", ["created"])
    op.create_index("ix_flow_runs_parent", "flow_runs", ["parent_run_id"])
    op.create_table(
        "task_runs",
        sa.Column("run_id", sa.String(64), sa.ForeignKey("flow_runs.id"), primary_key=True),
        sa.Column("task_key", sa.String(255), primary_key=True),
        sa.Column("task_name", sa.String(255), nullable=False),
        sa.Column("map_index", sa.Integer, nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("started", sa.Float, nullable=True),
        sa.Column("ended", sa.Float, nullable=True),
        sa.Column("worker", sa.String(512), nullable=True),
        sa.Column("error_type", sa.String(255), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("traceback", sa.Text, nullable=True),
        sa.Column("result_location", sa.Text, nullable=True),
        sa.Column("cache_key", sa.String(255), nullable=True),
    )
    op.create_index("ix_task_runs_run_name", "task_runs", ["run_id", "task_name"])
    op.create_index("ix_task_runs_cache_key", "task_runs", ["cache_key", "ended"])
    op.create_table(
        "state_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task_key", sa.String(255), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.UniqueConstraint(
            "run_id", "task_key", "attempt", "to_state", name="uq_state_history_transition"
        ),
    )
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("task_key", sa.String(255), nullable=True),
        sa.Column("task_name", sa.String(255), nullable=True),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("worker", sa.String(512), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("ident", sa.String(32), nullable=False),
        sa.UniqueConstraint("run_id", "ident", name="uq_logs_ident"),
    )
    op.create_index("ix_logs_run_time", "logs", ["run_id", "time"])


def downgrade() -> None:
    op.drop_table("logs")
    op.drop_table("state_history")
    op.drop_table("task_runs")
    op.drop_table("flow_runs")
    op.drop_table("flows")
