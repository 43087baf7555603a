"""`@task` and `@flow`: options validated at decoration, copies, and tasks called outside flows."""

from __future__ import annotations

import pickle
import time
from datetime import timedelta
from typing import Any

import cloudpickle
import pytest

from dagflow import DefinitionError, Flow, Task, TaskTimeout, flow, task


@task(retries=2, retry_delay=[0.0], tags=["db"], resources={"GPU": 1}, priority=3)
def extract(table: str) -> str:
    """Read one table."""
    return table.upper()


@flow(name="nightly", version="1.2", cluster="local-threads")
def nightly(n: int = 1) -> int:
    """The nightly load."""
    return n


# -- options are checked where the decorator is written --------------------------------------------

TASK_OPTIONS = [
    ({"retries": -1}, "retries must be >= 0"),
    ({"timeout": "x"}, "timeout must be seconds"),
    ({"resources": {"GPU": -1}}, "resources['GPU'] must be a positive number"),
    ({"resources": {"GPU": "one"}}, "resources['GPU'] must be a positive number"),
    ({"resources": ["GPU"]}, "resources must be a dict"),
    ({"tags": "db"}, "tags must be a list of strings"),
    ({"tags": ["db", ""]}, "tags must be non-empty strings"),
    ({"priority": 1.5}, "priority must be an int"),
    ({"priority": True}, "priority must be an int"),
    ({"log_prints": "yes"}, "log_prints must be True or False"),
]


@pytest.mark.parametrize(("options", "words"), TASK_OPTIONS)
def test_bad_task_options_raise_at_decoration_naming_the_task(
    options: dict[str, Any], words: str
) -> None:
    with pytest.raises(DefinitionError) as info:

        @task(**options)
        def load() -> None: ...

    assert str(info.value).startswith("task 'load': ")
    assert words in str(info.value)


def test_a_task_option_error_names_the_task_by_its_given_name() -> None:
    with pytest.raises(DefinitionError, match=r"^task 'Load orders': retries"):
        task(name="Load orders", retries=-1)(lambda: None)


FLOW_OPTIONS = [
    ({"retries": -1}, "retries must be >= 0"),
    ({"timeout": "x"}, "timeout must be seconds"),
    ({"retry_delay": -3}, "retry_delay"),
    ({"version": 2}, "version must be a string"),
    ({"description": ["x"]}, "description must be a string"),
    ({"cluster": ""}, "cluster must be a name"),
    ({"cluster": 8786}, "cluster must be a name"),
    ({"log_prints": 1}, "log_prints must be True or False"),
    ({"validate_parameters": "no"}, "validate_parameters must be True or False"),
]


@pytest.mark.parametrize(("options", "words"), FLOW_OPTIONS)
def test_bad_flow_options_raise_at_decoration_naming_the_flow(
    options: dict[str, Any], words: str
) -> None:
    with pytest.raises(DefinitionError) as info:

        @flow(**options)
        def daily() -> None: ...

    assert str(info.value).startswith("flow 'daily': ")
    assert words in str(info.value)


@pytest.mark.parametrize("name", ["", "   ", 3])
def test_names_must_be_non_empty_strings(name: Any) -> None:
    with pytest.raises(DefinitionError, match="task name must be a non-empty string"):
        task(name=name)(lambda: None)
    with pytest.raises(DefinitionError, match="flow name must be a non-empty string"):
        flow(name=name)(lambda: None)


@pytest.mark.parametrize("decorator", [task, flow])
def test_unknown_options_are_named_with_the_valid_ones(decorator: Any) -> None:
    kind = decorator.__name__
    with pytest.raises(DefinitionError) as info:
        decorator(retry=3, colour="red")
    message = str(info.value)
    assert message.startswith(f"@{kind} got unknown option(s) colour, retry; valid options: ")
    assert "retries" in message


@pytest.mark.parametrize("decorator", [task, flow])
@pytest.mark.parametrize("thing", [3, "extract", [print]])
def test_only_functions_can_be_decorated(decorator: Any, thing: Any) -> None:
    kind = decorator.__name__
    with pytest.raises(DefinitionError, match=f"@{kind} must decorate a function"):
        decorator(thing)
    with pytest.raises(DefinitionError, match=f"@{kind} must decorate a function"):
        decorator(retries=1)(thing)


def test_a_task_or_flow_cannot_be_decorated_twice() -> None:
    with pytest.raises(DefinitionError, match="already a task or flow"):
        task(extract)
    with pytest.raises(DefinitionError, match="already a task or flow"):
        flow(extract)


