"""Triggers on deployments from Python and YAML: checked at definition, one line when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagflow import triggers
from dagflow.core.events import Event
from dagflow.entrypoints import load_flow
from dagflow.errors import DeploymentError
from dagflow.scheduler import templates
from dagflow.scheduler.definitions import check_cycles, load_yaml

FLOWS = """
from dagflow import flow

@flow
def ingest(path: str, size: int = 0) -> str:
    return path

@flow
def report(upstream: str) -> str:
    return upstream
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "trigflows.py"
    path.write_text(FLOWS)
    return path


def test_templated_parameters_are_checked_when_the_event_fires(flows: Path) -> None:
    ingest = load_flow(f"{flows}:ingest")
    dep = ingest.to_deployment(  # type: ignore[attr-defined]
        "inbox",
        triggers=[triggers.files(str(flows.parent / "in/*.csv"))],
        parameters={"path": "{{ event.path }}", "size": "{{ event.size }}"},
    )
    event = Event("e1", "files", "in", {"path": "/in/a.csv", "size": 7}, 1.0)
    from dagflow.core.events import template_context

    params = templates.render(dep.parameters, template_context([event]))
    assert params == {"path": "/in/a.csv", "size": 7}
    assert ingest.validate_parameters(params) == {"path": "/in/a.csv", "size": 7}
    with pytest.raises(DeploymentError, match=r"parameters.path: .*'paht'.*the event has: "):
        templates.render({"path": "{{ event.paht }}"}, template_context([event]))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"parameters": {"path": "{{ event.path"}}, "template '{{ event.path'"),
        ({"parameters": {"path": "{{ event.path }}"}, "triggers": []}, "needs an event"),
        ({"parameters": {"path": "{{ event.path }}"}, "cron": "@daily"}, "schedule ticks"),
        ({"parameters": {"path": "x", "size": "big"}}, "parameters: size:"),
        ({"triggers": [triggers.flow_run("ingest")]}, "would start itself again"),
        ({"triggers": [triggers.files("nosuch://b/*.csv")]}, "unknown fsspec protocol"),
        ({"triggers": [triggers.files("a/*.csv"), triggers.files("a/*.csv")]}, "two triggers"),
        ({"triggers": ["inbox/*.csv"]}, "expected triggers"),
    ],
)
def test_a_bad_trigger_or_template_names_the_deployment(
    flows: Path, options: dict[str, object], message: str
) -> None:
    ingest = load_flow(f"{flows}:ingest")
    options = {"triggers": [triggers.files("in/*.csv")], **options}
    with pytest.raises(DeploymentError, match=r"^deployment 'ingest/d': ") as info:
        ingest.to_deployment("d", **options)  # type: ignore[attr-defined]
    assert message in str(info.value)


def test_yaml_triggers_resolve_paths_from_the_file_and_refuse_cycles(
    flows: Path, tmp_path: Path
) -> None:
    good = tmp_path / "dagflow.yaml"
    good.write_text(
        f"""
deployments:
  - name: inbox
    entrypoint: {flows.name}:ingest
    parameters: {{path: "{{{{ event.path }}}}"}}
    triggers:
      - files: in/*.csv
        settle: 0.2
  - name: after
    entrypoint: {flows.name}:report
    parameters: {{upstream: "{{{{ event.run_id }}}}"}}
    triggers:
      - flow_run: ingest
"""
    )
    (dep, _), (after, _) = load_yaml(good)
    assert dep.triggers[0].path == str(tmp_path / "in")  # type: ignore[union-attr]
    assert dep.triggers[0].settle == 0.2  # type: ignore[union-attr]
    assert after.triggers == (triggers.flow_run("ingest"),)
    loop = tmp_path / "loop.yaml"
    loop.write_text(
        good.read_text()
        + """    # (the second deployment)
  - name: back
    entrypoint: trigflows.py:ingest
    parameters: {path: "{{ event.run_id }}"}
    triggers:
      - flow_run: report
"""
    )
    with pytest.raises(DeploymentError, match=r"a cycle of flow-run triggers: ingest/back"):
        load_yaml(loop)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"""
deployments:
  - name: inbox
    entrypoint: {flows.name}:ingest
    triggers:
      - files: in/[x.csv
"""
    )
    with pytest.raises(DeploymentError, match=r"deployments\[0\] \(inbox\): triggers\[0\]: "):
        load_yaml(bad)


def test_check_cycles_passes_a_chain(flows: Path) -> None:
    ingest = load_flow(f"{flows}:ingest")
    report = load_flow(f"{flows}:report")
    a = ingest.to_deployment("a", parameters={"path": "x"})  # type: ignore[attr-defined]
    b = report.to_deployment(  # type: ignore[attr-defined]
        "b", triggers=[triggers.flow_run("ingest")], parameters={"upstream": "{{ event.run_id }}"}
    )
    check_cycles([a, b])


def test_the_trigger_examples_define_valid_deployments() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    loaded = load_yaml(examples / "triggers.yaml")
    kinds = [dep.triggers[0].kind for dep, _ in loaded]
    assert kinds == ["files", "rows", "flow_run", "webhook"]
    for name in ("file_trigger", "rows_trigger", "flow_run_trigger", "webhook_trigger"):
        assert (examples / f"{name}.py").exists()
