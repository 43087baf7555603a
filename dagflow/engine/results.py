"""Result storage: where persisted task results and cache entries live (any fsspec URL).

Workers write results straight to storage and report only the location, size and serializer, so
the driver never loads a result it does not need. The URL comes from the settings
(`DAGFLOW_RESULTS_URL`, default a folder under `DAGFLOW_HOME`; for a remote cluster, storage every
worker can reach) and travels to the workers with the task. Cache entries are results filed
under their cache key, with a small JSON sidecar holding their expiry, so a cache lookup on a
worker needs no database.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import threading
import time
from dataclasses import dataclass
from typing import Any

import cloudpickle

from dagflow.errors import StoreError

_EXT = {"cloudpickle": "pkl", "json": "json"}
PARTIAL = ".partial-"  # in the name of a result file being written


def dumps(value: Any, serializer: str) -> bytes:
    if serializer == "json":
        return json.dumps(value).encode()
    return cloudpickle.dumps(value)


def loads(data: bytes, serializer: str) -> Any:
    if serializer == "json":
        return json.loads(data)
    return pickle.loads(data)


@dataclass(frozen=True, slots=True)
class StoredResult:
    location: str
    size: int
    serializer: str


class ResultStorage:
    """One storage location (an fsspec URL); cheap to pickle, opened lazily where used."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._fs: Any = None
        self._root = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (ResultStorage, (self.url,))

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs, self._root = url_to_fs(self.url)
        return self._fs

    def _path(self, relative: str) -> str:
        self.fs  # noqa: B018 - opens the filesystem and sets the root
        if not relative:
            return self._root
        return f"{self._root}/{relative}" if self._root else relative

    def location(self, relative: str) -> str:
        return f"{self.url}/{relative}"

    def check_writable(self) -> None:
        """Fail early, on the driver, with one line if results cannot be written here."""
        probe = f".probe-{os.getpid()}-{time.time_ns()}"
        try:
            self.fs.makedirs(self._path(""), exist_ok=True)
            with self.fs.open(self._path(probe), "wb") as fh:
                fh.write(b"ok")
            self.fs.rm(self._path(probe))
        except Exception as exc:
            raise StoreError(
                f"result storage {self.url} cannot be written: {type(exc).__name__}: {exc}"
            ) from None

    def write(self, relative: str, value: Any, serializer: str) -> StoredResult:
        data = dumps(value, serializer)
        path = self._path(f"{relative}.{_EXT[serializer]}")
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}{PARTIAL}{os.getpid()}-{threading.get_ident()}"
        try:
            with self.fs.open(tmp, "wb") as fh:
                fh.write(data)
            self.fs.mv(tmp, path)
        except BaseException:
            self._remove(tmp)  # a full disk or a failed write leaves no half-written file
            raise
        return StoredResult(self.location(f"{relative}.{_EXT[serializer]}"), len(data), serializer)

    def read_existing(
        self, relative: str, serializer: str
    ) -> tuple[bool, Any, StoredResult | None]:
        """(found, value, where) of a result this key already wrote (a computation lost with its
        worker and asked for again finds it here instead of running again)."""
        name = f"{relative}.{_EXT[serializer]}"
        try:
            with self.fs.open(self._path(name), "rb") as fh:
                data = fh.read()
        except (FileNotFoundError, OSError):
            return False, None, None
        try:
            value = loads(data, serializer)
        except (pickle.UnpicklingError, ValueError, EOFError):
            return False, None, None
        return True, value, StoredResult(self.location(name), len(data), serializer)

    def remove_partial(self, run_id: str) -> int:
        """Delete what writes of `run_id` left half-done (a worker or driver killed mid-write).

        Called when a run is resumed or read after its end; returns how many files went.
        """
        try:
            found = self.fs.find(self._path(run_id))
        except (FileNotFoundError, OSError):
            return 0
        partial = [path for path in found if PARTIAL in path.rsplit("/", 1)[-1]]
        for path in partial:
            self._remove(path)
        return len(partial)

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm(path)
        except (FileNotFoundError, OSError):
            pass

    def read_location(self, location: str, serializer: str) -> Any:
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(location)
        with fs.open(path, "rb") as fh:
            return loads(fh.read(), serializer)

    # ---------------------------------------------------------------- cache entries

    def cache_lookup(self, cache_key: str) -> tuple[bool, Any, StoredResult | None]:
        """(hit, value, where) for a live cache entry; expired or missing entries miss."""
        meta_path = self._path(f"cache/{cache_key}.meta.json")
        try:
            with self.fs.open(meta_path, "rb") as fh:
                meta = json.load(io.TextIOWrapper(fh))
        except (FileNotFoundError, OSError, ValueError):
            return False, None, None
        expires = meta.get("expires")
        if expires is not None and expires < time.time():
            return False, None, None
        stored = StoredResult(meta["location"], meta["size"], meta["serializer"])
        try:
            value = self.read_location(stored.location, stored.serializer)
        except (FileNotFoundError, OSError, pickle.UnpicklingError, ValueError, EOFError):
            return False, None, None
        return True, value, stored

    def cache_store(
        self, cache_key: str, value: Any, serializer: str, expiration: float | None
    ) -> StoredResult:
        stored = self.write(f"cache/{cache_key}", value, serializer)
        meta = {
            "location": stored.location,
            "size": stored.size,
            "serializer": serializer,
            "expires": None if expiration is None else time.time() + expiration,
        }
        meta_path = self._path(f"cache/{cache_key}.meta.json")
        with self.fs.open(meta_path, "wb") as fh:
            fh.write(json.dumps(meta).encode())
        return stored
