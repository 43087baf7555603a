"""Dependencies point inward: the pure core loads no Dask scheduler, database, web or UI code.

Each check runs in a fresh interpreter, since this test process has long since imported everything.
`import dagflow` itself registers the engine (and so loads `distributed`), so the core is loaded
the way another layer sees it: `dagflow.core.*` with the top-level package's `__init__` left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

FORBIDDEN_IN_CORE = ("distributed", "sqlalchemy", "alembic", "bokeh", "tornado", "psycopg")
OTHER_LAYERS = (
    "dagflow.engine",
    "dagflow.store",
    "dagflow.scheduler",
    "dagflow.server",
    "dagflow.cli",
    "dagflow.clusters",
)

LOAD_CORE = textwrap.dedent(
    """
    import importlib, importlib.util, json, pkgutil, sys, types

    spec = importlib.util.find_spec("dagflow")  # locates the package without running it
    package = types.ModuleType("dagflow")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["dagflow"] = package

    core = importlib.import_module("dagflow.core")
    names = [info.name for info in pkgutil.iter_modules(core.__path__, "dagflow.core.")]
    for name in names:
        importlib.import_module(name)
    print(json.dumps({"core": names, "loaded": sorted(sys.modules)}))
    """
)


def run_python(code: str) -> dict[str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, list[str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def core_import() -> dict[str, list[str]]:
    return run_python(LOAD_CORE)


def test_every_core_module_was_imported(core_import: dict[str, list[str]]) -> None:
    assert {"dagflow.core.states", "dagflow.core.graph", "dagflow.core.definitions"} <= set(
        core_import["core"]
    )
    assert set(core_import["core"]) <= set(core_import["loaded"])


@pytest.mark.parametrize("top", FORBIDDEN_IN_CORE)
def test_the_core_loads_no_heavy_dependency(core_import: dict[str, list[str]], top: str) -> None:
    loaded = [m for m in core_import["loaded"] if m == top or m.startswith(top + ".")]
    assert loaded == [], f"importing dagflow.core loaded {loaded[:5]}"


@pytest.mark.parametrize("layer", OTHER_LAYERS)
def test_the_core_imports_no_outer_layer(core_import: dict[str, list[str]], layer: str) -> None:
    loaded = [m for m in core_import["loaded"] if m == layer or m.startswith(layer + ".")]
    assert loaded == [], f"dagflow.core imported {loaded}"


def test_importing_dagflow_leaves_the_web_pages_unloaded() -> None:
    """`import dagflow` runs flows; the server's Bokeh pages load only when a server starts."""
    loaded = run_python(
        "import json, sys, dagflow; print(json.dumps({'loaded': sorted(sys.modules)}))"
    )["loaded"]
    assert "dagflow" in loaded
    assert [m for m in loaded if m == "bokeh" or m.startswith("bokeh.")] == []
