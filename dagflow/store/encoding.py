"""How values the engine hands over become columns: parameters as JSON, log identities as hashes.

Parameters are stored as a JSON object, each value turned into JSON data the way pydantic does it
(`pydantic_core.to_jsonable_python`): a datetime or date becomes its ISO 8601 text, a `Path` or
UUID its text, a set a list, a pydantic model or dataclass an object, so a resumed run's
parameters validate back to the same values. What even pydantic cannot turn into JSON (an open
file, a custom object) is stored as `{"$repr": repr(value)}`: readable, never re-executed, and
recognisable when loaded.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

REPR_MARKER = "$repr"


def _marker(value: Any) -> dict[str, str]:
    return {REPR_MARKER: repr(value)}


def encode_parameters(parameters: dict[str, Any]) -> str:
    """JSON text for a run's parameters; what JSON cannot hold becomes a `$repr` marker."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            out[str(name)] = to_jsonable_python(value, fallback=_marker, bytes_mode="base64")
        except (PydanticSerializationError, TypeError, ValueError, RecursionError):
            out[str(name)] = _marker(value)
    return json.dumps(out, default=_marker, sort_keys=True)


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
