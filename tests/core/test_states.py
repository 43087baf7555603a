"""The transition table: legal paths replay, illegal moves raise, final states stay final."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagflow.core.states import (
    FAILURE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    StateType,
    Transition,
    can_transition,
    next_state,
    replay,
)
from dagflow.errors import InvalidTransition

S = StateType
ALL = sorted(StateType, key=lambda s: s.value)

# The only ways out of a final state: resuming a run (back to PENDING), for a CRASHED task
# attempt, running it again on another worker or giving up on it, and for a completed task whose
# result was lost with its worker, computing it again (back to PENDING).
FINAL_EXITS = {
    S.COMPLETED: {S.PENDING},
    S.CACHED: {S.PENDING},
    S.FAILED: {S.PENDING},
    S.TIMED_OUT: {S.PENDING},
    S.UPSTREAM_FAILED: {S.PENDING},
    S.CANCELLED: {S.PENDING},
    S.CRASHED: {S.PENDING, S.RUNNING, S.FAILED},
}


@st.composite
def legal_histories(draw: st.DrawFn) -> list[Transition]:
    """A random walk through the table, starting from a run that does not exist yet."""
    state: StateType | None = None
    history: list[Transition] = []
    first = draw(st.sampled_from([S.SCHEDULED, S.PENDING]))
    steps = draw(st.integers(min_value=0, max_value=25))
    target = first
    for i in range(steps + 1):
        history.append(Transition(state, target, time=float(i), attempt=i))
        state = target
        exits = sorted(TRANSITIONS[state], key=lambda s: s.value)
        if not exits:
            break
        target = draw(st.sampled_from(exits))
    return history


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(StateType)
    for targets in TRANSITIONS.values():
        assert targets <= set(StateType)


@given(legal_histories())
def test_every_legal_path_replays_to_its_last_state(history: list[Transition]) -> None:
    assert replay(history) is history[-1].to_state


@given(legal_histories())
def test_next_state_returns_the_target_along_a_legal_path(history: list[Transition]) -> None:
    for step in history:
        assert next_state(step.from_state, step.to_state) is step.to_state


@given(st.sampled_from(ALL), st.sampled_from(ALL))
def test_illegal_moves_raise_naming_both_states(current: StateType, target: StateType) -> None:
    if target in TRANSITIONS[current]:
        assert can_transition(current, target)
        assert next_state(current, target) is target
    else:
        assert not can_transition(current, target)
        with pytest.raises(InvalidTransition, match=f"{current} -> {target}"):
            next_state(current, target)


@pytest.mark.parametrize("target", ALL)
def test_a_new_run_starts_scheduled_or_pending(target: StateType) -> None:
    if target in (S.SCHEDULED, S.PENDING):
        assert next_state(None, target) is target
    else:
        with pytest.raises(InvalidTransition):
            next_state(None, target)


@given(legal_histories(), st.sampled_from(ALL))
def test_replay_rejects_a_history_with_one_illegal_step(
    history: list[Transition], bad: StateType
) -> None:
    last = history[-1].to_state
    if bad in TRANSITIONS[last]:
        return
    with pytest.raises(InvalidTransition):
        replay([*history, Transition(last, bad, time=99.0)])


@pytest.mark.parametrize("state", sorted(FINAL_STATES, key=lambda s: s.value))
def test_final_states_have_no_exits_but_resume_and_crash_recovery(state: StateType) -> None:
    assert set(TRANSITIONS[state]) == FINAL_EXITS[state]


def test_final_and_failure_sets_agree_with_the_properties() -> None:
    assert set(FINAL_EXITS) == set(FINAL_STATES)
    assert FAILURE_STATES <= FINAL_STATES
    for state in StateType:
        assert state.is_final is (state in FINAL_STATES)
        assert state.is_failure is (state in FAILURE_STATES)
        assert not (state.is_success and state.is_failure)
        if state.is_success:
            assert state.is_final
    assert {s for s in StateType if s.is_success} == {S.COMPLETED, S.CACHED}


@pytest.mark.parametrize("state", [s for s in ALL if not s.is_final])
def test_every_unfinished_state_can_reach_a_final_state(state: StateType) -> None:
    seen, frontier = {state}, [state]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen & FINAL_STATES


def test_a_task_that_retries_then_succeeds_replays() -> None:
    path = [S.PENDING, S.RUNNING, S.RETRYING, S.RUNNING, S.RETRYING, S.RUNNING, S.COMPLETED]
    history = [
        Transition(prev, nxt, time=float(i))
        for i, (prev, nxt) in enumerate(zip([None, *path], path, strict=False))
    ]
    assert replay(history) is S.COMPLETED
    assert replay([]) is None


def test_states_read_as_their_names_and_records_are_frozen() -> None:
    assert str(S.TIMED_OUT) == "TIMED_OUT"
    assert S("RUNNING") is S.RUNNING
    step = Transition(S.PENDING, S.RUNNING, time=1.0, attempt=1, message="started")
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.to_state = S.FAILED  # type: ignore[misc]
