"""How a task's code reaches the cluster: by reference when workers can import it, else by value.

cloudpickle sends a function by reference (its module and name) when it can, and the worker then
imports that module. A flow's own module that no installed distribution provides (a file run with
`dagflow run my_flow.py`, a notebook's helper module) cannot be imported there, so its package is
registered to travel by value: the scheduler (which unpickles the graph) and the workers then run
code they do not have. An installed package travels by reference as usual.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

_by_value: set[str] = set()


def ship_by_value(fn: Any) -> bool:
    """Make cloudpickle send `fn`'s own package by value when no installed distribution has it.

    Returns whether the package is (now) sent by value. Cheap after the first call.
    """
    module_name = getattr(fn, "__module__", None)
    if not module_name or module_name == "__main__":
        return False
    top = module_name.partition(".")[0]
    if top in _by_value:
        return True
    if top in sys.stdlib_module_names or top in _installed_packages():
        return False
    module = sys.modules.get(top)
    if module is None:
        return False
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    _by_value.add(top)
    log.debug("sending module %s to the cluster by value (not installed)", top)
    return True


@functools.cache
def _installed_packages() -> frozenset[str]:
    """Top-level names provided by installed distributions (editable installs included)."""
    import importlib.metadata

    return frozenset(importlib.metadata.packages_distributions())
