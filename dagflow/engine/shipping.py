"""How a task's code reaches the cluster: by reference when workers can import it, else by value.

By reference, a task's function travels as its module and qualified name, and the worker imports
that module: module-level state (a lock, a connection pool, a compiled regex) is the worker's
own, nothing of it is pickled, and tracebacks name the module's file. A decorated function is not
its module's attribute (the `Task` is), so cloudpickle alone would send it by value; `shipped`
turns it into a `FunctionRef` that the worker resolves through the module's `Task`.

By value (cloudpickle rebuilds the function from its code) is kept for what the workers cannot
import: the main script, a file loaded with `dagflow run FILE.py` (`register_script`), and a
module of the driver's that the cluster's workers do not find on their `sys.path` (asked once per
cluster and package: `Shipping.by_reference`). In-process workers (`local-threads`) import
whatever the driver can. Code sent by value keeps its file name (`dumps`; cloudpickle alone
writes `<dynamic-code>`), so a task's traceback names the user's file and line, with the source
line wherever that file exists.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import io
import logging
import pickle
import sys
import threading
from collections import ChainMap
from types import CodeType, ModuleType
from typing import Any
from weakref import WeakKeyDictionary

import cloudpickle

log = logging.getLogger(__name__)

_scripts: set[str] = set()  # modules loaded from a file path: never importable by name
_by_value: set[str] = set()  # top-level packages registered with cloudpickle to go by value


def register_script(module: ModuleType) -> None:
    """A module loaded from a file the workers cannot import by name: its code goes by value."""
    cloudpickle.register_pickle_by_value(module)
    _scripts.add(module.__name__)


class FunctionRef:
    """A decorated function named by its module and qualified name, resolved on the worker."""

    __slots__ = ("module", "qualname")

    def __init__(self, module: str, qualname: str) -> None:
        self.module = module
        self.qualname = qualname

    def __reduce__(self) -> tuple[Any, ...]:
        return (resolve_function, (self.module, self.qualname))


class _PartialRef:
    """A partial whose function may be a `FunctionRef` (a task on a method, with its `self`)."""

    __slots__ = ("args", "func", "keywords")

    def __init__(self, func: Any, args: tuple[Any, ...], keywords: dict[str, Any]) -> None:
        self.func, self.args, self.keywords = func, args, keywords

    def __reduce__(self) -> tuple[Any, ...]:
        return (_partial, (self.func, self.args, self.keywords))


def _partial(func: Any, args: tuple[Any, ...], keywords: dict[str, Any]) -> Any:
    return functools.partial(func, *args, **keywords)


def resolve_function(module: str, qualname: str) -> Any:
    """The function `module.qualname` names: the plain function of a task or flow found there."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


def _reference(fn: Any) -> FunctionRef | None:
    """A `FunctionRef` for `fn` if its module's attribute at its qualified name is a task or
    flow wrapping exactly `fn` (what `resolve_function` will find on the worker)."""
    module_name = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module_name or not qualname or "<" in qualname or module_name == "__main__":
        return None
    obj: Any = sys.modules.get(module_name)
    if obj is None:
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    found = getattr(obj, "fn", obj)
    return FunctionRef(module_name, qualname) if found is fn else None


def shipped(fn: Any, by_reference: bool) -> Any:
    """What to pickle in place of `fn`: a `FunctionRef` when it goes by reference and is a
    decorated module-level function; a partial (a bound method) keeps its arguments."""
    if type(fn) is functools.partial:
        return _PartialRef(shipped(fn.func, by_reference), fn.args, fn.keywords)
    if by_reference:
        ref = _reference(fn)
        if ref is not None:
            return ref
    return fn


class Shipping:
    """Which of the driver's modules the workers of one cluster can import (asked once each)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.in_process = str(client.scheduler.address).startswith("inproc://")
        self._known: dict[str, bool] = {}
        self._lock = threading.Lock()

    def by_reference(self, fn: Any) -> bool:
        """Whether `fn` goes by reference; a package the workers lack is registered by value."""
        if type(fn) is functools.partial:
            fn = fn.func
        module_name = getattr(fn, "__module__", None)
        if not module_name or module_name == "__main__" or module_name in _scripts:
            return False
        top = module_name.partition(".")[0]
        if top in _by_value:
            return False
        if top in sys.stdlib_module_names or top in _installed_packages() or self.in_process:
            return True
        with self._lock:
            known = self._known.get(top)
            if known is None:
                known = self._known[top] = self._workers_import(module_name)
                if not known:
                    _register_by_value(top)
        return known

    def _workers_import(self, module_name: str) -> bool:
        try:
            found = self.client.run(_importable, module_name, on_error="return")
        except Exception:
            log.debug("asking the workers about %s failed", module_name, exc_info=True)
            return False
        return bool(found) and all(value is True for value in found.values())


def _importable(module_name: str) -> bool:
    """On a worker: can it import `module_name`? (Found on its path; not imported here.)"""
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def _register_by_value(top: str) -> None:
    module = sys.modules.get(top)
    if module is None:
        return
    cloudpickle.register_pickle_by_value(module)
    _by_value.add(top)
    log.debug("sending module %s to the cluster by value (its workers cannot import it)", top)


_shippings: WeakKeyDictionary[Any, Shipping] = WeakKeyDictionary()
_shippings_lock = threading.Lock()


def shipping_for(client: Any) -> Shipping:
    """The client's `Shipping` (one per client: what its workers import is asked once)."""
    with _shippings_lock:
        found = _shippings.get(client)
        if found is None:
            found = _shippings[client] = Shipping(client)
        return found


@functools.cache
def _installed_packages() -> frozenset[str]:
    """Top-level names provided by installed distributions (editable installs included)."""
    import importlib.metadata

    return frozenset(importlib.metadata.packages_distributions())


def _code_keeping_filename(code: CodeType) -> tuple[Any, ...]:
    """cloudpickle's reduction of a code object, with the real file name put back."""
    rebuild, args = cloudpickle.cloudpickle._code_reduce(code)
    return rebuild, tuple(code.co_filename if a == "<dynamic-code>" else a for a in args)


class _Pickler(cloudpickle.Pickler):
    dispatch_table = ChainMap(
        {CodeType: _code_keeping_filename}, cloudpickle.Pickler.dispatch_table
    )


def dumps(obj: Any) -> bytes:
    """`cloudpickle.dumps(obj)`, except that code sent by value keeps its file name."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.DEFAULT_PROTOCOL).dump(obj)
    return buffer.getvalue()
