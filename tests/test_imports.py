"""Dependencies point inward, and importing costs only what it needs.

- The import graph of `dagflow/` has no cycle. Every `import` statement counts, wherever it stands
  (at the top, inside a function, under `TYPE_CHECKING`): a lazy import is still a dependency.
- `dagflow.core` imports nothing of the outer layers, and loading it loads no Dask scheduler,
  database, web or UI library: checked in a fresh interpreter, with the real package.
- `import dagflow` loads neither the store's database libraries nor `distributed`, nor Bokeh.
- A worker running a task imports neither SQLAlchemy nor Alembic (on real worker processes).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dagflow"
WEB = ("fastapi", "starlette", "uvicorn", "httpx", "bokeh", "tornado")  # (dask loads jinja2)
HEAVY = ("distributed", "sqlalchemy", "alembic", "psycopg", "click", "rich", *WEB)
OUTER_LAYERS = ("engine", "store", "scheduler", "server", "cli", "clusters", "runtime")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every dagflow module `path` imports, from any statement anywhere in it.

    `from a.b import c` imports module `a.b.c` when there is one, else module `a.b`.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts}
    return {name: imports_of(path, name, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_of_dagflow_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40, sorted(graph)
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_imports_no_outer_layer() -> None:
    graph = import_graph()
    outer = tuple(f"dagflow.{layer}" for layer in OUTER_LAYERS)
    for name, deps in graph.items():
        if name.startswith("dagflow.core"):
            bad = [d for d in deps if d.startswith(outer) or d == "dagflow.decorators"]
            assert bad == [], f"{name} imports {bad}"


def test_the_store_imports_no_cli_or_web_library() -> None:
    for path in (PACKAGE / "store").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        tops = {n.partition(".")[0] for n in names}
        assert not tops & {"click", "rich", "fastapi", "httpx"}, f"{path} imports {tops}"


def loaded_after(code: str) -> list[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    names: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return names


def heavy_in(loaded: list[str], tops: tuple[str, ...]) -> list[str]:
    return [m for m in loaded if m.partition(".")[0] in tops]


def test_importing_the_core_loads_no_heavy_dependency() -> None:
    code = textwrap.dedent(
        """
        import importlib, pkgutil
        import dagflow.core
        for info in pkgutil.iter_modules(dagflow.core.__path__, "dagflow.core."):
            importlib.import_module(info.name)
        """
    )
    loaded = loaded_after(code)
    assert {"dagflow.core.machine", "dagflow.core.task", "dagflow.core.flow"} <= set(loaded)
    assert heavy_in(loaded, HEAVY) == []


def test_importing_dagflow_loads_no_store_scheduler_or_pages() -> None:
    loaded = loaded_after("import dagflow")
    assert "dagflow" in loaded
    assert heavy_in(loaded, HEAVY) == []


def test_the_cli_loads_no_web_library_until_the_server_starts() -> None:
    """`dagflow --help` and the commands' modules load neither the server nor its client."""
    code = textwrap.dedent(
        """
        from click.testing import CliRunner
        from dagflow.cli import main
        assert CliRunner().invoke(main, ["--help"]).exit_code == 0
        assert CliRunner().invoke(main, ["server", "--help"]).exit_code == 0
        """
    )
    loaded = loaded_after(code)
    assert "dagflow.cli.server" in loaded
    assert heavy_in(loaded, WEB) == []


@pytest.mark.cluster
def test_a_worker_running_a_task_imports_no_database_code(tmp_path: Path) -> None:
    """Real worker processes: after running a flow's tasks, none has SQLAlchemy or Alembic."""
    code = textwrap.dedent(
        f"""
        import os, sys
        os.environ["DAGFLOW_HOME"] = {str(tmp_path)!r}
        from distributed import Client, LocalCluster
        from dagflow import flow, task
        from dagflow.runtime import run_flow

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow
        def doubles(n: int) -> int:
            return sum(f.result() for f in double.map(range(n)))

        def database_modules():
            return sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "alembic"))

        if __name__ == "__main__":
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster:
                run = run_flow(doubles, {{"n": 8}}, cluster=cluster.scheduler_address)
                assert run.state.value == "COMPLETED", run
                with Client(cluster) as client:
                    found = client.run(database_modules)
                    tasks_ran = client.run(lambda: "dagflow.engine.wrapper" in sys.modules)
                print("RESULT", found, tasks_ran)
        """
    )
    script = tmp_path / "worker_imports.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    found, tasks_ran = line.removeprefix("RESULT ").split("} {")
    assert "'sqlalchemy" not in found and "'alembic" not in found, found
    assert "True" in tasks_ran  # the workers did run dagflow's task wrapper


def test_what_a_worker_imports_to_run_a_task_is_small() -> None:
    """A worker unpickling a task imports the wrapper: no parameter models, CLI or store."""
    loaded = loaded_after("import dagflow.engine.wrapper")
    assert heavy_in(loaded, (*HEAVY, "pydantic")) == []
    assert "dagflow.decorators" not in loaded and "dagflow.runtime" not in loaded
