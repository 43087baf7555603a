"""Clusters: names, profiles, and the ways to open one.

```
names.py      which cluster a run uses; what a name stands for (profile, address, built-in)
profiles.py   YAML profile files read into pydantic models, one per kind; builtin/*.yaml
opening.py    a profile -> an open ClusterHandle (client + cluster), reused per process
connecting.py to a running scheduler: refused at once, Dask's handshake tried, TLS
closing.py    closing them: futures released first, Dask's shutdown chatter silenced
mainguard.py  no worker processes started from a script's unguarded top level
running.py    what `dagflow cluster start` leaves in DAGFLOW_HOME for `cluster info`
```
"""

from __future__ import annotations

from dagflow.clusters.closing import close, close_all
from dagflow.clusters.connecting import insecure_address_warning
from dagflow.clusters.names import DEFAULT_CLUSTER, find_profile, resolve_name
from dagflow.clusters.opening import (
    ClusterHandle,
    get_cluster,
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
