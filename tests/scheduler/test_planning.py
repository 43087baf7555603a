"""The tick planner: what to create, from an instant passed in (no clock, no database)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dagflow.core.deployments import Deployment
from dagflow.core.schedules import CronSchedule, IntervalSchedule
from dagflow.scheduler.planning import Planner, PlanOptions

T0 = 1_800_000_000.0  # a multiple of 60: on every minute grid


def dep(every: float = 60.0, catchup: bool = False, cron: str | None = None) -> Deployment:
    schedule = CronSchedule(cron) if cron else IntervalSchedule(every, 0.0)
    return Deployment("d", "f", "f.py:f", schedules=(schedule,), catchup=catchup)


def test_a_new_deployment_plans_ahead_from_now_not_the_past() -> None:
    planner, d = Planner(PlanOptions(horizon_seconds=3600, horizon_ticks=5)), dep()
    planner.start(d, None, T0 + 30)
    assert planner.due(d, T0 + 30) == [T0 + 60 * i for i in range(1, 6)]
    assert planner.due(d, T0 + 31) == []  # nothing new before the first planned tick is due
    assert planner.next_look() == T0 + 60
    assert planner.due(d, T0 + 60) == [T0 + 360]  # keeps five ahead


def test_a_far_tick_is_created_even_beyond_the_horizon() -> None:
    planner, d = Planner(PlanOptions(horizon_seconds=60, horizon_ticks=5)), dep(cron="0 2 * * *")
    planner.start(d, None, T0)
    (first,) = planner.due(d, T0)
    assert first == CronSchedule("0 2 * * *").next_after(T0)
    assert planner.due(d, T0 + 10) == []
    assert planner.next_look() == first


def test_after_downtime_without_catchup_only_the_latest_missed_tick_runs() -> None:
    planner, d = Planner(PlanOptions(horizon_ticks=2)), dep(catchup=False)
    planner.start(d, T0, T0 + 3 * 86400 + 30)  # last recorded tick T0, down for three days
    assert planner.due(d, T0 + 3 * 86400 + 30) == [
        T0 + 3 * 86400,
        T0 + 3 * 86400 + 60,
        T0 + 3 * 86400 + 120,
    ]


def test_after_downtime_with_catchup_every_missed_tick_runs_oldest_first() -> None:
    planner, d = Planner(PlanOptions(horizon_ticks=1, catchup_cap=100)), dep(catchup=True)
    planner.start(d, T0, T0 + 250)
    assert planner.due(d, T0 + 250) == [T0 + 60, T0 + 120, T0 + 180, T0 + 240, T0 + 300]


def test_catchup_is_created_in_slices_of_the_cap() -> None:
    planner, d = Planner(PlanOptions(horizon_ticks=1, catchup_cap=3)), dep(catchup=True)
    planner.start(d, T0, T0 + 400)
    got = planner.due(d, T0 + 400)
    assert got == [T0 + 60, T0 + 120, T0 + 180]
    assert planner.next_look() == T0 + 400  # at once
    assert planner.due(d, T0 + 400) == [T0 + 240, T0 + 300, T0 + 360]
    assert planner.due(d, T0 + 400) == [T0 + 420]  # then ahead as usual


def test_a_paused_deployment_skips_its_ticks() -> None:
    planner, d = Planner(PlanOptions(horizon_ticks=1)), dep(catchup=True)
    planner.start(d, None, T0)
    assert planner.due(d, T0) == [T0 + 60]
    planner.skip_to(d, T0 + 500)
    assert planner.due(d, T0 + 500) == [T0 + 540]


@settings(max_examples=50, deadline=None)
@given(looks=st.lists(st.floats(min_value=0.0, max_value=300.0), min_size=1, max_size=40))
def test_looking_at_any_instants_plans_every_tick_once_in_order(looks: list[float]) -> None:
    """With catchup on, the ticks planned over any sequence of looks are exactly the schedule's
    ticks, each once, oldest first."""
    planner, d = Planner(PlanOptions(horizon_seconds=120, horizon_ticks=3)), dep(7, True)
    planner.start(d, None, T0)
    planned: list[float] = []
    now = T0
    for step in looks:
        now += step
        planned += planner.due(d, now)
    assert planned == sorted(set(planned))
    expected = d.ticks(T0, planned[-1]) if planned else []
    assert planned == expected
    assert not planned or planned[-1] > now or planner.next_look() <= now + 7


def test_a_restart_counts_the_ticks_already_recorded_ahead() -> None:
    planner, d = Planner(PlanOptions(horizon_ticks=5)), dep()
    planner.start(d, T0 + 300, T0 + 30)  # an earlier process recorded up to T0+300
    assert planner.due(d, T0 + 30) == []  # five are ahead already
    assert planner.due(d, T0 + 60) == [T0 + 360]
