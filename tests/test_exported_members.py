"""The public surface: `dagflow.__all__` is sorted, complete, and every name in it exists."""

from __future__ import annotations
import __future__

import types

import dagflow

# `from __future__ import annotations` leaves a name behind that is not part of the API
NOT_API = set(__future__.all_feature_names)


def test_all_is_sorted_without_duplicates() -> None:
    assert dagflow.__all__ == sorted(dagflow.__all__)
    assert len(set(dagflow.__all__)) == len(dagflow.__all__)


def test_every_public_name_is_exported() -> None:
    public = {
        name
        for name, value in vars(dagflow).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not (name in NOT_API and isinstance(value, __future__._Feature))
    }
    assert public - set(dagflow.__all__) == set()


def test_every_exported_name_resolves() -> None:
    for name in dagflow.__all__:
        assert hasattr(dagflow, name), name
    namespace: dict[str, object] = {}
    exec("from dagflow import *", namespace)
    assert set(dagflow.__all__) - {"__version__"} <= set(namespace)


def test_exported_objects_say_where_they_belong() -> None:
    for name in dagflow.__all__:
        value = getattr(dagflow, name)
        module = getattr(value, "__module__", None)
        if module is not None and isinstance(value, type | types.FunctionType):
            assert module.startswith("dagflow."), (name, module)


def test_every_name_in_all_has_a_home_and_no_home_is_unexported() -> None:
    """Names load lazily from their modules: the table and `__all__` must agree."""
    lazy = set(dagflow._MODULE_OF)
    assert lazy == set(dagflow.__all__) - {"__version__"}
