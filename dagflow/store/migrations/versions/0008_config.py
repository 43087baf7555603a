"""Configuration: variables (named JSON values), secrets (Fernet-encrypted values) and
concurrency limits by tag; pauses for approval.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "variables",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "concurrency_limits",
        sa.Column("tag", sa.String(255), primary_key=True),
        sa.Column("slots", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
    op.create_table(
        "run_pauses",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("input_schema", sa.Text, nullable=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("deadline", sa.Float, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted", sa.Text, nullable=True),
        sa.Column("answered_by", sa.String(255), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("decided", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("run_pauses")
    op.drop_table("concurrency_limits")
    op.drop_table("secrets")
    op.drop_table("variables")
