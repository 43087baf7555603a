"""`FileWatcher`: files arriving under a directory or an fsspec URL start runs, each once.

How a file becomes an event:

1. **seen**: a scan lists the files matching the trigger's glob with their size and mtime (an
   etag or mtime for URLs). Local directories are scanned when the OS reports a change
   (`watchfiles`, a thread of its own; debounced to 20-200 ms) and every `poll` seconds anyway
   (the fallback when OS events are unavailable: a network mount, too many watches); URLs are
   scanned every `poll` seconds. The first scan, at start, catches up with what arrived while
   no server was running.
2. **settled**: a file fires once its (size, mtime) has not changed for `settle` seconds: a
   file still being written, in pieces, does not fire until its writer is done.
3. **fired**: its identity is (path, size, mtime); the event id hashes it, so the store records
   it once and starts its run once, across restarts and second servers. The same file rewritten
   (a new size or mtime) is a new event. With `window`, the files settled within `window`
   seconds of the first are one group: one run, `{{ event.paths }}`.

Memory is bounded by the files present: what fired is remembered per path (and forgotten when
the file goes away), never as an ever-growing set. A burst of 10,000 files fires in chunks of
`BURST` events, each chunk one transaction.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event, event_id
from dagflow.core.triggers import FilesTrigger
from dagflow.scheduler.watchers import Watcher

if TYPE_CHECKING:
    from dagflow.store import Store

log = logging.getLogger("dagflow.scheduler")
BURST = 2000  # events fired per transaction batch during a burst
Seen = tuple[int, str]  # (size, mtime or etag): what makes one version of a file


class FileWatcher(Watcher):
    """Watches one files trigger; see the module docstring."""

    trigger: FilesTrigger

    def __init__(
        self,
        store: Store,
        deployment: str,
        trigger: FilesTrigger,
        current: Callable[[], Deployment | None],
        wake: Callable[[], None],
    ) -> None:
        super().__init__(store, deployment, trigger, current, wake)
        self.pending: dict[str, tuple[Seen, float]] = {}  # path -> (version, first seen stable)
        self.fired: dict[str, Seen] = {}  # path -> the version that fired (or was recorded)
        self.window: list[Event] = []
        self.window_started = 0.0
        self._os_events = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self._watching = False
        self._last_scan = -1e18
        self._fs: Any = None

    # ------------------------------------------------------------------ the watch thread

    def start(self) -> None:
        if not self.trigger.is_url:
            self._watch_thread = threading.Thread(
                target=self._watch, name=f"watch {self.trigger.name}", daemon=True
            )
            self._watch_thread.start()
        super().start()

    def close(self) -> None:
        self._os_events.set()

    def _watch(self) -> None:
        """OS file events for the directory: each batch pokes the watcher to scan now."""
        import watchfiles

        base = self.trigger.path
        while not self.stopped:
            if not os.path.isdir(base):
                if self._sleep(self.trigger.poll):
                    return
                continue
            try:
                self._watching = True
                for _ in watchfiles.watch(
                    base,
                    watch_filter=None,
                    debounce=200,
                    step=20,
                    stop_event=_StopFlag(self),
                    recursive="**" in self.trigger.pattern or "/" in self.trigger.pattern,
                    raise_interrupt=False,
                    rust_timeout=1000,
                    yield_on_timeout=False,
                ):
                    self.poke()
                    if self.stopped:
                        return
            except Exception as exc:
                log.warning("%s: no OS file events (%s): polling every %gs",
                            self.label, exc, self.trigger.poll)  # fmt: skip
                self._watching = False
                return
            finally:
                self._watching = False

    def _sleep(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.stopped:
                return True
            time.sleep(0.1)
        return self.stopped

    # ------------------------------------------------------------------ one look

    def step(self) -> float:
        now = time.monotonic()
        found = self.scan()
        self._last_scan = now
        ready = self._settle(found, now)
        if not self.paused():
            if ready:
                self._fire_ready(ready)
            if self.window and now - self.window_started >= (self.trigger.window or 0):
                for start in range(0, len(self.window), BURST):
                    self.fire([self.window[start : start + BURST]])
                self.window = []
        waits = [self.trigger.poll]
        if self.pending:
            earliest = min(since for _, since in self.pending.values())
            waits.append(max(0.02, earliest + self.trigger.settle - time.monotonic()))
        if self.window:
            waits.append(max(0.0, self.window_started + (self.trigger.window or 0) - now))
        return min(waits)

    def scan(self) -> dict[str, Seen]:
        """The matching files now: path -> (size, mtime or etag)."""
        if self.trigger.is_url:
            return self._scan_url()
        return self._scan_local()

    def _scan_local(self) -> dict[str, Seen]:
        base = self.trigger.path
        found: dict[str, Seen] = {}
        for path in glob.iglob(os.path.join(glob.escape(base), self.trigger.pattern),
                               recursive=True):  # fmt: skip
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISREG(st.st_mode):
                found[path] = (st.st_size, str(st.st_mtime_ns))
        return found

    def _scan_url(self) -> dict[str, Seen]:
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs, self._root = url_to_fs(self.trigger.path)
        protocol = self.trigger.path.partition("://")[0]
        target = f"{self._root.rstrip('/')}/{self.trigger.pattern}"
        found: dict[str, Seen] = {}
        for path, info in self._fs.glob(target, detail=True).items():
            if info.get("type", "file") != "file":
                continue
            version = next((str(info[k]) for k in ("ETag", "etag", "mtime", "LastModified",
                                                   "last_modified", "created") if info.get(k)),
                           "")  # fmt: skip
            url = path if "://" in path else f"{protocol}://{path.lstrip('/')}"
            found[url] = (int(info.get("size") or 0), version)
        return found

    def _settle(self, found: dict[str, Seen], now: float) -> list[tuple[str, Seen]]:
        """The files whose version has been stable for `settle` seconds and has not fired."""
        for path in [p for p in self.fired if p not in found]:
            del self.fired[path]  # gone: a file of that name later is news
        for path in [p for p in self.pending if p not in found]:
            del self.pending[path]
        ready: list[tuple[str, Seen]] = []
        for path, version in found.items():
            if self.fired.get(path) == version:
                continue
            seen = self.pending.get(path)
            if seen is None or seen[0] != version:
                self.pending[path] = (version, now)
                if self.trigger.settle > 0:
                    continue
                seen = (version, now)
            if now - seen[1] >= self.trigger.settle:
                ready.append((path, version))
        return ready

    def _fire_ready(self, ready: list[tuple[str, Seen]]) -> None:
        now = time.time()
        made = [self._event(path, version, now) for path, version in ready]
        if self.trigger.window:
            if not self.window:
                self.window_started = time.monotonic()
            self.window.extend(made)  # fired by `step` once the window has passed
            for path, version in ready:
                self.pending.pop(path, None)
                self.fired[path] = version
            return
        for start in range(0, len(made), BURST):
            self.fire([[e] for e in made[start : start + BURST]])
            for path, version in ready[start : start + BURST]:
                self.pending.pop(path, None)
                self.fired[path] = version

    def _event(self, path: str, version: Seen, now: float) -> Event:
        size, mtime = version
        identity = f"{path}|{size}|{mtime}"
        payload: dict[str, Any] = {"path": path, "name": os.path.basename(path), "size": size}
        if mtime.isdigit():
            payload["mtime"] = int(mtime) / 1e9
        else:
            payload["version"] = mtime
        return Event(
            event_id(self.deployment, self.trigger.name, identity),
            "files",
            self.trigger.path,
            payload,
            now,
        )


class _StopFlag:
    """What `watchfiles.watch(stop_event=...)` polls: the watcher stopped."""

    def __init__(self, watcher: FileWatcher) -> None:
        self.watcher = watcher

    def is_set(self) -> bool:
        return self.watcher.stopped
