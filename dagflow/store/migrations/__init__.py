"""Alembic migrations of the run history database (run by `dagflow.store.database`)."""
