"""A chain: when a run of `extract` completes, `report` starts with the upstream run's id and
parameters.

    python examples/flow_run_trigger.py
    dagflow deployments run extract/daily -p day=2026-12-01    # then report/after-extract runs

A cycle of flow-run triggers (A starts B, B starts A) is refused when the deployments are
defined.
"""

from __future__ import annotations

from dagflow import flow, get_run_logger, serve, triggers


@flow
def extract(day: str = "today") -> int:
    return len(day)


@flow
def report(upstream: str, day: str) -> str:
    get_run_logger().info("report of %s from run %s", day, upstream)
    return day


if __name__ == "__main__":
    serve(
        extract.to_deployment("daily"),
        report.to_deployment(
            "after-extract",
            triggers=[triggers.flow_run("extract/daily", states=["COMPLETED"])],
            parameters={"upstream": "{{ event.run_id }}", "day": "{{ event.parameters.day }}"},
        ),
    )
