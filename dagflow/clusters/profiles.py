"""Cluster profiles: YAML files that say which Dask cluster dagflow opens, validated by pydantic.

A profile file holds one mapping whose `kind` picks the model:

- `local`: a `distributed.LocalCluster`, with its options (127.0.0.1 only unless told otherwise);
- `address`: an existing scheduler, with optional TLS files;
- `ssh`: `distributed.SSHCluster` over `hosts` (extra `dagflow[ssh]`);
- `jobqueue`: a dask-jobqueue cluster for `system: slurm|pbs|...` (extra `dagflow[jobqueue]`);
- `kubernetes`: `dask_kubernetes.operator.KubeCluster` (extra `dagflow[kubernetes]`);
- `class`: any `distributed.deploy.Cluster` subclass by import path.

Every kind takes `dask_config` (Dask config set while the cluster is created); the kinds that
create a cluster also take `scale` (workers to ask for) or `adapt: {minimum, maximum}`. Strings may
use `${VAR}` or `${VAR:-default}`; relative TLS paths are relative to the profile file's folder.

Ready profiles ship inside the package (`builtin/*.yaml`, the same files as the repository's
`clusters/` folder), so their names work from any directory; a file of the same name in
`./clusters` or `$DAGFLOW_HOME/clusters` replaces one. A built-in profile is not the user's file,
so its relative TLS paths are read as if it lived in `$DAGFLOW_HOME/clusters`.

Invariant: whatever is wrong with a profile file, loading it raises one `ClusterError` whose single
line names the file and the field (the CLI turns it into exit code 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from dagflow import settings
from dagflow.errors import ClusterError

KINDS = ("local", "address", "ssh", "jobqueue", "kubernetes", "class")
PROFILE_SUFFIXES = (".yaml", ".yml")
JOBQUEUE_SYSTEMS = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "moab": "MoabCluster",
    "oar": "OARCluster",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://", "inproc://")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Adapt(_Strict):
    """Adaptive scaling bounds, passed to `cluster.adapt(minimum=, maximum=)`."""

    minimum: Annotated[int, Field(ge=0)] = 0
    maximum: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Adapt:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) is above maximum ({self.maximum})")
        return self


class TLSFiles(_Strict):
    """The client's TLS files: the CA that signed the scheduler's cert, and the client's pair."""

    ca_file: str
    cert: str
    key: str


class ClusterProfile(_Strict):
    """What every profile has; one subclass per `kind`."""

    kind: str
    description: str = ""
    dask_config: dict[str, Any] = Field(default_factory=dict)
    _source: str = PrivateAttr(default="")

    @property
    def source(self) -> str:
        """Where the profile came from: its file, or a description of the built-in."""
        return self._source

    @property
    def creates_cluster(self) -> bool:
        return self.kind != "address"


class _Managed(ClusterProfile):
    """A profile that starts a cluster (and so may scale it)."""

    scale: Annotated[int | None, Field(ge=0)] = None
    adapt: Adapt | None = None

    @model_validator(mode="after")
    def _one_scaling(self) -> _Managed:
        if self.scale is not None and self.adapt is not None:
            raise ValueError("give either scale or adapt, not both")
        return self


class LocalOptions(_Strict):
    """The `LocalCluster` options dagflow accepts (anything else is a mistake, caught here)."""

    n_workers: Annotated[int | None, Field(ge=0)] = None
    threads_per_worker: Annotated[int, Field(ge=1)] = 1
    processes: bool = True
    memory_limit: str | int | float | None = "auto"
    resources: dict[str, float] | None = None
    host: str = "127.0.0.1"
    scheduler_port: Annotated[int, Field(ge=0, le=65535)] = 0
    dashboard_address: str | None = "127.0.0.1:8787"
    silence_logs: int | str | bool = 30
    worker_options: dict[str, Any] = Field(default_factory=dict)
    scheduler_options: dict[str, Any] = Field(default_factory=dict)


class LocalProfile(_Managed):
    kind: Literal["local"]
    options: LocalOptions = LocalOptions()


class AddressProfile(ClusterProfile):
    kind: Literal["address"]
    address: str
    tls: TLSFiles | None = None
    timeout: Annotated[float, Field(gt=0)] = 10.0

    @field_validator("address")
    @classmethod
    def _has_scheme(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(_SCHEMES):
            raise ValueError(
                f"{value!r} is not a scheduler address such as tcp://127.0.0.1:8786 "
                "or tls://scheduler.example.org:8786"
            )
        return value

    @model_validator(mode="after")
    def _tls_matches(self) -> AddressProfile:
        if self.address.startswith("tls://") and self.tls is None:
            raise ValueError("a tls:// address needs tls: {ca_file, cert, key}")
        return self


class SSHProfile(_Managed):
    kind: Literal["ssh"]
    hosts: list[str] = Field(min_length=2)
    options: dict[str, Any] = Field(default_factory=dict)


class JobqueueProfile(_Managed):
    kind: Literal["jobqueue"]
    system: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("system")
    @classmethod
    def _known_system(cls, value: str) -> str:
        if value.lower() not in JOBQUEUE_SYSTEMS:
            raise ValueError(f"unknown system {value!r} (one of {', '.join(JOBQUEUE_SYSTEMS)})")
        return value.lower()


class KubernetesProfile(_Managed):
    kind: Literal["kubernetes"]
    options: dict[str, Any] = Field(default_factory=dict)


class ClassProfile(_Managed):
    kind: Literal["class"]
    cluster_class: str = Field(alias="class")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cluster_class")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*\.[A-Za-z_]\w*", value):
            raise ValueError(f"{value!r} is not an import path such as distributed.LocalCluster")
        return value


