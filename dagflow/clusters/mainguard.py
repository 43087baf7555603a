"""Worker processes import the user's script again: no flow runs from its unguarded top level.

Dask starts local worker processes with multiprocessing's `spawn`: before it can work, each new
process imports the main script again, as the module `__mp_main__`. Code at the script's top
level, outside `if __name__ == "__main__":`, therefore runs again in every worker process; a flow
called there would start a cluster of its own in each worker (multiprocessing refuses, with a
traceback per worker) and record extra runs. Two checks give one clear line instead:

- `refuse_unguarded_spawn`: before a local cluster starts worker processes, the driver looks for
  the main script's top-level frame on its stack; if the call stands outside every
  `if __name__ ...:` block of the script (read with `ast`), nothing starts.
- `refuse_in_worker_bootstrap`: where every top-level run starts (`runtime.run_flow`), a run
  asked for while a process imports its main script as `__mp_main__` is refused, so no worker
  process ever records a run, whatever the first check could not see.

Reading frames and a file is what the first check costs, once per cluster start; a script that
cannot be read (no file, not Python source) is let through.
"""

from __future__ import annotations

import ast
import contextvars
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from dagflow.errors import ClusterError, DefinitionError

GUARD = 'if __name__ == "__main__":'
_REIMPORT_SAFE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reimport_safe", default=False
)


@contextmanager
def reimport_safe() -> Iterator[None]:
    """Clusters started inside are started by a caller that does nothing when the script is
    imported again (`dagflow.serve` ignores calls from the processes it starts)."""
    token = _REIMPORT_SAFE.set(True)
    try:
        yield
    finally:
        _REIMPORT_SAFE.reset(token)


def refuse_unguarded_spawn(cluster: str) -> None:
    """Raise `ClusterError` when worker processes would be started from the main script's
    unguarded top level (they would run that code again)."""
    if _REIMPORT_SAFE.get() or not _reimported():
        return
    main_file = str(getattr(sys.modules.get("__main__"), "__file__", ""))
    if main_file.startswith("<"):  # `python - < script.py`: a spawned process cannot read it again
        raise ClusterError(
            f"cluster {cluster!r} starts worker processes, which import the main script again, "
            f"and a script read from {main_file} cannot be: save it to a file and run that, or "
            "use cluster 'local-threads'"
        )
    site = _top_level_call("__main__")
    if site is None:
        return
    filename, line = site
    if _guarded(filename, line):
        return
    raise ClusterError(
        f"{_shown(filename)}:{line}: cluster {cluster!r} was asked for at the top level of the "
        "script; each of its worker processes imports the script again and would run that "
        f"code again: put the code that runs flows under `{GUARD}`"
    )


def refuse_in_worker_bootstrap(flow_name: str) -> None:
    """Raise `DefinitionError` when a process is importing its main script as `__mp_main__`
    (a worker process starting up) and that script asks for a flow run."""
    site = _top_level_call("__mp_main__")
    if site is None:
        return
    filename, line = site
    raise DefinitionError(
        f"{_shown(filename)}:{line} runs flow {flow_name!r} while a worker process imports the "
        f"script: put the code that runs flows under `{GUARD}`"
    )


def _reimported() -> bool:
    """Does a spawned process import this process's main module again? (As multiprocessing
    decides: not a package's `__main__.py`, not a main without a file.)"""
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name is not None:
        return spec_name != "__main__" and not spec_name.endswith(".__main__")
    return getattr(main, "__file__", None) is not None


def _top_level_call(module_name: str) -> tuple[str, int] | None:
    """(file, line) of the top-level statement of module `module_name` now executing, if any."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "<module>" and frame.f_globals.get("__name__") == module_name:
            filename = code.co_filename
            if filename.startswith("<"):
                return None  # python -c, an interactive session: nothing to import again
            return filename, frame.f_lineno
        frame = frame.f_back
    return None


def _guarded(filename: str, line: int) -> bool:
    """Is `line` inside an `if` whose test reads `__name__`? (True when the file can't be read.)"""
    try:
        tree = ast.parse(Path(filename).read_text(encoding="utf-8"), filename)
    except (OSError, SyntaxError, ValueError):
        return True
    return any(
        isinstance(node, ast.If)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        and any(isinstance(n, ast.Name) and n.id == "__name__" for n in ast.walk(node.test))
        for node in ast.walk(tree)
    )


def _shown(filename: str) -> str:
    try:
        return os.path.relpath(filename)
    except ValueError:
        return filename
