"""Triggers of a deployment: the events that start its runs, as frozen, checked values.

Four kinds, built by `dagflow.triggers` (`files`, `rows`, `flow_run`, `webhook`), from YAML
(`trigger_from_spec`) or read back from the store; `spec()` is the plain-dict form of each:

- `FilesTrigger`: files matching `pattern` under `path` (a local directory or an fsspec URL);
  a file fires once its size has been stable for `settle` seconds; `window` gathers the files
  arriving within that many seconds into one run.
- `RowsTrigger`: rows a SQL `query` returns for `:watermark` (the last value of its
  `watermark` column seen), polled every `interval` seconds (and at once on a PostgreSQL
  `NOTIFY` on channel `notify`); one run per row, or per batch.
- `FlowRunTrigger`: a run of `upstream` (a flow name, or a deployment `flow/name`) ending in
  one of `states`.
- `WebhookTrigger`: `POST /api/v1/webhooks/{name}` with an HMAC-SHA256 signature made with the
  secret in the environment variable `secret_env` (of the server's process).

Each trigger has a `name`, unique within its deployment and stable across restarts (event ids
hash it): by default derived from what it watches. A bad field raises `DeploymentError` naming
the trigger; the caller prefixes the deployment. `trigger_cycle` finds a cycle of flow-run
triggers among deployments (A's run ending starts B, B's starts A), refused at definition.
Checks that need a library (an fsspec protocol, a SQLAlchemy URL) are made by
`dagflow.scheduler.definitions`; nothing here imports one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dagflow.core.states import StateType
from dagflow.errors import DeploymentError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_MAGIC = re.compile(r"[*?\[]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/*?\[\]-]{0,199}$")
_WEBHOOK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENDINGS = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED", "TIMED_OUT")


def _positive(who: str, field: str, value: Any, allow_zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value != value or value < 0 or (value == 0 and not allow_zero):
        need = ">= 0" if allow_zero else "> 0"
        raise DeploymentError(f"{who}: {field}: expected a number of seconds {need}, got {value!r}")
    return float(value)


def _name(who: str, name: Any, default: str) -> str:
    if name is None:
        return default[:200]
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeploymentError(
            f"{who}: name: expected 1-200 letters, digits or _.:/- (got {name!r})"
        )
    return name


def check_glob(pattern: str, who: str) -> None:
    """A glob `pattern` relative to a directory: brackets closed, `**` a whole part."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise DeploymentError(f"{who}: pattern: expected a glob such as '*.csv'")
    if pattern.startswith("/") or _URL.match(pattern):
        raise DeploymentError(f"{who}: pattern: {pattern!r} must be relative to the path")
    depth = 0
    for ch in pattern:
        if ch == "[":
            if depth:
                raise DeploymentError(f"{who}: pattern: {pattern!r}: '[' inside '[...]'")
            depth = 1
        elif ch == "]":
            depth = 0
    if depth:
        raise DeploymentError(f"{who}: pattern: {pattern!r}: '[' is never closed")
    for part in pattern.split("/"):
        if "**" in part and part != "**":
            raise DeploymentError(f"{who}: pattern: {pattern!r}: '**' must be a whole path part")
        if part in ("", ".", ".."):
            raise DeploymentError(f"{who}: pattern: {pattern!r}: empty, '.' or '..' part")


def split_glob(target: str) -> tuple[str, str]:
    """`inbox/*.csv` -> (`inbox`, `*.csv`); `s3://b/in/**/*.csv` -> (`s3://b/in`, `**/*.csv`).
    A target without a wildcard is a directory: every file directly in it (`*`)."""
    scheme = ""
    match = _URL.match(target)
    if match:
        scheme, target = match.group(0), target[match.end() :]
    parts = target.split("/")
    for i, part in enumerate(parts):
        if _MAGIC.search(part):
            base = "/".join(parts[:i]) or ("/" if target.startswith("/") else ".")
            return scheme + base, "/".join(parts[i:])
    return scheme + target.rstrip("/") or ".", "*"


