"""Configuration tests use real databases (as the store's tests) and a real server (as the
server's tests)."""

from tests.server.conftest import live, server_store  # noqa: F401 (fixtures)
from tests.store.conftest import db_url, pg_url, sqlite_url, store  # noqa: F401 (fixtures)
