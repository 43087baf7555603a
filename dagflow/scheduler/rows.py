"""`RowsWatcher`: new rows of a SQL query start runs, each row (or each batch) once.

Every `interval` seconds it runs the trigger's query with `:watermark` bound to its position
(the `watermark` column's value in the last row handled; at first `start`), reads at most
`PAGE` rows (a burst of 100,000 rows goes through in pages, in bounded memory), and fires them:
one event per row, whose identity is the row's watermark value, and one run per row, or with
`batch=True` one run per page. The position moves in the same transaction as the runs are
created (`Store.fire(position=...)`), so after a restart the trigger resumes exactly after the
last row that started a run. A full page is followed by the next one at once.

With `notify` (PostgreSQL), a thread of its own LISTENs on that channel and a NOTIFY makes the
next poll happen at once (polling goes on: a notification lost while reconnecting delays a row
by one interval at most).

The connection is made once and kept; a dropped connection or an unreachable database is one
line, retried with backoff (`Watcher`), keeping the position; a bad query is one line too.
Row values are passed to templates as JSON-ready values (`{{ event.row.total }}`); a row's
columns come from the query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event, event_id
from dagflow.core.triggers import RowsTrigger
from dagflow.errors import DeploymentError
from dagflow.scheduler.watchers import Watcher

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from dagflow.store import Store

PAGE = 1000
log = logging.getLogger("dagflow.scheduler")


class RowsWatcher(Watcher):
    """Watches one rows trigger; see the module docstring."""

    trigger: RowsTrigger

    def __init__(
        self,
        store: Store,
        deployment: str,
        trigger: RowsTrigger,
        current: Callable[[], Deployment | None],
        wake: Callable[[], None],
    ) -> None:
        super().__init__(store, deployment, trigger, current, wake)
        self.position: Any = None
        self.loaded = False
        self._engine: Engine | None = None

    def start(self) -> None:
        if self.trigger.notify:
            threading.Thread(
                target=self._listen, name=f"listen {self.trigger.name}", daemon=True
            ).start()
        super().start()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _listen(self) -> None:
        """LISTEN on the trigger's channel; each notification pokes the watcher."""
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.trigger.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        failures = 0
        while not self.stopped:
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f'LISTEN "{self.trigger.notify}"')
                    failures = 0
                    while not self.stopped:
                        for _ in conn.notifies(timeout=0.5):
                            self.poke()
            except Exception as exc:
                failures += 1
                if failures in (1, 2) or failures % 20 == 0:
                    log.warning("%s: LISTEN %s failed (%s); polling meanwhile", self.label,
                                self.trigger.notify, " ".join(str(exc).split())[:200])  # fmt: skip
                time.sleep(min(60.0, 2.0 ** (failures - 1)))

    def step(self) -> float:
        if not self.loaded:
            stored = self.store.trigger_positions([self.deployment]).get(
                (self.deployment, self.trigger.name)
            )
            has = stored is not None and stored.position is not None
            self.position = stored.position if has and stored else self.trigger.start
            self.loaded = True
        if self.paused():
            return self.trigger.interval
        rows = self._read()
        if not rows:
            return self.trigger.interval
        column = self.trigger.watermark or next(iter(rows[0]))
        if column not in rows[0]:
            raise DeploymentError(f"watermark: the query returns no column {column!r}")
        events = [self._event(row, row[column]) for row in rows]
        groups = [events] if self.trigger.batch else [[e] for e in events]
        self.fire(groups, position=rows[-1][column])
        self.position = rows[-1][column]
        return 0.0 if len(rows) == PAGE else self.trigger.interval

    def _read(self) -> list[dict[str, Any]]:
        from pydantic_core import to_jsonable_python
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import DBAPIError

        if self._engine is None:
            self._engine = create_engine(self.trigger.url, pool_pre_ping=True)
        try:
            with self._engine.connect() as conn:
                result = conn.execute(text(self.trigger.query), {"watermark": self.position})
                rows = result.mappings().fetchmany(PAGE)
        except DBAPIError as exc:
            self._engine.dispose()  # a fresh connection next time
            reason = " ".join(str(exc.orig).split()) if exc.orig is not None else str(exc)
            raise DeploymentError(f"query failed: {reason[:300]}") from None
        return [to_jsonable_python(dict(r), fallback=str) for r in rows]

    def _event(self, row: dict[str, Any], mark: Any) -> Event:
        eid = event_id(self.deployment, self.trigger.name, f"{type(mark).__name__}:{mark}")
        return Event(eid, "rows", self.trigger.name, {"row": row, "watermark": mark}, time.time())
