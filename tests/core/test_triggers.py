"""Trigger values and events: checked at definition, identities stable, cycles found."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagflow import triggers
from dagflow.core.events import Event, event_id, run_key, template_context
from dagflow.core.triggers import split_glob, trigger_cycle, trigger_from_spec
from dagflow.errors import DeploymentError


def test_split_glob_separates_the_directory_from_the_pattern() -> None:
    assert split_glob("inbox/*.csv") == ("inbox", "*.csv")
    assert split_glob("/data/in/**/*.json") == ("/data/in", "**/*.json")
    assert split_glob("s3://bucket/in/*.csv") == ("s3://bucket/in", "*.csv")
    assert split_glob("inbox") == ("inbox", "*")
    assert split_glob("*.csv") == (".", "*.csv")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: triggers.files("inbox/[ab.csv"), "'[' is never closed"),
        (lambda: triggers.files("inbox", "a**/*.csv"), "'**' must be a whole path part"),
        (lambda: triggers.files("inbox", "../*.csv"), "'..' part"),
        (lambda: triggers.files("inbox/*.csv", settle=-1), "settle: expected a number"),
        (lambda: triggers.files("in*box", "*.csv"), "has a wildcard"),
        (lambda: triggers.files("inbox/*.csv", name="bad name!"), "name: expected"),
        (lambda: triggers.flow_run("etl", "DONE"), "'DONE' is not a final state"),
        (lambda: triggers.flow_run("etl", []), "at least one final state"),
        (lambda: triggers.rows("sqlite:///x.db", "SELECT id FROM t"), "':watermark'"),
        (lambda: triggers.rows("nota url", "SELECT id FROM t WHERE id > :watermark"), "url:"),
        (lambda: triggers.webhook("has space"), "a webhook name is"),
        (lambda: triggers.webhook("ok", secret_env="1BAD"), "secret_env"),
    ],
)
def test_a_bad_trigger_is_one_line_naming_the_field(make: object, message: str) -> None:
    with pytest.raises(DeploymentError, match="trigger ") as info:
        make()  # type: ignore[operator]
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_specs_round_trip_and_names_are_stable() -> None:
    made = [
        triggers.files("inbox/*.csv", window=2.0),
        triggers.rows("sqlite:///shop.db", "SELECT id FROM orders WHERE id > :watermark"),
        triggers.flow_run("etl/nightly", ["COMPLETED", "failed"]),
        triggers.webhook("orders"),
    ]
    for trigger in made:
        assert trigger_from_spec(trigger.spec()) == trigger
    assert made[0].name == "files:inbox/*.csv"
    assert made[1].name == "rows:orders"
    assert made[2].states == ("COMPLETED", "FAILED")
    assert made[3].secret_env == "DAGFLOW_WEBHOOK_SECRET_ORDERS"
    assert trigger_from_spec({"files": "inbox/*.csv"}) == triggers.files("inbox/*.csv")


def test_a_bad_spec_names_the_place() -> None:
    with pytest.raises(DeploymentError, match=r"triggers\[2\]: give exactly one of"):
        trigger_from_spec({"pattern": "*.csv"}, "triggers[2]")
    with pytest.raises(DeploymentError, match=r"triggers\[0\]\.colour: unknown field"):
        trigger_from_spec({"files": "in/*.csv", "colour": 1}, "triggers[0]")


def _dep(full: str, *trigs: object) -> SimpleNamespace:
    return SimpleNamespace(full_name=full, flow_name=full.split("/")[0], triggers=trigs)


def test_a_cycle_of_flow_run_triggers_is_found_and_a_chain_is_not() -> None:
    a = _dep("a/x", triggers.flow_run("c"))
    b = _dep("b/x", triggers.flow_run("a"))
    c = _dep("c/x", triggers.flow_run("b/x"))
    assert trigger_cycle([a, b, c]) == ["a/x", "b/x", "c/x", "a/x"]
    chain = [_dep("a/x"), b, c]
    assert trigger_cycle(chain) is None


def test_event_ids_depend_on_identity_only_and_run_keys_on_ids() -> None:
    one = event_id("etl/in", "files:in/*.csv", "/in/a.csv|3|1.5")
    assert one == event_id("etl/in", "files:in/*.csv", "/in/a.csv|3|1.5")
    assert one != event_id("etl/in", "files:in/*.csv", "/in/a.csv|4|1.5")
    assert one != event_id("etl/other", "files:in/*.csv", "/in/a.csv|3|1.5")
    e1 = Event(one, "files", "/in", {"path": "/in/a.csv"}, 1.0)
    e2 = Event("b" * 32, "files", "/in", {"path": "/in/b.csv"}, 2.0)
    assert run_key([e1]) == f"event:{one}"
    assert run_key([e1, e2]) == run_key([e2, e1])
    ctx = template_context([e1, e2])
    assert ctx["event"]["paths"] == ["/in/a.csv", "/in/b.csv"]
    assert ctx["event"]["count"] == 2 and len(ctx["events"]) == 2


# ----------------------------------------------------------------------------- properties

_part = st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=8).filter(
    lambda p: p not in (".", "..")
)
_glob_part = st.sampled_from(["*.csv", "*", "data-?.json", "[ab]*.txt", "**"])


@settings(max_examples=200, deadline=None)
@given(
    base=st.lists(_part, min_size=1, max_size=4),
    pattern=st.lists(_glob_part, min_size=1, max_size=3),
    url=st.booleans(),
)
def test_split_glob_gives_back_the_directory_and_pattern_it_was_made_of(
    base: list[str], pattern: list[str], url: bool
) -> None:
    directory = ("s3://" if url else "/") + "/".join(base)
    glob = "/".join(pattern)
    assert split_glob(f"{directory}/{glob}") == (directory, glob)
    made = triggers.files(f"{directory}/{glob}")
    assert (made.path, made.pattern) == (directory, glob)
    assert trigger_from_spec(made.spec()) == made


@settings(max_examples=200, deadline=None)
@given(ids=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=6, unique=True))
def test_a_run_key_depends_on_the_set_of_events_only(ids: list[str]) -> None:
    events = [Event(event_id("f/d", "t", i), "files", "s", {"path": i}, 1.0) for i in ids]
    assert run_key(events) == run_key(list(reversed(events)))
    if len(events) > 1:
        assert run_key(events) != run_key(events[:-1])
