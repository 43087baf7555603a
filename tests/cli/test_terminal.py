"""What a person sees in an 80x24 terminal: the run's own last lines come last.

Each test runs the installed `dagflow` script in a pseudo-terminal (`tests/terminal.py`) on a
real cluster (`local`: a scheduler in the driver and worker processes), types Ctrl-C where a
person would, and reads the screen: after a failed or cancelled run, nothing of Dask's (no
"Removing worker", no worker's KeyboardInterrupt traceback) comes after the summary, the error
and what to do next. Waits are on what appears on the screen, with generous deadlines.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagflow.cli import main
from tests.terminal import Terminal

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

DAGFLOW = shutil.which("dagflow", path=os.path.dirname(sys.executable))
DEADLINE = 240  # seconds; a shared, loaded machine starts worker processes slowly
NOISE = ("Traceback", "KeyboardInterrupt", "Removing worker", "distributed.", "CancelledError")

FLOWS = textwrap.dedent(
    """
    import time
    from dagflow import flow, get_run_logger, task

    @task
    def work(i: int) -> int:
        if i % 60 == 7:
            raise OSError(f"disk {i} unreadable")
        return i

    @task
    def total(parts: list[int]) -> int:
        return sum(parts)

    @flow
    def many(n: int = 300) -> int:
        return total(work.map(range(n))).result()

    @task
    def nap(seconds: float) -> float:
        get_run_logger().info("napping")
        time.sleep(seconds)
        return seconds

    @flow
    def sleepy() -> float:
        return sum(f.result() for f in nap.map([120.0] * 4))
    """
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path / "home"


def terminal(*args: str, cwd: Path, home: Path) -> Terminal:
    assert DAGFLOW, "the dagflow console script is not installed next to this Python"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DAGFLOW_", "COLUMNS", "LINES"))
    }
    env.update(DAGFLOW_HOME=str(home), TERM="xterm-256color")
    return Terminal([DAGFLOW, *args], cwd, env)


def assert_quiet(term: Terminal) -> None:
    for noise in NOISE:
        assert noise not in term.output, f"{noise!r} was printed:\n{term}"


def test_a_failed_run_ends_with_its_summary_error_and_next_steps(home: Path) -> None:
    with terminal("run", "flows.py:many", "--cluster", "local", cwd=home.parent, home=home) as t:
        assert t.wait_exit(DEADLINE) == 1
        lines = t.lines()
        assert_quiet(t)
        summary = next(i for i, line in enumerate(lines) if " FAILED in " in line)
        assert lines[summary].startswith("run ") and lines[summary].endswith(
            "295/301 done, 6 failed"
        ), t
        assert lines[summary + 1].startswith("Error: run "), t
        rest = "\n".join(lines[summary + 1 :])
        # the root cause, not the task that did not run because of it
        assert (
            "5 of 300 items of task 'work' failed; first: [work[7]] ended FAILED: OSError: disk 7"
            in rest.replace("\n", "")
        )
        assert "next: dagflow runs show " in rest and "dagflow logs " in rest
        assert "dagflow resume " in rest and "reruns all 301 tasks: none persisted" in rest
        assert lines[-1].strip() == "(@flow(persist_results=True) keeps them)", t
        assert all(len(line) <= 80 for line in lines)
        # the failures were shown as they happened, in red, without the type twice
        assert t.colour_of("FAILED  work[") == "red"
        assert "OSError: disk 7 unreadable" in t.output
        assert "OSError: OSError" not in t.output


def test_ctrl_c_on_a_run_leaves_the_cancelled_summary_last(home: Path) -> None:
    with terminal("run", "flows.py:sleepy", "--cluster", "local", cwd=home.parent, home=home) as t:
        t.wait_for("napping", DEADLINE)
        t.ctrl_c()
        assert t.wait_exit(DEADLINE) == 130
        assert_quiet(t)
        lines = t.lines()
        summary = next(i for i, line in enumerate(lines) if " CANCELLED in " in line)
        assert " 0/4 done, 4 cancel" in lines[summary], t  # the screen may wrap the line
        assert lines[summary + 1] == "Cancelled: cancelled by the user (Ctrl-C)", t
        assert lines[summary + 2].startswith("next: dagflow logs "), t
        assert lines[-1].strip() == "(@flow(persist_results=True) keeps them)", t


def test_ctrl_c_on_cluster_start_stops_it_quietly(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with terminal("cluster", "start", "local", cwd=home.parent, home=home) as t:
        t.wait_for("press Ctrl-C to stop it", DEADLINE)
        notes = list((home / "clusters-running").glob("*.json"))
        assert len(notes) == 1
        monkeypatch.setenv("DAGFLOW_HOME", str(home))
        monkeypatch.chdir(home.parent)  # the same profile `local` as the terminal's
        info = CliRunner().invoke(main, ["cluster", "info", "local"])
        assert info.exit_code == 0, info.output
        assert "kept up by dagflow cluster start" in info.output
        assert "workers:   " in info.output and "tcp://127.0.0.1:" in info.output
        t.ctrl_c()
        assert t.wait_exit(DEADLINE) == 0
        assert_quiet(t)
        assert t.lines()[-1].endswith("stopping the cluster ..."), t  # after the echoed ^C
        assert not notes[0].exists()
    described = CliRunner().invoke(main, ["cluster", "info", "local"])
    assert described.exit_code == 0, described.output
    assert "not running" in described.output and "dagflow cluster start local" in described.output


def test_live_output_is_in_time_order_with_retries_in_colour(home: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "etl.py"
    args = ("run", f"{example}:etl", "--param", "rows=200", "--cluster", "local-threads")
    with terminal(*args, cwd=home.parent, home=home) as t:
        assert t.wait_exit(DEADLINE) == 0
        out = t.output
        assert_quiet(t)
        retry = out.index("RETRYING read_rates[")
        loaded = out.index("[load] loaded 197 rows")
        done = out.index("[flow] done: 197 rows loaded")
        assert out.index("[read_rates] rates file is locked") < retry < loaded < done
        assert t.colour_of("RETRYING read_rates[") == "brown"  # ANSI yellow, in pyte's words
        assert "result: 197" in "\n".join(t.lines())
