"""What tasks print and log, however big or strange, is recorded bounded and never loses the run.

Real flows on the in-process cluster and on worker processes (text crosses the network there),
recorded in a real SQLite file and read back.
"""

from __future__ import annotations

import os

import pytest

from dagflow import StateType, flow, get_flow_run, get_run_logger, task
from dagflow.errors import DefinitionError

pytestmark = pytest.mark.cluster
S = StateType


@task
def report(i: int) -> str:
    name = os.fsdecode(b"report-\xff.csv")  # what listing a directory with a bad name gives
    get_run_logger().info("writing %s", name)
    return name


@flow
def reports(n: int) -> list[str]:
    return [f.result() for f in report.map(range(n))]


@pytest.mark.parametrize("cluster", ["local-threads", "local"])
def test_undecodable_text_in_task_logs_loses_nothing(
    cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFLOW_CLUSTER", cluster)
    run = reports.run(n=5)
    assert run.state is S.COMPLETED, run.error
    recorded = get_flow_run(run.id)
    assert recorded.state is S.COMPLETED
    assert len(recorded.task_runs) == 5
    assert all(tr.state is S.COMPLETED for tr in recorded.task_runs)
    lines = [ev.message for ev in recorded.logs() if ev.task_name == "report"]
    assert lines == ["writing report-\\udcff.csv"] * 5


def test_a_name_too_long_to_store_is_refused_where_it_is_written() -> None:
    with pytest.raises(DefinitionError, match="flow name must be at most 200 characters"):
        flow(name="P" * 300)(lambda: None)
    with pytest.raises(DefinitionError, match="task name must be at most 200 characters"):
        task(name="T" * 300)(lambda: None)


@task(log_prints=True)
def chatty(lines: int, line_size: int) -> int:
    print("x" * 20_000)  # one huge line
    for i in range(lines):
        print(f"line {i} " + "y" * line_size)
    return lines


@flow
def noisy(lines: int, line_size: int) -> int:
    return chatty(lines, line_size).result()


def test_task_logs_are_bounded_per_record_and_per_task(
    monkeypatch: pytest.MonkeyPatch, threads_cluster: str
) -> None:
    monkeypatch.setenv("DAGFLOW_LOG_MAX_RECORD", "1000")
    monkeypatch.setenv("DAGFLOW_LOG_MAX_PER_TASK", "20000")
    run = noisy.run(lines=5_000, line_size=90)
    assert run.state is S.COMPLETED and run.result() == 5_000
    messages = [ev.message for ev in get_flow_run(run.id).logs() if ev.task_name == "chatty"]
    assert len(messages[0]) == 1000 and messages[0].endswith("characters cut]")
    assert sum(len(m) for m in messages[:-1]) <= 20_000 + 1000
    assert "log records" in messages[-1] and "dropped" in messages[-1]
    dropped = int(messages[-1].split("] ")[1].split(" ")[0].replace(",", ""))
    assert dropped + len(messages) - 2 == 5_000  # every line is either kept or counted


def test_driver_memory_keeps_a_bounded_number_of_records(threads_cluster: str) -> None:
    from dagflow.core.machine import LOGS_IN_MEMORY

    @task
    def many_lines(n: int) -> None:
        logger = get_run_logger()
        for i in range(n):
            logger.info("record %d", i)

    @flow
    def very_chatty(n: int) -> None:
        many_lines(n)

    n = 2 * LOGS_IN_MEMORY + 500
    run = very_chatty.run(n=n)
    assert run.state is S.COMPLETED
    assert len(run.log_records) <= 2 * LOGS_IN_MEMORY
    assert len(run.logs()) == n  # the history has them all
