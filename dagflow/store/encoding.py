"""How values the engine hands over become columns: parameters as JSON, log identities as hashes.

Parameters are stored as a JSON object, each value turned into JSON data the way pydantic does it
(`pydantic_core.to_jsonable_python`): a datetime or date becomes its ISO 8601 text, a `Path` or
UUID its text, a set a list, a pydantic model or dataclass an object, so a resumed run's
parameters validate back to the same values. What even pydantic cannot turn into JSON (an open
file, a custom object) is stored as `{"$repr": repr(value)}`: readable, never re-executed, and
recognisable when loaded; so is a structure nested too deeply. A NaN or an infinity (standard
JSON has no number for them) is stored as `{"$float": "nan"}` (or `"inf"`, `"-inf"`), which a
resume turns back into the float. Every stored document is standard JSON, so every JSON output
built from it is too.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

REPR_MARKER = "$repr"
FLOAT_MARKER = "$float"


def _marker(value: Any) -> dict[str, str]:
    return {REPR_MARKER: repr(value)}


def _finite(data: Any) -> Any:
    """`data` (JSON data) with each NaN or infinity replaced by its `$float` marker."""
    if isinstance(data, float) and not math.isfinite(data):
        return {FLOAT_MARKER: repr(data)}
    if isinstance(data, list):
        return [_finite(item) for item in data]
    if isinstance(data, dict):
        return {key: _finite(item) for key, item in data.items()}
    return data


def encode_parameters(parameters: dict[str, Any]) -> str:
    """JSON text for a run's parameters; what JSON cannot hold becomes a `$repr` marker."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            data = _finite(to_jsonable_python(value, fallback=_marker, bytes_mode="base64"))
            json.dumps(data, allow_nan=False)
            out[str(name)] = data
        except (PydanticSerializationError, TypeError, ValueError, RecursionError):
            out[str(name)] = _marker(value)
    return json.dumps(out, default=_marker, sort_keys=True, allow_nan=False)


def decode_parameters(text: str | None) -> dict[str, Any]:
    """The stored JSON object, markers kept (what `runs show` and the API print)."""
    if not text:
        return {}
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _restored(marked: dict[str, Any]) -> Any:
    if set(marked) == {FLOAT_MARKER}:
        return float(marked[FLOAT_MARKER])
    return marked


def restore_parameters(text: str | None) -> tuple[dict[str, Any], list[str]]:
    """The stored parameters as a run receives them again (`$float` markers back to floats), and
    the names of those stored only as their `repr`, which no resume can give back."""
    if not text:
        return {}, []
    value = json.loads(text, object_hook=_restored)
    if not isinstance(value, dict):
        return {}, []
    lost = [name for name, v in value.items() if _holds_repr(v)]
    return value, lost


def _holds_repr(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {REPR_MARKER} or any(_holds_repr(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_repr(v) for v in value)
    return False


def log_ident(task_key: str | None, time: float, message: str) -> str:
    """A short stable hash of a log record's identity within its run (`LogEvent.ident`)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{task_key or ''}\x00{time!r}\x00".encode())
    digest.update(message.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