@dataclass(frozen=True, slots=True)
class FilesTrigger:
    """Files arriving under a directory or URL; see the module docstring."""

    kind: ClassVar[str] = "files"
    path: str
    pattern: str = "*"
    settle: float = 0.5
    poll: float = 2.0
    window: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        who = f"trigger {self.name or 'files'!r}"
        if not isinstance(self.path, str) or not self.path.strip():
            raise DeploymentError(f"{who}: path: expected a directory or an fsspec URL")
        if _MAGIC.search(self.path):
            raise DeploymentError(
                f"{who}: path: {self.path!r} has a wildcard; give it as the pattern"
            )
        if _URL.match(self.path) is None and "://" in self.path:
            raise DeploymentError(f"{who}: path: {self.path!r} is not a valid URL")
        check_glob(self.pattern, who)
        object.__setattr__(self, "settle", _positive(who, "settle", self.settle, True))
        object.__setattr__(self, "poll", _positive(who, "poll", self.poll))
        if self.window is not None:
            object.__setattr__(self, "window", _positive(who, "window", self.window))
        default = f"files:{self.path.rstrip('/')}/{self.pattern}"
        object.__setattr__(self, "name", _name(who, self.name or None, default))

    @property
    def is_url(self) -> bool:
        return _URL.match(self.path) is not None and not self.path.startswith("file://")

    def spec(self) -> dict[str, Any]:
        return {"files": self.path, "pattern": self.pattern, "settle": self.settle,
                "poll": self.poll, "window": self.window, "name": self.name}  # fmt: skip

    def describe(self) -> str:
        gather = f", gathered per {self.window:g}s" if self.window else ""
        return f"files {self.path.rstrip('/')}/{self.pattern} (settle {self.settle:g}s{gather})"


@dataclass(frozen=True, slots=True)
class RowsTrigger:
    """New rows of a SQL query past a watermark; see the module docstring."""

    kind: ClassVar[str] = "rows"
    url: str
    query: str
    watermark: str | None = None  # the column whose last value is kept; default: the first
    interval: float = 5.0
    batch: bool = False
    start: Any = 0
    name: str = ""
    notify: str | None = None  # a PostgreSQL LISTEN channel: a NOTIFY on it polls at once

    def __post_init__(self) -> None:
        who = f"trigger {self.name or 'rows'!r}"
        if self.notify is not None:
            if not isinstance(self.notify, str) or not _ENV.match(self.notify):
                raise DeploymentError(f"{who}: notify: expected a channel name: {self.notify!r}")
            if not str(self.url).startswith("postgresql"):
                raise DeploymentError(f"{who}: notify: LISTEN/NOTIFY needs a PostgreSQL url")
        if not isinstance(self.url, str) or "://" not in self.url:
            raise DeploymentError(
                f"{who}: url: expected a SQLAlchemy URL such as sqlite:///orders.db"
            )
        if not isinstance(self.query, str) or ":watermark" not in self.query:
            raise DeploymentError(
                f"{who}: query: must read the ':watermark' parameter, e.g. "
                "SELECT id, total FROM orders WHERE id > :watermark ORDER BY id"
            )
        if self.watermark is not None and (
            not isinstance(self.watermark, str) or not self.watermark
        ):
            raise DeploymentError(f"{who}: watermark: expected a column name")
        object.__setattr__(self, "interval", _positive(who, "interval", self.interval))
        if not isinstance(self.batch, bool):
            raise DeploymentError(f"{who}: batch: expected true or false")
        if not isinstance(self.start, int | float | str) or isinstance(self.start, bool):
            raise DeploymentError(f"{who}: start: expected a number or text")
        object.__setattr__(self, "name", _name(who, self.name or None, f"rows:{_table(self)}"))

    def spec(self) -> dict[str, Any]:
        return {"rows": self.url, "query": self.query, "watermark": self.watermark,
                "interval": self.interval, "batch": self.batch, "start": self.start,
                "name": self.name, "notify": self.notify}  # fmt: skip

    def describe(self) -> str:
        per = "per batch" if self.batch else "per row"
        push = f", at once on NOTIFY {self.notify}" if self.notify else ""
        return f"rows of {_table(self)} every {self.interval:g}s{push} ({per})"


def _table(trigger: RowsTrigger) -> str:
    found = re.search(r"\bfrom\s+([A-Za-z0-9_.\"]+)", trigger.query, re.IGNORECASE)
    return found.group(1).strip('"') if found else "query"


@dataclass(frozen=True, slots=True)
class FlowRunTrigger:
    """A run of another flow or deployment ending; see the module docstring."""

    kind: ClassVar[str] = "flow_run"
    upstream: str
    states: tuple[str, ...] = ("COMPLETED",)
    name: str = ""

    def __post_init__(self) -> None:
        who = f"trigger {self.name or 'flow_run'!r}"
        if not isinstance(self.upstream, str) or not self.upstream.strip():
            raise DeploymentError(f"{who}: upstream: expected a flow name or FLOW/NAME")
        states = (self.states,) if isinstance(self.states, str) else tuple(self.states)
        out = []
        for state in states:
            text = str(state.value if isinstance(state, StateType) else state).upper()
            if text not in ENDINGS:
                raise DeploymentError(
                    f"{who}: states: {state!r} is not a final state ({', '.join(ENDINGS)})"
                )
            out.append(text)
        if not out:
            raise DeploymentError(f"{who}: states: give at least one final state")
        object.__setattr__(self, "states", tuple(dict.fromkeys(out)))
        object.__setattr__(self, "name", _name(who, self.name or None, f"flow_run:{self.upstream}"))

    def matches(self, flow_name: str, deployment: str | None) -> bool:
        if "/" in self.upstream:
            return deployment == self.upstream
        return flow_name == self.upstream

    def spec(self) -> dict[str, Any]:
        return {"flow_run": self.upstream, "states": list(self.states), "name": self.name}

    def describe(self) -> str:
        return f"when a run of {self.upstream} ends {' or '.join(self.states)}"


