"""Schedule arithmetic: properties over many instants (hypothesis), and real DST transitions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagflow.core.deployments import Deployment, split_full_name, tick_key
from dagflow.core.schedules import (
    CronSchedule,
    IntervalSchedule,
    merged_ticks,
    parse_instant,
    schedule_from_spec,
    ticks,
    wall_to_instant,
)
from dagflow.errors import DeploymentError

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

# 1990 .. 2060, where the tz database has real transitions for both zones
instants = st.floats(min_value=631152000.0, max_value=2840140800.0, allow_nan=False)
zones = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
crons = st.sampled_from(
    [
        "* * * * *",
        "*/15 * * * *",
        "30 2 * * *",
        "0 * * * *",
        "0 3 * * 0",
        "45 1,2,3 * * *",
        "@daily",
        "@hourly",
        "*/20 * * * * *",
    ]
)


def at(zone: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


def local(t: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(t, zone).strftime("%Y-%m-%d %H:%M:%S%z")


def walk(schedule: CronSchedule | IntervalSchedule, start: float, n: int) -> list[float]:
    out, t = [], start
    for _ in range(n):
        t = schedule.next_after(t)
        out.append(t)
    return out


# ----------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None)
@given(cron=crons, tz=zones, t=instants)
def test_a_cron_tick_is_after_the_instant_and_none_is_skipped_in_between(
    cron: str, tz: str, t: float
) -> None:
    schedule = CronSchedule(cron, tz)
    nxt = schedule.next_after(t)
    assert nxt > t
    # anything between t and the tick leads to the same tick: nothing fires in between
    for frac in (0.001, 0.5, 0.999):
        probe = t + (nxt - t) * frac
        if probe < nxt:
            assert schedule.next_after(probe) == nxt


@settings(max_examples=100, deadline=None)
@given(cron=crons, tz=zones, t=instants)
def test_cron_ticks_strictly_grow_and_fire_on_the_wall_clock(cron: str, tz: str, t: float) -> None:
    schedule = CronSchedule(cron, tz)
    zone = ZoneInfo(tz)
    fired = walk(schedule, t, 6)
    assert fired == sorted(set(fired))  # strictly increasing: each instant fires once
    for tick in fired:
        wall = datetime.fromtimestamp(tick, zone)
        if wall.utcoffset() == datetime.fromtimestamp(tick - 1, zone).utcoffset():
            # away from a transition a tick is on the cron's grid of wall times
            if cron in ("* * * * *", "*/15 * * * *", "0 * * * *", "@hourly"):
                assert wall.second == 0
            if cron == "*/15 * * * *":
                assert wall.minute % 15 == 0


@settings(max_examples=150, deadline=None)
@given(
    every=st.floats(min_value=0.5, max_value=10 * 86400.0),
    anchor=instants,
    t=instants,
)
def test_interval_ticks_sit_on_the_anchor_grid(every: float, anchor: float, t: float) -> None:
    schedule = IntervalSchedule(every, anchor)
    every = round(every * 1e6) / 1e6  # intervals are kept to the microsecond
    nxt = schedule.next_after(t)
    assert t < nxt <= t + every + 1e-6
    steps = round((nxt - anchor) / every)
    assert abs((nxt - anchor) - steps * every) < 1e-5
    assert schedule.next_after(nxt) == pytest.approx(nxt + every, abs=1e-5)
    assert schedule.next_after(nxt - 1e-3) == nxt


@settings(max_examples=60, deadline=None)
@given(t=instants, n=st.integers(1, 30))
def test_ticks_between_two_instants_match_walking_one_by_one(t: float, n: int) -> None:
    schedule = CronSchedule("*/7 * * * *", "Europe/Paris")
    walked = walk(schedule, t, n)
    assert list(ticks(schedule, t, walked[-1])) == walked
    assert list(ticks(schedule, t, walked[-1], limit=3)) == walked[:3]


# ----------------------------------------------------------------------------- DST, for real


def test_paris_spring_forward_a_missing_wall_time_fires_once_at_the_next_valid_instant() -> None:
    # 2024-03-31: clocks go 02:00 CET -> 03:00 CEST; 02:30 does not exist that night
    schedule = CronSchedule("30 2 * * *", "Europe/Paris")
    fired = walk(schedule, at(PARIS, 2024, 3, 30, 12), 3)
    assert [local(t, PARIS) for t in fired] == [
        "2024-03-31 03:00:00+0200",
        "2024-04-01 02:30:00+0200",
        "2024-04-02 02:30:00+0200",
    ]


def test_paris_several_missing_wall_times_in_one_gap_fire_once() -> None:
    schedule = CronSchedule("*/20 2 * * *", "Europe/Paris")  # 02:00, 02:20, 02:40
    fired = walk(schedule, at(PARIS, 2024, 3, 30, 23), 2)
    assert [local(t, PARIS) for t in fired] == [
        "2024-03-31 03:00:00+0200",  # the three missing times, once
        "2024-04-01 02:00:00+0200",
    ]


def test_paris_fall_back_an_ambiguous_wall_time_fires_once_at_its_first_occurrence() -> None:
    # 2024-10-27: clocks go 03:00 CEST -> 02:00 CET; 02:30 happens twice
    schedule = CronSchedule("30 2 * * *", "Europe/Paris")
    fired = walk(schedule, at(PARIS, 2024, 10, 26, 12), 2)
    assert [local(t, PARIS) for t in fired] == [
        "2024-10-27 02:30:00+0200",
        "2024-10-28 02:30:00+0100",
    ]
    # asking from inside the repeated hour does not fire 02:30 a second time
    second_pass = datetime(2024, 10, 27, 2, 10, tzinfo=PARIS, fold=1).timestamp()
    assert local(schedule.next_after(second_pass), PARIS) == "2024-10-28 02:30:00+0100"


def test_new_york_spring_and_fall_transitions() -> None:
    daily = CronSchedule("30 2 * * *", "America/New_York")
    spring = walk(daily, at(NEW_YORK, 2024, 3, 9, 12), 2)  # 2024-03-10 02:00 -> 03:00
    assert [local(t, NEW_YORK) for t in spring] == [
        "2024-03-10 03:00:00-0400",
        "2024-03-11 02:30:00-0400",
    ]
    fall = walk(daily, at(NEW_YORK, 2024, 11, 2, 12), 2)  # 2024-11-03 02:00 -> 01:00
    assert [local(t, NEW_YORK) for t in fall] == [
        "2024-11-03 02:30:00-0500",
        "2024-11-04 02:30:00-0500",
    ]
    ambiguous = CronSchedule("30 1 * * *", "America/New_York")  # 01:30 happens twice
    fall = walk(ambiguous, at(NEW_YORK, 2024, 11, 2, 12), 2)
    assert [local(t, NEW_YORK) for t in fall] == [
        "2024-11-03 01:30:00-0400",
        "2024-11-04 01:30:00-0500",
    ]


def test_an_hourly_cron_through_fall_back_fires_each_wall_hour_once() -> None:
    hourly = CronSchedule("0 * * * *", "Europe/Paris")
    fired = walk(hourly, at(PARIS, 2024, 10, 27, 0, 30), 4)
    assert [local(t, PARIS) for t in fired] == [
        "2024-10-27 01:00:00+0200",
        "2024-10-27 02:00:00+0200",  # the second 02:00 (CET) does not fire again
        "2024-10-27 03:00:00+0100",
        "2024-10-27 04:00:00+0100",
    ]


def test_intervals_count_elapsed_time_across_dst() -> None:
    day = IntervalSchedule(timedelta(days=1), "2024-03-30T02:30:00", "Europe/Paris")
    fired = walk(day, at(PARIS, 2024, 3, 30, 12), 2)
    assert [t - fired[0] for t in fired] == [0, 86400]
    assert local(fired[0], PARIS) == "2024-03-31 03:30:00+0200"  # 24 h after 02:30 CET


def test_wall_to_instant_maps_gaps_and_folds() -> None:
    assert wall_to_instant(datetime(2024, 3, 31, 2, 30), PARIS) == at(UTC, 2024, 3, 31, 1, 0)
    assert wall_to_instant(datetime(2024, 10, 27, 2, 30), PARIS) == at(UTC, 2024, 10, 27, 0, 30)
    assert wall_to_instant(datetime(2024, 6, 1, 12, 0), PARIS) == at(UTC, 2024, 6, 1, 10, 0)


# ----------------------------------------------------------------------------- checks


def test_aliases_and_six_fields() -> None:
    t = at(UTC, 2024, 1, 1, 10, 0)
    assert CronSchedule("@daily").next_after(t) == at(UTC, 2024, 1, 2)
    assert CronSchedule("@HOURLY").next_after(t) == at(UTC, 2024, 1, 1, 11)
    assert CronSchedule("*/10 * * * * *").next_after(t) == t + 10  # seconds first


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CronSchedule("61 * * * *"), "cron: invalid cron string '61 * * * *'"),
        (lambda: CronSchedule("bad"), "cron: 'bad' has 1 fields"),
        (lambda: CronSchedule("* * * * * * *"), "has 7 fields"),
        (lambda: CronSchedule("@often"), "cron: unknown alias '@often'"),
        (lambda: CronSchedule(""), "cron: expected a cron string"),
        (lambda: CronSchedule("0 0 30 2 *"), "cron: invalid cron string '0 0 30 2 *'"),
        (lambda: CronSchedule("* * * * *", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: IntervalSchedule(0), "interval: must be a positive number of seconds, got 0"),
        (lambda: IntervalSchedule(-5), "interval: must be a positive number"),
        (lambda: IntervalSchedule("x"), "interval: expected seconds or a timedelta"),  # type: ignore[arg-type]
        (lambda: IntervalSchedule(60, "yesterday"), "anchor: 'yesterday' is not an ISO 8601"),
    ],
)
def test_bad_schedules_raise_one_line_naming_the_field(make: object, message: str) -> None:
    with pytest.raises(DeploymentError) as info:
        make()  # type: ignore[operator]
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_specs_round_trip_and_unknown_fields_are_named() -> None:
    for schedule in (CronSchedule("0 2 * * *", "Europe/Paris"), IntervalSchedule(90, 1e9)):
        assert schedule_from_spec(schedule.spec()) == schedule
    with pytest.raises(DeploymentError, match=r"schedules\[0\]\.every: unknown field"):
        schedule_from_spec({"interval": 5, "every": 3}, "schedules[0]")
    with pytest.raises(DeploymentError, match="exactly one of cron or interval"):
        schedule_from_spec({"cron": "* * * * *", "interval": 5})


def test_naive_anchor_is_a_wall_time_of_the_schedule_zone() -> None:
    assert parse_instant("2024-06-01T12:00:00", tz="Europe/Paris") == at(UTC, 2024, 6, 1, 10)
    assert parse_instant("2024-06-01T12:00:00Z") == at(UTC, 2024, 6, 1, 12)


# ----------------------------------------------------------------------------- deployments


def test_merged_ticks_fire_each_instant_once() -> None:
    a, b = CronSchedule("*/10 * * * *"), IntervalSchedule(300)
    t = at(UTC, 2024, 1, 1)
    assert merged_ticks((a, b), t, t + 1200) == [t + 300, t + 600, t + 900, t + 1200]


def test_a_deployment_checks_its_fields_and_names_them() -> None:
    dep = Deployment("nightly", "etl", "flows.py:etl", schedules=(IntervalSchedule(60),))
    assert dep.full_name == "etl/nightly"
    key = "schedule:etl/nightly@1500000"
    assert dep.idempotency_key(1.5) == tick_key("etl/nightly", 1.5) == key
    with pytest.raises(DeploymentError, match="'etl/nightly': max_active_runs: must be"):
        Deployment("nightly", "etl", "flows.py:etl", max_active_runs=0)
    with pytest.raises(DeploymentError, match="name: must be non-empty text without '/'"):
        Deployment("a/b", "etl", "flows.py:etl")
    with pytest.raises(DeploymentError, match=r"entrypoint: expected path/file\.py:flow"):
        Deployment("x", "etl", "flows.py")
    assert split_full_name("etl/nightly") == ("etl", "nightly")
    with pytest.raises(DeploymentError, match="expected FLOW/NAME"):
        split_full_name("nightly/")
