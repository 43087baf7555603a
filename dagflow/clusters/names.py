"""Naming a cluster: which name a run uses, and which profile a name stands for.

A cluster is named by a profile name (a file `NAME.yaml` in `./clusters/`, else in
`$DAGFLOW_HOME/clusters/`, else one of the profiles shipped in the package: `local`,
`local-threads`, `remote`, `remote-tls`, ...), a path to a profile file, or a scheduler address
(`tcp://host:port`, `tls://[::1]:8786`, or a bare `host:port`). `resolve_name` picks the name
a run uses (the CLI's `--cluster`, then `DAGFLOW_CLUSTER`, then the flow's `cluster=`, then
`local`); `find_profile` reads what it stands for. A name that stands for nothing is one
`ClusterError` naming the places looked in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dagflow import settings
from dagflow.clusters.profiles import (
    PROFILE_SUFFIXES,
    ClusterProfile,
    address_profile,
    builtin_names,
    builtin_profile,
    find_profile_file,
    load_profile,
)
from dagflow.errors import ClusterError

DEFAULT_CLUSTER = "local"
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}$")


def resolve_name(cli: str | None = None, flow: str | None = None, env: str | None = None) -> str:
    """The cluster a run uses: the CLI's, then `DAGFLOW_CLUSTER` (`env`, read from the settings
    when not given), then the flow's `cluster=`, then `local`."""
    if env is None:
        env = settings.load().cluster
    for candidate in (cli, env, flow):
        if candidate and candidate.strip():
            return candidate.strip()
    return DEFAULT_CLUSTER


def find_profile(name: str) -> ClusterProfile:
    """The profile a cluster name stands for (see the module docstring for the lookup order)."""
    name = name.strip()
    if "://" in name:
        return address_profile(name)
    if name.endswith(PROFILE_SUFFIXES) or os.sep in name or "/" in name:
        return load_profile(Path(name).expanduser())
    path = find_profile_file(name)
    if path is not None:
        return load_profile(path)
    builtin = builtin_profile(name)
    if builtin is not None:
        return builtin
    if _HOST_PORT.match(name):
        return address_profile(f"tcp://{name}")
    raise ClusterError(
        f"unknown cluster {name!r}: no profile {name}.yaml in ./clusters or "
        f"$DAGFLOW_HOME/clusters, and no built-in profile of that name "
        f"({', '.join(builtin_names())}); give a profile name or file, or a scheduler address "
        "such as tcp://127.0.0.1:8786"
    )