@dataclass(frozen=True, slots=True)
class WebhookTrigger:
    """An HTTP call to the server's webhook endpoint; see the module docstring."""

    kind: ClassVar[str] = "webhook"
    name: str
    secret_env: str | None = None  # default DAGFLOW_WEBHOOK_SECRET_<NAME>

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _WEBHOOK.match(self.name):
            raise DeploymentError(
                f"trigger {self.name!r}: name: a webhook name is 1-100 letters, digits or _.-"
            )
        env = self.secret_env or default_secret_env(self.name)
        if not _ENV.match(env):
            raise DeploymentError(
                f"trigger {self.name!r}: secret_env: {env!r} is not an environment variable name"
            )
        object.__setattr__(self, "secret_env", env)

    def spec(self) -> dict[str, Any]:
        return {"webhook": self.name, "secret_env": self.secret_env}

    def describe(self) -> str:
        return f"POST /api/v1/webhooks/{self.name} (secret in ${self.secret_env})"


Trigger = FilesTrigger | RowsTrigger | FlowRunTrigger | WebhookTrigger
TRIGGER_TYPES = (FilesTrigger, RowsTrigger, FlowRunTrigger, WebhookTrigger)


def default_secret_env(name: str) -> str:
    return "DAGFLOW_WEBHOOK_SECRET_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


_FIELDS: dict[str, tuple[type, str, set[str]]] = {
    "files": (FilesTrigger, "path", {"pattern", "settle", "poll", "window", "name"}),
    "rows": (
        RowsTrigger,
        "url",
        {"query", "watermark", "interval", "batch", "start", "name", "notify"},
    ),
    "flow_run": (FlowRunTrigger, "upstream", {"states", "name"}),
    "webhook": (WebhookTrigger, "name", {"secret_env"}),
}


def trigger_from_spec(spec: Mapping[str, Any], where: str = "trigger") -> Trigger:
    """A trigger from its plain form: exactly one of `files`, `rows`, `flow_run`, `webhook`
    (its main value), plus that kind's fields."""
    if not isinstance(spec, Mapping):
        raise DeploymentError(f"{where}: expected a mapping such as {{files: 'inbox/*.csv'}}")
    kinds = [k for k in _FIELDS if k in spec]
    if len(kinds) != 1:
        raise DeploymentError(f"{where}: give exactly one of {', '.join(_FIELDS)}")
    kind = kinds[0]
    cls, main, allowed = _FIELDS[kind]
    extra = set(spec) - allowed - {kind}
    if extra:
        raise DeploymentError(
            f"{where}.{sorted(extra)[0]}: unknown field (a {kind} trigger takes "
            f"{', '.join(sorted(allowed))})"
        )
    fields = {k: v for k, v in spec.items() if k != kind and v is not None}
    fields[main] = spec[kind]
    if kind == "files" and "pattern" not in spec and isinstance(spec[kind], str):
        fields["path"], fields["pattern"] = split_glob(spec[kind])
    try:
        trigger: Trigger = cls(**fields)
    except DeploymentError as exc:
        raise DeploymentError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise DeploymentError(f"{where}: {exc}") from None
    return trigger


def check_names(triggers: Sequence[Trigger], who: str) -> None:
    """Each trigger of one deployment has its own name."""
    seen: set[str] = set()
    for trigger in triggers:
        if not isinstance(trigger, TRIGGER_TYPES):
            raise DeploymentError(
                f"{who}: triggers: expected triggers (dagflow.triggers.files(...), ...), "
                f"got {type(trigger).__name__}"
            )
        if trigger.name in seen:
            raise DeploymentError(
                f"{who}: trigger {trigger.name!r}: two triggers have this name; name one (name=)"
            )
        seen.add(trigger.name)


def trigger_cycle(deployments: Iterable[Any]) -> list[str] | None:
    """A cycle of flow-run triggers among `deployments` (values with `full_name`, `flow_name`
    and `triggers`), as the deployment names around it; None if there is none."""
    deps = list(deployments)
    edges: dict[str, set[str]] = {d.full_name: set() for d in deps}
    for down in deps:
        for trigger in down.triggers:
            if not isinstance(trigger, FlowRunTrigger):
                continue
            for up in deps:
                if trigger.matches(up.flow_name, up.full_name):
                    edges[up.full_name].add(down.full_name)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
