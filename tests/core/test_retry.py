"""Retry policies: delay schedules (backoff, jitter, lists) and validation of the options."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dagflow import DefinitionError, task
from dagflow.core.retry import RetryPolicy, timeout_seconds

OWNER = "task 'extract'"

seconds = st.floats(min_value=0, max_value=3600, allow_nan=False)
uniform = st.floats(min_value=0, max_value=1, exclude_max=True)
backoffs = st.floats(min_value=1, max_value=10, allow_nan=False)
jitters = st.floats(min_value=0, max_value=1, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    listed = draw(st.booleans())
    delay = draw(st.lists(seconds, min_size=1, max_size=5) if listed else seconds)
    return RetryPolicy.build(
        OWNER,
        draw(st.integers(min_value=0, max_value=5000)),
        delay,
        1.0 if listed else draw(backoffs),  # a backoff applies to a single delay only
        draw(jitters),
    )


@given(policies(), st.data())
def test_every_delay_is_a_finite_non_negative_number(
    policy: RetryPolicy, data: st.DataObject
) -> None:
    # up to the last retry the policy allows: a long exponential backoff must not overflow
    n = data.draw(st.integers(min_value=1, max_value=max(policy.retries, 1)))
    delay = policy.delay(n, data.draw(uniform))
    assert math.isfinite(delay) and delay >= 0


@given(seconds, backoffs, st.integers(min_value=1, max_value=60))
def test_backoff_without_jitter_never_shrinks(base: float, backoff: float, n: int) -> None:
    policy = RetryPolicy.build(OWNER, 100, base, backoff)
    assert policy.delay(n + 1) >= policy.delay(n)
    assert policy.delay(1) == pytest.approx(base)


@given(seconds, backoffs, st.integers(min_value=1, max_value=20))
def test_backoff_multiplies_the_base_delay(base: float, backoff: float, n: int) -> None:
    expected = base * backoff ** (n - 1)
    assume(expected <= 24 * 3600)  # below the cap on waits
    policy = RetryPolicy.build(OWNER, 100, base, backoff)
    assert policy.delay(n) == pytest.approx(expected)


@given(seconds, jitters, uniform, st.integers(min_value=1, max_value=10))
def test_jitter_stays_within_its_fraction(base: float, jitter: float, u: float, n: int) -> None:
    policy = RetryPolicy.build(OWNER, 10, base, 1.0, jitter)
    delay = policy.delay(n, u)
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9


def test_jitter_spreads_both_ways_around_the_base() -> None:
    policy = RetryPolicy.build(OWNER, 3, 10.0, 1.0, 0.5)
    assert policy.delay(1, 0.0) == pytest.approx(5.0)
    assert policy.delay(1, 0.5) == pytest.approx(10.0)
    assert policy.delay(1, 0.999999) == pytest.approx(15.0, rel=1e-5)


@given(st.lists(seconds, min_size=1, max_size=6), st.integers(min_value=1, max_value=30))
def test_a_list_of_delays_is_used_in_order_then_its_last_entry_repeats(
    delays: list[float], n: int
) -> None:
    policy = RetryPolicy.build(OWNER, 30, delays)
    assert policy.delay(n) == pytest.approx(delays[min(n, len(delays)) - 1])


def test_a_single_entry_list_is_not_a_backoff_base() -> None:
    assert [RetryPolicy.build(OWNER, 3, [2.0]).delay(n) for n in (1, 2, 3)] == [2.0, 2.0, 2.0]


def test_delays_accept_timedeltas() -> None:
    policy = RetryPolicy.build(OWNER, 3, [timedelta(seconds=1), timedelta(minutes=1)])
    assert [policy.delay(n) for n in (1, 2, 3)] == [1.0, 60.0, 60.0]
    assert RetryPolicy.build(OWNER, 1, timedelta(milliseconds=250)).delay(1) == 0.25


def test_defaults_retry_nothing_and_wait_zero() -> None:
    policy = RetryPolicy.build(OWNER)
    assert policy.retries == 0
    assert policy.delay(1) == 0.0
    assert not policy.should_retry(ValueError("x"), 0)


def test_should_retry_counts_attempts_and_filters_error_types() -> None:
    policy = RetryPolicy.build(OWNER, 2, 0, retry_on=(OSError, KeyError))
    assert policy.should_retry(FileNotFoundError("subclass of OSError"), 0)
    assert policy.should_retry(KeyError("k"), 1)
    assert not policy.should_retry(KeyError("k"), 2)  # both retries used
    assert not policy.should_retry(ValueError("not listed"), 0)
    assert RetryPolicy.build(OWNER, 1, retry_on=ValueError).retry_on == (ValueError,)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"retries": -1}, "retries must be >= 0"),
        ({"retries": 1.5}, "retries must be an int"),
        ({"retries": True}, "retries must be an int"),
        ({"retries": "3"}, "retries must be an int"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"retry_delay": "5s"}, "retry_delay must be seconds"),
        ({"retry_delay": math.nan}, "retry_delay"),
        ({"retry_delay": math.inf}, "retry_delay"),
        ({"retry_delay": []}, "retry_delay list must not be empty"),
        ({"retry_delay": [1, "x"]}, "retry_delay[1]"),
        ({"retry_delay": [1, -2]}, "retry_delay[1]"),
        ({"retry_backoff": 0.5}, "retry_backoff must be >= 1"),
        ({"retry_backoff": "2"}, "retry_backoff must be a number"),
        ({"retry_backoff": math.nan}, "retry_backoff"),
        ({"retry_delay": [1, 5], "retry_backoff": 2}, "retry_backoff applies to a single"),
        ({"retry_jitter": 1.5}, "retry_jitter must be between 0 and 1"),
        ({"retry_jitter": -0.1}, "retry_jitter must be between 0 and 1"),
        ({"retry_jitter": "a bit"}, "retry_jitter must be a fraction"),
        ({"retry_on": "OSError"}, "retry_on must be an exception type"),
        ({"retry_on": [int]}, "retry_on must be an exception type"),
        ({"retry_on": ()}, "retry_on must be an exception type"),
        ({"timeout": "x"}, "timeout must be seconds"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"timeout": -5}, "timeout"),
        ({"timeout": timedelta(0)}, "timeout must be > 0"),
    ],
)
def test_bad_retry_options_raise_at_decoration_naming_the_task(
    options: dict[str, object], words: str
) -> None:
    with pytest.raises(DefinitionError) as info:

        @task(**options)  # type: ignore[call-overload]
        def extract() -> None: ...

    message = str(info.value)
    assert message.startswith(OWNER + ":"), message
    assert words in message
    assert "\n" not in message


def test_timeouts_are_seconds_or_timedeltas() -> None:
    assert timeout_seconds(OWNER, None) is None
    assert timeout_seconds(OWNER, 2) == 2.0
    assert timeout_seconds(OWNER, timedelta(minutes=2)) == 120.0


@pytest.mark.parametrize("option", ["retry_delay", "timeout"])
def test_waits_too_long_to_sleep_on_are_refused_at_decoration(option: str) -> None:
    # time.sleep() and Thread.join() raise OverflowError past about 2**63 ns; refuse it up front
    with pytest.raises(DefinitionError, match=f"{OWNER}: {option}"):

        @task(**{option: 1e300})  # type: ignore[call-overload]
        def extract() -> None: ...


def test_an_exponential_backoff_is_capped_not_overflowed() -> None:
    policy = RetryPolicy.build(OWNER, 5000, 1.0, 2.0)
    late = policy.delay(5000)
    assert math.isfinite(late)
    assert late == policy.delay(4000)  # past the cap the schedule is flat
    assert late >= policy.delay(20)
