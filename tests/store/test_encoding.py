"""Parameters as stored: JSON as pydantic writes it, a `$repr` marker for what JSON cannot hold."""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from dagflow.store.encoding import decode_parameters, encode_parameters, restore_parameters


class Window(BaseModel):
    start: dt.date
    days: int


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def test_parameters_become_json_the_way_pydantic_writes_it() -> None:
    when = dt.datetime(2024, 2, 29, 12, 30, tzinfo=dt.timezone.utc)
    ident = uuid.UUID(int=1)
    stored = decode_parameters(
        encode_parameters(
            {
                "day": dt.date(2024, 2, 29),
                "when": when,
                "path": Path("/data/x.csv"),
                "ids": {3},
                "ident": ident,
                "window": Window(start=dt.date(2024, 1, 1), days=7),
                "nested": [1, Opaque()],
                "thing": Opaque(),
                "none": None,
            }
        )
    )
    assert stored == {
        "day": "2024-02-29",
        "when": "2024-02-29T12:30:00Z",
        "path": "/data/x.csv",
        "ids": [3],
        "ident": str(ident),
        "window": {"start": "2024-01-01", "days": 7},
        "nested": [1, {"$repr": "Opaque()"}],
        "thing": {"$repr": "Opaque()"},
        "none": None,
    }


def test_non_finite_floats_are_standard_json_and_restored_for_a_resume() -> None:
    text = encode_parameters({"x": math.inf, "y": [1.5, -math.inf], "z": math.nan})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "x": {"$float": "inf"},
        "y": [1.5, {"$float": "-inf"}],
        "z": {"$float": "nan"},
    }
    restored, lost = restore_parameters(text)
    assert restored["x"] == math.inf and restored["y"] == [1.5, -math.inf]
    assert math.isnan(restored["z"]) and lost == []


def test_parameters_stored_as_their_repr_are_named_as_lost() -> None:
    text = encode_parameters({"ok": 1, "thing": Opaque(), "deep": {"a": [Opaque()]}})
    assert restore_parameters(text)[1] == ["deep", "thing"]
