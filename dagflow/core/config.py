"""A run's configuration: the variables and secrets it reads, the concurrency limits of its
tasks' tags, and the masking of secret values.

A run reads its configuration once, when it starts (`RunConfig`, made by the driver from the
run history): the flow body reads it from its `FlowRunContext`, and every task call carries it
to its worker inside the call's payload (pickled once per task per run), so a task on a worker
that cannot reach the database reads variables and secrets as the driver saw them. Nothing of it
is recorded: not in the history, the parameters or the results.

`Masker` replaces each secret value, and the ways it is commonly written out (URL-quoted,
base64 at any alignment, JSON- or repr-escaped), by `***`. It is applied where text leaves a
run's code: log records and captured prints (on the worker and on the driver), state messages
and tracebacks, flow parameters typed `pydantic.SecretStr`. A run without secrets has no masker
(`None`), so masking costs it nothing. Values shorter than `MIN_MASKED` characters are not
masked (they would hide ordinary words); `dagflow secrets set` refuses them.

Pure: no database, network or clock.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, quote_plus

from dagflow.core.runs import FlowRunStarted, LogEvent, RunEvent, StateEvent

MASK = "***"
MIN_MASKED = 4  # characters: a shorter secret value would mask ordinary text
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
NAME_RULE = "a letter or _, then letters, digits, '_', '.' or '-' (at most 128 characters)"


def check_name(kind: str, name: str) -> str:
    """`name` if it can name a variable or secret (`kind`), else a `ValueError` naming it."""
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise ValueError(f"invalid {kind} name {name!r}: {NAME_RULE}")
    return name


def _encodings(value: str) -> set[str]:
    """`value` and how it is commonly written inside other text."""
    raw = value.encode("utf-8")
    found = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    found.add(json.dumps(value)[1:-1])
    found.add(repr(value)[1:-1])
    found.add(value.encode("unicode_escape").decode("ascii"))
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for offset in range(3):  # the characters of base64 that only `value`'s bytes decide
            text = encode(b"\0" * offset + raw).decode("ascii")
            start = (offset * 8 + 5) // 6
            end = ((offset + len(raw)) * 8) // 6
            found.add(text[start:end])
    return {text for text in found if len(text) >= MIN_MASKED}


class Masker:
    """Replaces secret values (and their encodings) in text by `***`."""

    __slots__ = ("_pattern", "_values")

    def __init__(self, values: Iterable[str]) -> None:
        self._values = tuple(sorted({v for v in values if len(v) >= MIN_MASKED}))
        variants: set[str] = set()
        for value in self._values:
            variants |= _encodings(value)
        ordered = sorted(variants, key=lambda v: (-len(v), v))  # the longest match wins
        self._pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Masker, (self._values,))

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def optional(self, text: str | None) -> str | None:
        return None if text is None else self(text)


def masker_for(values: Iterable[str]) -> Masker | None:
    """A masker of `values`, or None when there is nothing to mask."""
    masker = Masker(values)
    return masker if masker else None


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The variables and secrets a run reads, as they were when it started.

    `secret_error` is set when the secrets could not be decrypted (a missing or wrong key): a
    `secrets.get` in the run raises it, and a run that reads no secret is not stopped by it.
    """

    variables: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    secret_error: str | None = None
    masker: Masker | None = None
    limits: Mapping[str, int] = field(default_factory=dict)  # tag -> task runs at once

    def limits_of(self, tags: Iterable[str]) -> tuple[tuple[str, int], ...]:
        """The limited tags among `tags` with their limits, by tag (the order slots are taken
        in, so two tasks never wait for each other's)."""
        limits = self.limits
        if not limits:
            return ()
        return tuple(sorted((t, limits[t]) for t in set(tags) if t in limits))

    def with_masked(self, values: Iterable[str]) -> RunConfig:
        """This configuration masking `values` too (a run's `SecretStr` parameters)."""
        extra = [v for v in values if v]
        if not extra:
            return self
        return replace(self, masker=masker_for([*self.secrets.values(), *extra]))


EMPTY = RunConfig()


def secret_parameter_values(parameters: Mapping[str, Any]) -> list[str]:
    """The plain values of parameters typed `pydantic.SecretStr` (found by duck typing, so
    this module imports no pydantic), also inside lists and dicts."""
    found: list[str] = []

    def visit(value: Any) -> None:
        reveal = getattr(value, "get_secret_value", None)
        if callable(reveal):
            secret = reveal()
            if isinstance(secret, str):
                found.append(secret)
            elif isinstance(secret, bytes):
                found.append(secret.decode("utf-8", "replace"))
        elif isinstance(value, Mapping):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                visit(item)

    for value in parameters.values():
        visit(value)
    return found


def masked(event: RunEvent, masker: Masker) -> RunEvent:
    """`event` with secret values replaced in its text: messages, tracebacks, parameters."""
    if isinstance(event, LogEvent):
        text = masker(event.message)
        return event if text is event.message else replace(event, message=text)
    if isinstance(event, StateEvent):
        if not event.message and event.traceback is None:
            return event
        return replace(
            event, message=masker(event.message), traceback=masker.optional(event.traceback)
        )
    if isinstance(event, FlowRunStarted):
        return replace(event, parameters=_masked_values(event.parameters, masker))
    return event


def _masked_values(value: Any, masker: Masker) -> Any:
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, dict):
        return {k: _masked_values(v, masker) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked_values(v, masker) for v in value)
    return value
