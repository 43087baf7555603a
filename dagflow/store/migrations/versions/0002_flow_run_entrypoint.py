"""Flow runs remember where their flow was loaded from (`file.py:function`), for `dagflow resume`;
task runs keep their persisted result's size and serializer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as batch:
        batch.add_column(sa.Column("entrypoint", sa.String(1024), nullable=True))
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("result_size", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("result_serializer", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("result_serializer")
        batch.drop_column("result_size")
    with op.batch_alter_table("flow_runs") as batch:
        batch.drop_column("entrypoint")
