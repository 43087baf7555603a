"""Retry policies: how many times to try again, after which delay, and for which errors.

A policy is a frozen value built (and validated) once at decoration time. `delay(n, u)` gives the
wait before retry number `n` (1-based) from a uniform draw `u` in [0, 1) supplied by the caller, so
the arithmetic stays pure and testable: `base * backoff**(n-1)`, or the n-th entry of an explicit
list (its last entry repeated), spread by +/- `jitter` of itself. No wait exceeds `MAX_SECONDS`:
a longer one is a mistake, and `time.sleep` / `Thread.join` overflow on huge numbers, so a longer
`retry_delay` or `timeout` is refused and an exponential backoff stops growing there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from dagflow.errors import DefinitionError

DelayOption = float | int | timedelta | Sequence[float | int | timedelta]

MAX_SECONDS = 365 * 24 * 3600.0  # a year: the longest retry delay or timeout


def seconds_option(value: object, what: str) -> float:
    """Seconds from a number or a timedelta: finite, >= 0, at most `MAX_SECONDS`."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise DefinitionError(
            f"{what} must be seconds (a number) or a timedelta, got {type(value).__name__}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise DefinitionError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    if seconds > MAX_SECONDS:
        raise DefinitionError(
            f"{what} must be at most {MAX_SECONDS:.0f} seconds (a year), got {value!r}"
        )
    return seconds


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Validated retry settings of one task or flow."""

    retries: int = 0
    delays: tuple[float, ...] = (0.0,)
    backoff: float = 1.0
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    @classmethod
    def build(
        cls,
        owner: str,
        retries: object = 0,
        retry_delay: object = 0.0,
        retry_backoff: object = 1.0,
        retry_jitter: object = 0.0,
        retry_on: object = None,
    ) -> RetryPolicy:
        """Validate user options; errors name `owner` (e.g. "task 'extract'")."""
        delays = delays_option(retry_delay, f"{owner}: retry_delay")
        backoff = backoff_option(retry_backoff, f"{owner}: retry_backoff")
        if len(delays) > 1 and backoff != 1:
            raise DefinitionError(
                f"{owner}: retry_backoff applies to a single retry_delay, not to a list; "
                "write each delay in the list instead"
            )
        return cls(
            retries_option(retries, f"{owner}: retries"),
            delays,
            backoff,
            jitter_option(retry_jitter, f"{owner}: retry_jitter"),
            exception_types(f"{owner}: retry_on", retry_on),
        )

    def delay(self, retry_number: int, uniform: float = 0.5) -> float:
        """Seconds to wait before retry `retry_number` (1-based); `uniform` is in [0, 1)."""
        index = min(retry_number - 1, len(self.delays) - 1)
        base = self.delays[index]
        if len(self.delays) == 1 and base > 0 and self.backoff > 1:
            # compare in log space first: backoff ** n overflows a float long before n is large
            growth = (retry_number - 1) * math.log(self.backoff)
            if math.log(base) + growth >= math.log(MAX_SECONDS):
                base = MAX_SECONDS
            else:
                base *= self.backoff ** (retry_number - 1)
        if self.jitter:
            base *= 1 + self.jitter * (2 * uniform - 1)
        return min(max(base, 0.0), MAX_SECONDS)

    def should_retry(self, error: BaseException, retries_done: int) -> bool:
        return retries_done < self.retries and isinstance(error, self.retry_on)


def retries_option(value: object, what: str) -> int:
    """A retry count: an int >= 0."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(f"{what} must be an int >= 0, got {type(value).__name__}")
    if value < 0:
        raise DefinitionError(f"{what} must be >= 0, got {value}")
    return value


def delays_option(value: object, what: str) -> tuple[float, ...]:
    """A retry delay: seconds, a timedelta, or a non-empty list of them (one per retry)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise DefinitionError(f"{what} list must not be empty")
        return tuple(seconds_option(d, f"{what}[{i}]") for i, d in enumerate(value))
    return (seconds_option(value, what),)


def backoff_option(value: object, what: str) -> float:
    """A backoff factor: a finite number >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DefinitionError(f"{what} must be a number >= 1, got {type(value).__name__}")
    if not math.isfinite(value) or value < 1:
        raise DefinitionError(f"{what} must be >= 1, got {value!r}")
    return float(value)


def jitter_option(value: object, what: str) -> float:
    """A jitter: a fraction between 0 and 1 of each delay."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DefinitionError(
            f"{what} must be a fraction between 0 and 1, got {type(value).__name__}"
        )
    if not 0 <= value <= 1:
        raise DefinitionError(f"{what} must be between 0 and 1, got {value!r}")
    return float(value)


def exception_types(what: str, retry_on: object) -> tuple[type[BaseException], ...]:
    """The exception types a `retry_on` option names (default: every `Exception`)."""
    if retry_on is None:
        return (Exception,)
    items = retry_on if isinstance(retry_on, (list, tuple, set, frozenset)) else (retry_on,)
    kinds = tuple(items)
    if not kinds or not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
        raise DefinitionError(
            f"{what} must be an exception type or a tuple of them, got {retry_on!r}"
        )
    return kinds


def positive_seconds(value: object, what: str) -> float | None:
    """None, or a positive number of seconds / timedelta (a timeout, a cache expiration)."""
    if value is None:
        return None
    seconds = seconds_option(value, what)
    if seconds <= 0:
        raise DefinitionError(f"{what} must be > 0 seconds, got {value!r}")
    return seconds


def timeout_seconds(owner: str, timeout: object) -> float | None:
    """Validate a `timeout` option: None, or a positive number of seconds / timedelta."""
    return positive_seconds(timeout, f"{owner}: timeout")
