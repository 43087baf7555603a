"""The `dagflow` command.

The real console script runs in a subprocess for what only a process shows: a run's output, exit
codes, Ctrl-C, and that bad input ends in one line without a traceback. Each `dagflow run` starts
its own in-process cluster (`--cluster local-threads`), so there are few of them; the other cases
invoke the same click command in this process (`CliRunner`), which is much faster.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cloudpickle
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import dagflow as package
from dagflow import StateType
from dagflow.cli import main
from dagflow.cli.progress import RunProgress
from dagflow.core.runs import FlowRunStarted, StateEvent

Invoke = Callable[..., Result]

DAGFLOW = shutil.which("dagflow", path=os.path.dirname(sys.executable))
TIMEOUT = 180  # generous: the machine is shared and each process starts a cluster

FLOWS = """
from dagflow import flow, task, get_run_logger

@task
def add(x: int, y: int) -> int:
    get_run_logger().info("adding %s and %s", x, y)
    return x + y

@task
def boom(x: int) -> int:
    raise ValueError(f"bad value {x}")

@flow(description="Adds things.", version="1.2")
def adder(n: int, items: list[int] = [1], label: str = "x") -> dict:
    return {"total": add(n, sum(items)).result(), "label": label}

@flow
def failing() -> int:
    return boom(7)

@task(retries=1, retry_delay=0.1)
def flaky(marker: str) -> str:
    import os
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError("first attempt fails")
    get_run_logger().info("loaded")
    return "ok"

@flow
def ordered(marker: str) -> str:
    value = flaky(marker).result()
    get_run_logger().info("done")
    return value

not_a_flow = 42
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "myflows.py"
    path.write_text(FLOWS)
    return path


def dagflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `dagflow` script."""
    assert DAGFLOW, "the dagflow console script is not installed next to this Python"
    return subprocess.run(
        [DAGFLOW, *args],
        cwd=cwd,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """Run the `dagflow` click command in this process; undo its imports and logging setup."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    logger = logging.getLogger("dagflow")
    monkeypatch.setattr(logger, "handlers", list(logger.handlers))
    monkeypatch.setattr(logger, "propagate", logger.propagate)
    level = logger.level
    before = set(sys.modules)
    by_value = set(cloudpickle.list_registry_pickle_by_value())

    dirs: list[str] = []

    def run(*args: str, cwd: Path) -> Result:
        monkeypatch.chdir(cwd)
        dirs.append(str(cwd))
        return CliRunner().invoke(main, list(args), prog_name="dagflow")

    yield run
    logger.setLevel(level)  # setLevel, not setattr: it also clears the loggers' level caches
    for name in set(cloudpickle.list_registry_pickle_by_value()) - by_value:
        cloudpickle.unregister_pickle_by_value(sys.modules[name])
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", None)).startswith(tuple(dirs)):
            del sys.modules[name]


