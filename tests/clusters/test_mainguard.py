"""A script that runs a flow on `local` (worker processes): guarded, it works and records one run;
unguarded, it stops in one line saying what to add; and no worker process ever records a run.

Real scripts run with `python SCRIPT` in a fresh `DAGFLOW_HOME`, as a user would run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dagflow.clusters.mainguard import _guarded

GUARD = 'if __name__ == "__main__":'

README_FLOW = textwrap.dedent(
    """
    from dagflow import flow, get_run_logger, task, unmapped

    @task(retries=3, retry_delay=1.0, retry_backoff=2.0, retry_on=(OSError,), timeout=60)
    def extract(path: str) -> list[str]:
        return open(path).read().splitlines()

    @task
    def transform(lines: list[str], sep: str) -> list[list[str]]:
        return [line.split(sep) for line in lines]

    @flow(cluster="local")
    def etl(paths: list[str], sep: str = ",") -> int:
        rows = transform.map(extract.map(paths), unmapped(sep))
        total = sum(len(r.result()) for r in rows)
        get_run_logger().info("%d rows", total)
        return total
    """
)


def python(script: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env["DAGFLOW_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, script.name],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def recorded_runs(home: Path) -> list[dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env["DAGFLOW_HOME"] = str(home)
    proc = subprocess.run(
        [sys.executable, "-m", "dagflow.cli", "runs", "ls", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    runs: list[dict[str, object]] = json.loads(proc.stdout)
    return runs


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "a.csv"
    path.write_text("a,b\nc,d\n")
    return path


def test_an_unguarded_script_stops_in_one_line_before_any_worker_starts(
    tmp_path: Path, csv: Path
) -> None:
    script = tmp_path / "readme_flow.py"
    script.write_text(README_FLOW + '\nprint(etl(paths=["a.csv"]))\n')
    proc = python(script, tmp_path / "home")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    line = len(README_FLOW.splitlines()) + 2  # after a blank line
    assert last == (
        f"dagflow.errors.ClusterError: readme_flow.py:{line}: cluster 'local' was asked for at "
        "the top level of the script; each of its worker processes imports the script again "
        f"and would run that code again: put the code that runs flows under `{GUARD}`"
    )
    assert len(proc.stderr.splitlines()) < 30  # Python's traceback of the call, nothing else
    assert "bootstrapping" not in proc.stderr and "Nanny" not in proc.stderr
    assert recorded_runs(tmp_path / "home") == []


@pytest.mark.cluster
@pytest.mark.slow
def test_a_guarded_script_runs_on_worker_processes_and_records_one_run(
    tmp_path: Path, csv: Path
) -> None:
    script = tmp_path / "readme_flow.py"
    script.write_text(README_FLOW + f'\n{GUARD}\n    print(etl(paths=["a.csv"]))\n')
    proc = python(script, tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2"
    runs = recorded_runs(tmp_path / "home")
    assert [(r["flow"], r["state"]) for r in runs] == [("etl", "COMPLETED")]


def test_a_process_importing_its_main_script_never_records_a_run(tmp_path: Path) -> None:
    """What a worker process does when it imports a script whose flow call the driver's check
    could not see: it refuses, and nothing is recorded."""
    script = tmp_path / "spawner.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import multiprocessing
            from dagflow import flow

            @flow(cluster="local-threads")
            def f() -> int:
                return 1

            if __name__ == "__mp_main__":  # what runs again in a spawned process
                f()

            {GUARD}
                child = multiprocessing.get_context("spawn").Process(target=print, args=("hi",))
                child.start()
                child.join()
                print("child exit code", child.exitcode)
            """
        )
    )
    proc = python(script, tmp_path / "home")
    assert proc.returncode == 0, proc.stderr
    assert "child exit code 1" in proc.stdout
    assert (
        "dagflow.errors.DefinitionError: spawner.py:10 runs flow 'f' while a worker process "
        f"imports the script: put the code that runs flows under `{GUARD}`"
    ) in proc.stderr
    assert recorded_runs(tmp_path / "home") == []


def test_what_counts_as_guarded(tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_text(
        textwrap.dedent(
            """
            import x
            run()
            if __name__ == "__main__":
                main()
            if "__main__" == __name__ and True:
                other()
            if something:
                third()
            """
        )
    )
    assert [line for line in range(1, 11) if _guarded(str(path), line)] == [4, 5, 6, 7]
    assert _guarded(str(tmp_path / "missing.py"), 1)  # cannot tell: let it be


def test_a_script_read_from_stdin_is_told_to_be_a_file(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env["DAGFLOW_HOME"] = str(tmp_path / "home")
    script = (
        'from dagflow import flow\n@flow(cluster="local")\ndef f() -> int:\n    return 1\nf()\n'
    )
    proc = subprocess.run(
        [sys.executable, "-"], input=script, cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "dagflow.errors.ClusterError: cluster 'local' starts worker processes, which import the "
        "main script again, and a script read from <stdin> cannot be: save it to a file and run "
        "that, or use cluster 'local-threads'"
    )
