"""Deployments from Python, the command line and YAML: equivalent, and bad input is one line."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagflow.cli import main
from dagflow.core.schedules import CronSchedule, IntervalSchedule
from dagflow.entrypoints import load_flow
from dagflow.errors import DeploymentError
from dagflow.scheduler.definitions import build, load_yaml

FLOWS = """
from dagflow import flow

@flow
def etl(n: int, label: str = "x") -> int:
    return n

@flow
def simple() -> int:
    return 1
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "schedflows.py"
    path.write_text(FLOWS)
    return path


def yaml_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "dagflow.yaml"
    path.write_text(body)
    return path


def test_python_cli_and_yaml_build_the_same_deployment(flows: Path, tmp_path: Path) -> None:
    etl = load_flow(f"{flows}:etl")
    from_python = etl.to_deployment(  # type: ignore[attr-defined]
        "nightly",
        cron="0 2 * * *",
        interval=timedelta(minutes=5),
        timezone="Europe/Paris",
        parameters={"n": "3"},
        tags=["a"],
    )
    assert from_python.parameters == {"n": 3}  # validated and coerced once, kept as JSON
    assert from_python.entrypoint == f"{flows.resolve()}:etl"
    assert from_python.schedules == (
        CronSchedule("0 2 * * *", "Europe/Paris"),
        IntervalSchedule(300, timezone="Europe/Paris"),
    )
    [(from_yaml, flow)] = load_yaml(
        yaml_file(
            tmp_path,
            """
deployments:
  - name: nightly
    entrypoint: schedflows.py:etl
    parameters: {n: 3}
    tags: [a]
    schedules:
      - {cron: "0 2 * * *", timezone: Europe/Paris}
      - {interval: 300, timezone: Europe/Paris}
""",
        )
    )
    assert flow.name == "etl"
    assert from_yaml == from_python


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, "deployment 'etl/d': cron: invalid cron string '61 * * * *'"),
        ({"cron": ["* * * * *", "bad"]}, "deployment 'etl/d': cron[1]: 'bad' has 1 fields"),
        ({"cron": "@daily", "timezone": "Nowhere/City"}, "unknown time zone 'Nowhere/City'"),
        ({"interval": 0}, "deployment 'etl/d': interval: must be a positive number"),
        ({"interval": -3}, "deployment 'etl/d': interval: must be a positive number"),
        ({"interval": 5, "parameters": {"n": "x"}}, "deployment 'etl/d': parameters: n:"),
        ({"interval": 5, "parameters": {}}, "deployment 'etl/d': parameters: n: Field required"),
        ({"interval": 5, "parameters": {"n": 1, "m": 2}}, "parameters: m:"),
        ({"interval": 5, "parameters": {"n": 1}, "max_active_runs": 0}, "max_active_runs"),
    ],
)
def test_bad_python_deployments_name_the_deployment_and_the_field(
    flows: Path, options: dict[str, object], message: str
) -> None:
    etl = load_flow(f"{flows}:etl")
    with pytest.raises(DeploymentError) as info:
        build(etl, "d", **options)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "deployments:\n  - name: a\n    entrypoint: schedflows.py:simple\n    colour: red\n",
            "dagflow.yaml: deployments[0] (a): colour: unknown field",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: schedflows.py:simple\n"
            "    schedules:\n      - {cron: '* * * * *', every: 3}\n",
            "dagflow.yaml: deployments[0] (a): schedules[0].every: unknown field",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: schedflows.py:simple\n"
            "    schedules:\n      - {cron: '99 * * * *'}\n",
            "dagflow.yaml: deployments[0] (a): schedules[0].cron: invalid cron string",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: schedflows.py:simple\n"
            "    schedules:\n      - {interval: 0}\n",
            "deployments[0] (a): schedules[0].interval: must be a positive number",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: missing.py:simple\n",
            "dagflow.yaml: deployments[0] (a): entrypoint: no such file",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: schedflows.py:nope\n",
            "dagflow.yaml: deployments[0] (a): entrypoint: no flow 'nope'",
        ),
        (
            "deployments:\n  - name: b\n    entrypoint: schedflows.py:etl\n"
            "    parameters: {n: many}\n",
            "dagflow.yaml: deployments[0]: deployment 'etl/b': parameters: n:",
        ),
        ("deploymints: []\n", "dagflow.yaml: deploymints: unknown field"),
        ("deployments: [\n", "dagflow.yaml: not valid YAML (line 2)"),
    ],
)
def test_bad_yaml_is_one_line_naming_the_deployment_and_the_field(
    flows: Path, tmp_path: Path, body: str, message: str
) -> None:
    path = yaml_file(tmp_path, body)
    with pytest.raises(DeploymentError) as info:
        load_yaml(path)
    text = str(info.value).replace(str(path), "dagflow.yaml")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["schedflows.py:etl", "--cron", "61 * * * *", "-p", "n=1"], "cron: invalid cron string"),
        (["schedflows.py:etl", "--interval", "0", "-p", "n=1"], "interval: must be a positive"),
        (["schedflows.py:etl", "--cron", "@daily", "--timezone", "X/Y", "-p", "n=1"], "X/Y"),
        (["schedflows.py:etl", "--interval", "5", "-p", "n=abc"], "'etl/etl': parameters: n:"),
        (["schedflows.py:etl", "--interval", "5"], "parameters: n: Field required"),
        (["schedflows.py:etl", "--interval", "5", "-p", "zz=1"], "unknown parameter 'zz'"),
        (["missing.py:etl", "--interval", "5"], "no such file: missing.py"),
        (["schedflows.py:nope", "--interval", "5"], "no flow 'nope' in schedflows.py"),
        (["dagflow.yaml", "--cron", "* * * * *"], "--cron: deployment options apply to"),
    ],
)
def test_serve_refuses_bad_input_with_one_line_and_exit_2(
    flows: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(flows.parent)
    yaml_file(flows.parent, "deployments: []\n")
    result = CliRunner().invoke(main, ["serve", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_the_real_command_prints_no_traceback(flows: Path) -> None:
    dagflow = Path(sys.executable).with_name("dagflow")
    proc = subprocess.run(
        [str(dagflow), "serve", "schedflows.py:etl", "--cron", "* * * *", "-p", "n=1"],
        cwd=flows.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "Error: deployment 'etl/etl': cron: '* * * *' has 4 fields; expected 5 (minute hour day "
        "month weekday) or 6 (second first), or an alias such as @daily"
    )
