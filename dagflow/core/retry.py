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


def _seconds(value: object, what: str) -> float:
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
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise DefinitionError(
                f"{owner}: retries must be an int >= 0, got {type(retries).__name__}"
            )
        if retries < 0:
            raise DefinitionError(f"{owner}: retries must be >= 0, got {retries}")
        if isinstance(retry_delay, (list, tuple)):
            if not retry_delay:
                raise DefinitionError(f"{owner}: retry_delay list must not be empty")
            delays = tuple(
                _seconds(d, f"{owner}: retry_delay[{i}]") for i, d in enumerate(retry_delay)
            )
        else:
            delays = (_seconds(retry_delay, f"{owner}: retry_delay"),)
        if isinstance(retry_backoff, bool) or not isinstance(retry_backoff, (int, float)):
            raise DefinitionError(
                f"{owner}: retry_backoff must be a number >= 1, got {type(retry_backoff).__name__}"
            )
        if not math.isfinite(retry_backoff) or retry_backoff < 1:
            raise DefinitionError(f"{owner}: retry_backoff must be >= 1, got {retry_backoff!r}")
        if isinstance(retry_delay, (list, tuple)) and retry_backoff != 1:
            raise DefinitionError(
                f"{owner}: retry_backoff applies to a single retry_delay, not to a list; "
                "write each delay in the list instead"
            )
        if isinstance(retry_jitter, bool) or not isinstance(retry_jitter, (int, float)):
            raise DefinitionError(
                f"{owner}: retry_jitter must be a fraction between 0 and 1, "
                f"got {type(retry_jitter).__name__}"
            )
        if not 0 <= retry_jitter <= 1:
            raise DefinitionError(
                f"{owner}: retry_jitter must be between 0 and 1, got {retry_jitter!r}"
            )
        kinds = _exception_types(owner, retry_on)
        return cls(retries, delays, float(retry_backoff), float(retry_jitter), kinds)

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


def _exception_types(owner: str, retry_on: object) -> tuple[type[BaseException], ...]:
    if retry_on is None:
        return (Exception,)
    items = retry_on if isinstance(retry_on, (list, tuple, set, frozenset)) else (retry_on,)
    kinds = tuple(items)
    if not kinds or not all(isinstance(k, type) and issubclass(k, BaseException) for k in kinds):
        raise DefinitionError(
            f"{owner}: retry_on must be an exception type or a tuple of them, got {retry_on!r}"
        )
    return kinds


def timeout_seconds(owner: str, timeout: object) -> float | None:
    """Validate a `timeout` option: None, or a positive number of seconds / timedelta."""
    if timeout is None:
        return None
    seconds = _seconds(timeout, f"{owner}: timeout")
    if seconds <= 0:
        raise DefinitionError(f"{owner}: timeout must be > 0 seconds, got {timeout!r}")
    return seconds
