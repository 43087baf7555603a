"""The engine: runs flows on a Dask client (compiler, task wrapper, event pump, flow runner).

Importing it registers it with `dagflow.core.context`, which is how `flow()` and plain task calls
reach it without the pure core importing Dask.
"""

from __future__ import annotations

from dagflow.core.context import register_engine
from dagflow.engine.api import LocalEngine

register_engine(LocalEngine())
