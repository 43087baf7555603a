"""The scheduler's tests use real databases, as the store's tests do."""

from tests.store.conftest import db_url, pg_url, sqlite_url, store  # noqa: F401 (fixtures)