def test_async_functions_are_refused_with_a_hint() -> None:
    with pytest.raises(DefinitionError, match="async functions are not supported yet"):

        @task
        async def fetch() -> None: ...


# -- what the decorators return ----------------------------------------------------------------


def test_both_decorator_forms_give_typed_objects_that_keep_the_function() -> None:
    def plain(x: int) -> int:
        """Doc."""
        return x + 1

    for made in (task(plain), task()(plain), task(retries=1)(plain)):
        assert isinstance(made, Task)
        assert made.fn is plain
        assert made.__wrapped__ is plain
        assert made.__name__ == "plain" and made.__doc__ == "Doc."
        assert made.name == "plain"
    assert isinstance(flow(plain), Flow)
    assert flow(plain).fn is plain


def test_options_are_kept_validated_and_normalised() -> None:
    options = extract.options
    assert options.name == "extract"
    assert options.retry.retries == 2
    assert options.tags == ("db",)
    assert options.resources == (("GPU", 1.0),)
    assert options.priority == 3
    assert task(timeout=timedelta(minutes=1))(lambda: None).options.timeout == 60.0


def test_flow_metadata_comes_from_options_and_docstring() -> None:
    assert nightly.name == "nightly"
    assert nightly.version == "1.2"
    assert nightly.description == "The nightly load."
    assert nightly.options.cluster == "local-threads"
    assert flow(description="Given.")(nightly.fn).description == "Given."


def test_with_options_returns_a_validated_copy() -> None:
    quick = extract.with_options(retries=0, name="extract quickly")
    assert quick is not extract
    assert quick.options.retry.retries == 0
    assert quick.name == "extract quickly"
    assert quick.fn is extract.fn
    assert quick.options.tags == ("db",)  # untouched options carry over
    assert extract.options.retry.retries == 2 and extract.name == "extract"
    with pytest.raises(DefinitionError, match=r"^task 'extract': retries must be >= 0"):
        extract.with_options(retries=-1)
    with pytest.raises(DefinitionError, match=r"^task 'extract': unknown option"):
        extract.with_options(retry=1)


def test_flow_with_options_returns_a_validated_copy() -> None:
    other = nightly.with_options(cluster="local", version="2")
    assert other is not nightly
    assert (other.options.cluster, other.version) == ("local", "2")
    assert (nightly.options.cluster, nightly.version) == ("local-threads", "1.2")
    with pytest.raises(DefinitionError, match=r"^flow 'nightly': timeout"):
        nightly.with_options(timeout="soon")
    with pytest.raises(DefinitionError, match=r"^flow 'nightly': unknown option"):
        nightly.with_options(workers=3)


def test_a_task_survives_the_trip_to_a_worker_with_its_options() -> None:
    # the module name `extract` is the Task, so cloudpickle ships the function by value
    again = pickle.loads(cloudpickle.dumps(extract))
    assert isinstance(again, Task)
    assert again.options == extract.options
    assert again.fn("x") == "X"


# -- a task called outside a flow is a plain call with retries ----------------------------------


def test_a_task_called_outside_a_flow_runs_here_and_returns_its_value() -> None:
    assert extract("orders") == "ORDERS"
    assert extract.fn("orders") == "ORDERS"
    assert extract.map(["a", "b"]) == ["A", "B"]


def test_outside_a_flow_a_task_retries_until_it_succeeds() -> None:
    attempts: list[int] = []

    @task(retries=2, retry_delay=0.01)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OSError("not yet")
        return "ok"

    assert flaky() == "ok"
    assert len(attempts) == 3


def test_outside_a_flow_the_last_error_is_raised_as_is() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def broken() -> None:
        attempts.append(1)
        raise KeyError(f"attempt {len(attempts)}")

    with pytest.raises(KeyError, match="attempt 2"):
        broken()
    assert len(attempts) == 2


def test_outside_a_flow_only_listed_errors_are_retried() -> None:
    attempts: list[int] = []

    @task(retries=3, retry_on=(OSError,))
    def picky() -> None:
        attempts.append(1)
        raise ValueError("not an OSError")

    with pytest.raises(ValueError):
        picky()
    assert len(attempts) == 1


def test_outside_a_flow_a_timeout_raises_task_timeout() -> None:
    @task(timeout=0.05)
    def slow() -> None:
        time.sleep(1)

    with pytest.raises(TaskTimeout, match=r"task 'slow' timed out after 0\.05s"):
        slow()


def test_wait_for_is_accepted_and_ignored_outside_a_flow() -> None:
    assert extract("x", wait_for=[1]) == "X"  # type: ignore[call-arg]
