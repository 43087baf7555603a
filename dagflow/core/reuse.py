"""What earlier executions of a run's tasks left, for the next one to reuse: results and attempts.

A run resumed (`dagflow resume`) or retried (a flow's `retries`) runs its body again, under new
Dask keys but the same logical keys (`task[n]`). For each task call, `Earlier` says how its last
execution ended: where its persisted result is and what it was computed from (its identity: the
task's code and inputs, see `engine/identity.py`), and how many attempts it used. The wrapper
reuses a result only when the new call's identity is the same (or the user forces reuse), and
continues the attempt count, so the retry budget does not start again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dagflow.core.keys import parse_key, slug_of
from dagflow.core.states import StateType

REUSABLE = (StateType.COMPLETED, StateType.CACHED)
# What a task run's history says when a resume or flow retry reused its result, or did not.
REUSED = "result reused from an earlier attempt"
NOT_REUSED = "its earlier result was not reused: the task's code or inputs changed"


@dataclass(frozen=True, slots=True)
class ReuseSummary:
    """What a resumed (or retried) run did with its earlier results: reused, re-ran because the
    task's code or inputs changed (their logical keys), re-ran for want of one (counts)."""

    reused: int
    changed: tuple[str, ...]
    ran_again: int

    @classmethod
    def of(cls, histories: Iterable[tuple[str, Iterable[str]]]) -> ReuseSummary:
        """From each task run's (logical key, messages of its history)."""
        reused, changed, ran = 0, [], 0
        for key, messages in histories:
            said = set(messages)
            if REUSED in said:
                reused += 1
            elif NOT_REUSED in said:
                changed.append(key)
            else:
                ran += 1
        return cls(reused, tuple(changed), ran)

    def text(self, limit: int = 5) -> str:
        """`reused 3 task results; re-ran 1 whose code or inputs changed (add[0]); ...`."""
        parts = [f"reused {self.reused} task result{'s' if self.reused != 1 else ''}"]
        if self.changed:
            shown = ", ".join(self.changed[:limit]) + (", ..." if len(self.changed) > limit else "")
            parts.append(f"re-ran {len(self.changed)} whose code or inputs changed ({shown})")
        if self.ran_again:
            parts.append(f"ran {self.ran_again} without a result to reuse")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Earlier:
    """How a task call's latest earlier execution ended."""

    attempts: int
    location: str | None = None  # a persisted result, when it completed and kept one
    serializer: str | None = None
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """Earlier executions by task slug and call index.

    `force` reuses results whatever changed. `spent_retries`: the earlier attempts count against
    a task's retries (a resumed run continues where it stopped); a flow's own retry gives its
    tasks their retries again, while their attempt numbers still continue.
    """

    earlier: dict[str, dict[int, Earlier]] = field(default_factory=dict)
    force: bool = False
    spent_retries: bool = True

    def for_task(self, slug: str) -> dict[int, Earlier]:
        return self.earlier.get(slug, {})

    def updated(self, newer: ResumePlan) -> ResumePlan:
        """This plan with `newer`'s entries taking over (attempts only grow)."""
        merged = {slug: dict(calls) for slug, calls in self.earlier.items()}
        for slug, calls in newer.earlier.items():
            mine = merged.setdefault(slug, {})
            for index, e in calls.items():
                before = mine.get(index)
                used = max(e.attempts, before.attempts if before else 0)
                mine[index] = Earlier(used, e.location, e.serializer, e.identity)
        return ResumePlan(merged, self.force, newer.spent_retries)

    def attempts(self) -> dict[str, int]:
        """Attempts used so far, by logical key (what the run machine continues from)."""
        return {
            f"{slug}[{index}]": e.attempts
            for slug, calls in self.earlier.items()
            for index, e in calls.items()
        }


Row = tuple[str, StateType, int, str | None, str | None, str | None]


def plan_from(rows: Iterable[Row], force: bool = False, spent_retries: bool = True) -> ResumePlan:
    """A plan from rows `(dask key text, state, attempts, location, serializer, identity)`.

    The latest flow attempt's row of each task wins; attempts are the most any row used.
    """
    earlier: dict[str, dict[int, tuple[int, Earlier]]] = {}
    for key, state, attempts, location, serializer, identity in rows:
        name, index = parse_key(key)
        token = name.rpartition("-")[2]
        flow_attempt = int(token[8:]) if token[8:].isdigit() else 0
        calls = earlier.setdefault(slug_of(name), {})
        seen = calls.get(index)
        used = max(attempts, seen[1].attempts if seen else 0)
        if seen is not None and seen[0] > flow_attempt:
            calls[index] = (seen[0], Earlier(used, *_kept(seen[1])))
            continue
        kept = (location, serializer or _serializer(location), identity)
        result = kept if state in REUSABLE and location else (None, None, None)
        calls[index] = (flow_attempt, Earlier(used, *result))
    return ResumePlan(
        {slug: {i: e for i, (_, e) in calls.items()} for slug, calls in earlier.items()},
        force,
        spent_retries,
    )


def _kept(e: Earlier) -> tuple[str | None, str | None, str | None]:
    return e.location, e.serializer, e.identity


def _serializer(location: str | None) -> str | None:
    if location is None:
        return None
    return "json" if location.endswith(".json") else "cloudpickle"
