"""Alembic environment for dagflow's store: runs on the connection handed in by `database.py`.

No alembic.ini is read: `database.alembic_config` builds the Config in code and puts an open
connection in `config.attributes["connection"]`. The version table is `dagflow_alembic_version`,
which is also what marks a database as dagflow's.
"""

from __future__ import annotations

from alembic import context

from dagflow.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