AnyProfile = Annotated[
    LocalProfile | AddressProfile | SSHProfile | JobqueueProfile | KubernetesProfile | ClassProfile,
    Field(discriminator="kind"),
]
_adapter: TypeAdapter[ClusterProfile] = TypeAdapter(AnyProfile)


# ----------------------------------------------------------------------------- loading


def parse_profile(data: Any, source: str, base_dir: Path | None = None) -> ClusterProfile:
    """Validate a profile mapping; `source` names it in errors, `base_dir` anchors TLS paths."""
    if not isinstance(data, Mapping):
        raise ClusterError(f"{source}: a cluster profile must be a mapping with a 'kind' field")
    data = _expand_env(dict(data), source, ())
    try:
        profile = _adapter.validate_python(data)
    except ValidationError as exc:
        raise ClusterError(f"{source}: {_first_error(exc, data)}") from None
    if isinstance(profile, AddressProfile) and profile.tls is not None:
        profile = profile.model_copy(update={"tls": _anchor_tls(profile.tls, source, base_dir)})
    profile._source = source
    return profile


def load_profile(
    path: str | Path, *, source: str | None = None, base_dir: Path | None = None
) -> ClusterProfile:
    """Read and validate the profile file at `path` (`source` names it in errors; relative TLS
    paths are relative to `base_dir`, by default the file's folder)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ClusterError(f"{path}: no such cluster profile file") from None
    except OSError as exc:
        raise ClusterError(f"{path}: cannot read the cluster profile ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ClusterError(f"{source or path}: invalid YAML{where}: {problem}") from None
    return parse_profile(data, source or str(path), base_dir or path.parent)


BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_names() -> list[str]:
    """The names of the profiles that ship with dagflow."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def builtin_profile(name: str) -> ClusterProfile | None:
    """The profile `name` that ships with dagflow (`local`, `remote`, ...), else None."""
    path = BUILTIN_DIR / f"{name}.yaml"
    if not path.is_file():
        return None
    return load_profile(
        path, source=f"built-in profile {name!r}", base_dir=settings.load().home / "clusters"
    )


def address_profile(address: str) -> ClusterProfile:
    """A profile for a bare scheduler address given where a cluster name goes."""
    return parse_profile({"kind": "address", "address": address}, address)


def profile_dirs() -> list[Path]:
    """Where names are looked up before the built-ins: ./clusters, then $DAGFLOW_HOME/clusters."""
    return [Path.cwd() / "clusters", settings.load().home / "clusters"]


def find_profile_file(name: str) -> Path | None:
    """The user's file a profile name refers to, if any (the built-ins are not files of theirs)."""
    for directory in profile_dirs():
        for suffix in PROFILE_SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


# ----------------------------------------------------------------------------- helpers


def _expand_env(value: Any, source: str, loc: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: _env_value(m, source, loc), value)
    if isinstance(value, dict):
        return {k: _expand_env(v, source, (*loc, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, source, (*loc, str(i))) for i, v in enumerate(value)]
    return value


def _env_value(match: re.Match[str], source: str, loc: tuple[str, ...]) -> str:
    name, default = match.group(1), match.group(2)
    value = os.environ.get(name)
    if value:
        return value
    if default is not None:
        return default
    field = ".".join(loc) or "(profile)"
    raise ClusterError(
        f"{source}: {field}: environment variable {name} is not set "
        f"(write ${{{name}:-default}} to give a default)"
    )


def _first_error(exc: ValidationError, data: Mapping[str, Any]) -> str:
    errors = exc.errors()
    err = errors[0]
    loc = [str(p) for p in err["loc"]]
    kind = data.get("kind")
    if loc and loc[0] == kind:
        loc = loc[1:]  # the discriminated union puts the tag first
    field = ".".join(loc)
    etype = err["type"]
    if etype == "union_tag_not_found":
        text = f"kind: missing (one of {', '.join(KINDS)})"
    elif etype == "union_tag_invalid":
        text = f"kind: unknown kind {kind!r} (one of {', '.join(KINDS)})"
    elif etype == "extra_forbidden":
        text = f"{field}: unknown {'option' if 'options' in loc[:-1] else 'field'}"
        if loc[:1] == ["options"] and kind == "local":
            text += f" (known: {', '.join(LocalOptions.model_fields)})"
    elif etype == "missing":
        text = f"{field}: required field missing"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
        text = f"{field}: {msg}" if field else msg
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _anchor_tls(tls: TLSFiles, source: str, base_dir: Path | None) -> TLSFiles:
    paths: dict[str, str] = {}
    for field in ("ca_file", "cert", "key"):
        path = Path(os.path.expanduser(getattr(tls, field)))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ClusterError(f"{source}: tls.{field}: no such file {path}")
        paths[field] = str(path)
    return TLSFiles(**paths)
