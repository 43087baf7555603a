"""The CLI's tests read and write real run history databases, as the store's tests do."""

from tests.store.conftest import db_url, pg_url, sqlite_url, store  # noqa: F401 (fixtures)