def assert_one_line_error(stderr: str, code: int, *fragments: str) -> None:
    """Exit 2 and exactly one `Error: ...` line naming every fragment, no traceback."""
    assert code == 2, (code, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------- running


def test_run_prints_run_id_progress_logs_state_and_result(flows: Path) -> None:
    proc = dagflow(
        "run",
        f"{flows.name}:adder",
        "--cluster",
        "local-threads",
        "--params-json",
        json.dumps({"n": 10, "items": [5], "label": "from-json"}),
        "--param",
        "n=3",  # a string the parameter model coerces to an int; overrides the JSON
        "--param",
        "items=[1,2]",  # not a list as a string: parsed as JSON
        cwd=flows.parent,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out, proc.stderr)
    started = next(line for line in out.splitlines() if line.startswith("flow 'adder' run "))
    run_id = started.split()[3]
    assert len(run_id) == 32
    assert "dashboard: http" in out
    assert f"run {run_id} RUNNING" in out
    assert f"run {run_id[:12]} COMPLETED" in out
    assert "1/1 done, 0 failed" in out
    assert "result: {'label': 'from-json', 'total': 6}" in out
    assert "[add] adding 3 and 3" in out  # the task's log line, with the task's name
    assert "Traceback" not in out + proc.stderr


def test_failing_task_exits_1_with_the_error(flows: Path) -> None:
    proc = dagflow("run", f"{flows}:failing", "--cluster", "local-threads", cwd=flows.parent)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "FAILED" in proc.stdout, output
    assert "0/1 done, 1 failed" in proc.stdout, output
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, output
    assert "ended FAILED" in errors[0]
    assert "ValueError: bad value 7" in errors[0]
    assert "ValueError: ValueError" not in output
    assert "Traceback" not in output
    # what to do next, last: where to look, and that a resume would run every task again
    after = proc.stderr[proc.stderr.index("Error: ") :].splitlines()[1:]
    assert after[0].startswith("next: dagflow runs show ")
    assert any("dagflow logs " in line for line in after)
    resume = next(line for line in after if "dagflow resume " in line)
    assert "reruns its task: none persisted" in resume
    assert after[-1].strip() == "(@flow(persist_results=True) keeps them)"


def test_output_in_a_pipe_is_in_time_order_with_retries_shown(flows: Path) -> None:
    marker = flows.parent / "marker"
    proc = dagflow(
        "run", f"{flows.name}:ordered", "-p", f"marker={marker}", "--cluster", "local-threads",
        cwd=flows.parent,
    )  # fmt: skip
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    retry = out.index("RETRYING flaky[0]")
    assert "OSError: first attempt fails (retry 1/1 in 0.10s)" in out[retry:]
    assert retry < out.index("[flaky] loaded") < out.index("[flow] done")
    assert "\x1b[" not in out  # no colours and no cursor moves in a pipe


@pytest.mark.slow
def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path: Path) -> None:
    path = tmp_path / "sleepy.py"
    path.write_text(
        textwrap.dedent(
            """
            import time
            from dagflow import flow, task, get_run_logger

            @task
            def nap(seconds: float) -> float:
                get_run_logger().info("napping")
                time.sleep(seconds)
                return seconds

            @flow
            def sleepy() -> float:
                return nap(120.0)
            """
        )
    )
    out_path = tmp_path / "out.txt"
    assert DAGFLOW
    with out_path.open("w") as out:
        proc = subprocess.Popen(
            [DAGFLOW, "run", "sleepy.py:sleepy", "--cluster", "local-threads"],
            cwd=tmp_path,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        # RUNNING: the run started; the task's log line: the caller is now waiting on the run.
        while not ("RUNNING" in out_path.read_text() and "[nap] napping" in out_path.read_text()):
            assert proc.poll() is None, out_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=90)
        output = out_path.read_text()
        assert code == 130, output
        assert "CANCELLED" in output
        assert "1 cancelled" in output
        assert "Traceback" not in output
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- bad input: one line, exit 2


def test_bad_param_in_the_real_script(flows: Path) -> None:
    proc = dagflow("run", f"{flows.name}:adder", "--param", "n=three", cwd=flows.parent)
    assert_one_line_error(proc.stderr, proc.returncode, "flow 'adder'", "n:", "valid integer")
    assert proc.stdout == ""


def test_import_error_in_user_file_in_the_real_script(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import os\n\nvalue = 1 / 0\n")
    proc = dagflow("run", "broken.py:f", cwd=tmp_path)
    assert_one_line_error(
        proc.stderr, proc.returncode, "cannot load broken.py", "ZeroDivisionError", "broken.py:3"
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-p", "nope=1", "-p", "n=1"], ["unknown parameter 'nope'", "valid parameters: n, items"]),
        (["--param", "n"], ["--param 'n'", "NAME=VALUE"]),
        (["--param", "n=1", "--param", "items=[1,"], ["items:", "valid list"]),
        ([], ["n:", "Field required"]),
        (["--params-json", "[1, 2]"], ["--params-json must be a JSON object"]),
        (["--params-json", "{oops"], ["--params-json is not valid JSON"]),
    ],
    ids=["unknown", "malformed", "not-a-list", "missing", "json-list", "json-bad"],
)
def test_bad_parameters(invoke: Invoke, flows: Path, args: list[str], fragments: list[str]) -> None:
    result = invoke("run", f"{flows.name}:adder", *args, cwd=flows.parent)
    assert_one_line_error(result.stderr, result.exit_code, *fragments)


@pytest.mark.parametrize(
    ("target", "fragments"),
    [
        ("absent.py:f", ["no such file: absent.py"]),
        ("myflows.py:nope", ["no flow 'nope' in myflows.py", "flows found: adder, failing, "]),
        ("myflows.py:not_a_flow", ["not_a_flow is not a dagflow flow", "type int"]),
        ("myflows.py", ["myflows.py defines flows: adder, failing, ", "myflows.py:FLOW"]),
        ("no_such_module_here:f", ["no module named 'no_such_module_here'"]),
    ],
    ids=["missing-file", "missing-flow", "not-a-flow", "which-flow", "missing-module"],
)
def test_bad_targets(invoke: Invoke, flows: Path, target: str, fragments: list[str]) -> None:
    result = invoke("inspect", target, cwd=flows.parent)
    assert_one_line_error(result.stderr, result.exit_code, *fragments)


def test_syntax_error_names_file_and_line(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "syntaxbad.py").write_text("x = 1\ndef f(:\n    pass\n")
    result = invoke("inspect", "syntaxbad.py:f", cwd=tmp_path)
    assert_one_line_error(result.stderr, result.exit_code, "SyntaxError", "syntaxbad.py:2")


