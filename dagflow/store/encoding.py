"""How values the engine hands over become columns: parameters as JSON, log identities as hashes.

Parameters are stored as a JSON object. A value JSON cannot hold (a datetime, a custom object, a
NaN or an infinity, which standard JSON has no number for, a structure nested too deeply) is
stored as `{"$repr": repr(value)}`: readable, never re-executed, and recognisable when loaded.
Every stored document is standard JSON, so every JSON output built from it is too.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

REPR_MARKER = "$repr"


def _marker(value: Any) -> dict[str, str]:
    return {REPR_MARKER: repr(value)}


def encode_parameters(parameters: dict[str, Any]) -> str:
    """JSON text for a run's parameters; values JSON cannot hold become a `$repr` marker."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            json.dumps(value, default=_marker, allow_nan=False)
            out[str(name)] = value
        except (TypeError, ValueError, RecursionError):
            out[str(name)] = _marker(value)
    return json.dumps(out, default=_marker, sort_keys=True, allow_nan=False)


def decode_parameters(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def log_ident(task_key: str | None, time: float, message: str) -> str:
    """A short stable hash of a log record's identity within its run (`LogEvent.ident`)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{task_key or ''}\x00{time!r}\x00".encode())
    digest.update(message.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
