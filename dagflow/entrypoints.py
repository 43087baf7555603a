"""Loading a flow from what a user typed: `FILE.py:FLOW` or `module.name:FLOW`.

A missing file, module or flow, or an error while importing the user's code, is one
`UsageError` line naming what was typed and where in the user's code it went wrong, never a
traceback. A file is imported under its own name (or a unique one when that name is taken) with
its folder on `sys.path`, as `python FILE` would, and its functions travel to the workers by
value, since worker processes cannot import it. The CLI and the scheduler (`dagflow serve` and
its child processes) load flows through here.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from dagflow.core.flow import FlowDefinition
from dagflow.errors import UsageError

_NO: Any = object()


def one_line(text: str) -> str:
    """`text` on one line: runs of white space with a line break become one space."""
    return re.sub(r"\s*\n\s*", " ", text).strip()


def load_flow(ref: str) -> FlowDefinition[..., Any]:
    """The flow named by `FILE.py:FLOW` or `module:FLOW` (`:FLOW` may go if there is one)."""
    target, _, attr = ref.rpartition(":") if ":" in ref else (ref, "", "")
    if not target:
        raise UsageError(f"{ref!r}: expected FILE.py:FLOW or module:FLOW")
    is_file = target.endswith(".py") or os.sep in target or "/" in target
    module = _import_file(target) if is_file else _import_module(target)
    flows = {name: obj for name, obj in vars(module).items() if isinstance(obj, FlowDefinition)}
    found = ", ".join(sorted(flows)) if flows else "none"
    if not attr:
        if len(flows) == 1:
            return next(iter(flows.values()))
        raise UsageError(f"{target} defines flows: {found}; name one as {target}:FLOW")
    obj = getattr(module, attr, _NO)
    if obj is _NO:
        named = [f for f in flows.values() if f.name == attr]
        if len(named) == 1:
            return named[0]
        raise UsageError(f"no flow {attr!r} in {target}; flows found: {found}")
    if not isinstance(obj, FlowDefinition):
        raise UsageError(
            f"{target}:{attr} is not a dagflow flow (it is of type {type(obj).__name__}; "
            f"decorate a function with @flow); flows found: {found}"
        )
    return obj


def entrypoint_of(flow: FlowDefinition[..., Any]) -> str | None:
    """`/abs/path/file.py:function` (or `module:function`) where `flow` can be loaded again."""
    import inspect

    qualname = getattr(flow.fn, "__qualname__", "")
    if not qualname or "<" in qualname or "." in qualname:
        return None  # a flow defined inside a function or a class cannot be loaded by name
    try:
        path = inspect.getsourcefile(flow.fn)
    except TypeError:
        path = None
    if path is None:
        module = getattr(flow.fn, "__module__", None)
        return f"{module}:{qualname}" if module and module != "__main__" else None
    return f"{Path(path).resolve()}:{qualname}"


def _import_file(target: str) -> ModuleType:
    path = Path(target)
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if not path.is_file():
        raise UsageError(f"not a file: {path}")
    path = path.resolve()
    name = _module_name(path)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # sibling imports work as they would for `python FILE`
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so pickling by reference finds it
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise UsageError(_load_failure(target, path.parent, exc)) from None
    from dagflow.engine.shipping import register_script

    register_script(module)  # workers cannot import the user's file by name: by value
    return module


def _module_name(path: Path) -> str:
    """The file's stem, unless that names another module (then a name of its own)."""
    stem = path.stem
    if stem.isidentifier():
        loaded = sys.modules.get(stem)
        if loaded is not None:
            if getattr(loaded, "__file__", None) == str(path):
                return stem
        else:
            try:
                spec = importlib.util.find_spec(stem)
            except (ImportError, ValueError):
                spec = None
            if spec is None or spec.origin == str(path):
                return stem
    return "dagflow_file_" + re.sub(r"\W", "_", stem)


def _import_module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(
                f"no module named {name!r} (to run a file, give its path: FILE.py:FLOW)"
            ) from None
        raise UsageError(_load_failure(name, Path.cwd(), exc)) from None
    except (Exception, SystemExit) as exc:
        raise UsageError(_load_failure(name, Path.cwd(), exc)) from None


def _load_failure(what: str, user_dir: Path, exc: BaseException) -> str:
    """One line: the error and where in the user's code it happened."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{_shown_path(exc.filename)}:{exc.lineno}"
        message = exc.msg
    else:
        message = str(exc)
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")
        ]
        mine = [f for f in frames if Path(f.filename).resolve().is_relative_to(user_dir)]
        for frame in reversed(mine or frames):
            where = f"{_shown_path(frame.filename)}:{frame.lineno}"
            break
    at = f" (at {where})" if where else ""
    return f"cannot load {what}: {type(exc).__name__}: {one_line(message)}{at}"


def _shown_path(filename: str) -> str:
    try:
        return os.path.relpath(filename)
    except ValueError:
        return filename
