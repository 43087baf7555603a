"""Configuration tests use real databases (as the store's tests) and a real server with
headless Chromium (as the server's tests)."""

from tests.server.conftest import browser, chromium, live, page, server_store  # noqa: F401
from tests.store.conftest import db_url, pg_url, sqlite_url, store  # noqa: F401 (fixtures)
