"""Configuration tests use real databases (as the store's tests) and a real server (as the
server's tests; the approval page's browser test lives with them, in tests/server, so that one
session-wide Chromium serves every browser test)."""

from tests.server.conftest import live, server_store  # noqa: F401 (fixtures)
from tests.store.conftest import db_url, pg_url, sqlite_url, store  # noqa: F401 (fixtures)