def test_unknown_cluster(invoke: Invoke, flows: Path) -> None:
    result = invoke(
        "run", f"{flows.name}:adder", "-p", "n=1", "--cluster", "nope://x", cwd=flows.parent
    )
    assert_one_line_error(result.stderr, result.exit_code, "nope://x")


# ---------------------------------------------------------------- finding flows, inspect, version


def test_module_target_with_sibling_import(invoke: Invoke, tmp_path: Path) -> None:
    """`module:FLOW` imports from the working directory; the module imports a sibling."""
    (tmp_path / "cli_sibling_helpers.py").write_text("LABEL = 'sibling'\n")
    (tmp_path / "cli_modflows.py").write_text(
        "from dagflow import flow\nfrom cli_sibling_helpers import LABEL\n\n"
        "@flow(name='labelled-flow')\ndef labelled(x: int = 1) -> str:\n    return LABEL\n"
    )
    result = invoke("inspect", "cli_modflows:labelled-flow", "--json", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "labelled-flow"


def test_file_with_one_flow_needs_no_flow_name(invoke: Invoke, tmp_path: Path) -> None:
    (tmp_path / "single.py").write_text(
        "from dagflow import flow\n\n@flow\ndef only() -> None: ...\n"
    )
    result = invoke("inspect", "single.py", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "flow: only" in result.stdout


def test_inspect_shows_parameters_and_schema(invoke: Invoke, flows: Path) -> None:
    result = invoke("inspect", f"{flows.name}:adder", cwd=flows.parent)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "flow: adder" in out
    assert "version: 1.2" in out
    assert "description: Adds things." in out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    rows = {row[0]: row for row in cells if row}
    assert rows["n"] == ["n", "int", "", "yes"]
    assert rows["items"] == ["items", "list[int]", "[1]", "no"]
    assert rows["label"] == ["label", "str", "'x'", "no"]
    schema_text = out[out.index("JSON schema:") + len("JSON schema:") :]
    assert json.loads(schema_text)["required"] == ["n"]


def test_inspect_json_prints_only_the_schema(invoke: Invoke, flows: Path) -> None:
    result = invoke("inspect", f"{flows.name}:adder", "--json", cwd=flows.parent)
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["required"] == ["n"]
    assert schema["properties"]["items"]["type"] == "array"


def test_version(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("--version", cwd=tmp_path)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"dagflow, version {package.__version__}"


def test_run_help_documents_parameters_and_exit_codes(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("run", "--help", cwd=tmp_path)
    assert result.exit_code == 0
    assert "--param NAME=VALUE" in result.stdout
    assert "JSON" in result.stdout
    assert "130 cancelled" in result.stdout


# ---------------------------------------------------------------- in-process: counts


def _state(key: str | None, to: StateType, frm: StateType | None = None) -> StateEvent:
    return StateEvent("run1", key, frm, to, time.time(), task_name="t")


def test_progress_counts_each_task_once_by_its_latest_state() -> None:
    console = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (closed below)
    progress = RunProgress(console, live=False, cluster="local-threads")
    S = StateType
    progress.handle([FlowRunStarted("run1", "f", None, {}, time.time())])
    progress.handle([_state(f"t-1[{i}]", S.PENDING) for i in range(6)])
    progress.handle(
        [
            _state("t-1[0]", S.RUNNING),
            _state("t-1[0]", S.RETRYING),
            _state("t-1[0]", S.RUNNING),
            _state("t-1[0]", S.COMPLETED),
            _state("t-1[1]", S.CACHED),
            _state("t-1[2]", S.RUNNING),
            _state("t-1[3]", S.FAILED),
            _state("t-1[4]", S.UPSTREAM_FAILED),
            _state("t-1[5]", S.CANCELLED),
        ]
    )
    counts = progress.counts()
    console.file.close()
    assert (counts.total, counts.done, counts.running, counts.failed, counts.cancelled) == (
        6,
        2,
        1,
        2,
        1,
    )


def test_live_progress_draws_a_bar_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100)
    S = StateType
    with RunProgress(console, live=True, cluster="local-threads") as progress:
        progress.handle(
            [FlowRunStarted("run1", "shown", None, {}, time.time(), dashboard_link="http://d")]
        )
        progress.handle([_state(f"t-1[{i}]", S.PENDING) for i in range(4)])
        progress.handle([_state("t-1[0]", S.COMPLETED), _state("t-1[1]", S.RUNNING)])
    text = buffer.getvalue()
    assert "flow 'shown' run run1 on cluster local-threads" in text
    assert "dashboard: http://d" in text
    assert "1/4" in text
    assert "1 running, 0 failed" in text
