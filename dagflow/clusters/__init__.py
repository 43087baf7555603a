"""Clusters: names, profiles, and the ways to open one.

```
names.py      which cluster a run uses; what a name stands for (profile, address, built-in)
profiles.py   YAML profile files read into pydantic models, one per kind
opening.py    a profile -> an open ClusterHandle (client + cluster), reused per process
```
"""

from __future__ import annotations

from dagflow.clusters.names import DEFAULT_CLUSTER, find_profile, resolve_name
from dagflow.clusters.opening import (
    ClusterHandle,
    close,
    close_all,
    get_cluster,
    insecure_address_warning,
    local_options,
    open_profile,
)

__all__ = [
    "DEFAULT_CLUSTER",
    "ClusterHandle",
    "close",
    "close_all",
    "find_profile",
    "get_cluster",
    "insecure_address_warning",
    "local_options",
    "open_profile",
    "resolve_name",
]
