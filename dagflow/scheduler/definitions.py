"""Deployments from the three ways a user writes them: Python, the command line, a YAML file.

All three end in the same `Deployment` value (`core/deployments.py`), checked the same way:
schedules are built and checked by `core/schedules.py`; the parameters are validated against the
flow's parameter schema (so the flow is loaded: from the caller's object, or from the
entrypoint) and kept as the JSON-ready values the user gave (`{"n": "3"}` from `--param n=3` is
kept as `3` after coercion), which every run validates again with its own overrides merged.

A mistake is one `DeploymentError` line naming the deployment and the field:
`dagflow.yaml: deployments[1] (etl/nightly): schedules[0].cron: invalid cron string '61 * * * *'`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic

from dagflow.core.deployments import Deployment
from dagflow.core.flow import FlowDefinition
from dagflow.core.params import parse_parameters
from dagflow.core.schedules import CronSchedule, IntervalSchedule, Schedule, schedule_from_spec
from dagflow.core.triggers import (
    FilesTrigger,
    FlowRunTrigger,
    RowsTrigger,
    Trigger,
    trigger_cycle,
    trigger_from_spec,
)
from dagflow.entrypoints import entrypoint_of, load_flow
from dagflow.errors import DagflowError, DeploymentError, ParameterError

Flow = FlowDefinition[..., Any]
YAML_SUFFIXES = (".yaml", ".yml")


def build(
    flow: Flow,
    name: str | None = None,
    *,
    cron: str | Iterable[str] | None = None,
    interval: float | timedelta | Iterable[float | timedelta] | None = None,
    timezone: str | None = None,
    anchor: str | float | datetime | None = None,
    schedules: Sequence[Schedule] = (),
    parameters: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    tags: Iterable[str] = (),
    description: str | None = None,
    paused: bool = False,
    max_active_runs: int = 1,
    catchup: bool = False,
    entrypoint: str | None = None,
    triggers: Sequence[Trigger] = (),
    base: Path | None = None,
) -> Deployment:
    """A checked deployment of a loaded `flow` (what `flow.to_deployment` and the CLI build)."""
    name = name or flow.name
    full = f"{flow.name}/{name}"
    where = entrypoint or entrypoint_of(flow)
    if where is None:
        raise DeploymentError(
            f"deployment {full!r}: entrypoint: cannot tell where flow {flow.name!r} is defined "
            "(define it at module level in a file, or pass entrypoint='path/file.py:flow')"
        )
    try:
        built = [*schedules, *_schedules(cron, interval, timezone, anchor)]
        dep = Deployment(
            name=name,
            flow_name=flow.name,
            entrypoint=where,
            parameters=dict(parameters or {}),
            schedules=tuple(built),
            cluster=cluster,
            tags=tuple(tags),
            description=description if description is not None else flow.description,
            paused=paused,
            max_active_runs=max_active_runs,
            catchup=catchup,
            triggers=tuple(_located(t, base) for t in (triggers or ())),
        )
        _check_triggers(dep, flow)
    except DeploymentError as exc:
        text = str(exc)
        if not text.startswith("deployment "):
            text = f"deployment {full!r}: {text}"
        raise DeploymentError(text) from None
    return checked_parameters(dep, flow)


def _located(trigger: Trigger, base: Path | None) -> Trigger:
    """A files trigger's local directory made absolute (from `base`, else the current
    directory): the serve process and its runs read the same place whatever their cwd."""
    if not isinstance(trigger, FilesTrigger) or trigger.is_url:
        return trigger
    raw = trigger.path.removeprefix("file://")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return dataclasses.replace(trigger, path=os.path.normpath(path))


def _check_triggers(dep: Deployment, flow: Flow) -> None:
    """What only the outer layer can check: an fsspec protocol exists, a SQLAlchemy URL parses,
    templates parse and have an event to read, no trigger waits for its own deployment."""
    from dagflow.scheduler import templates

    for trigger in dep.triggers:
        who = f"trigger {trigger.name!r}"
        if isinstance(trigger, FilesTrigger) and trigger.is_url:
            from fsspec.registry import known_implementations, registry

            protocol = trigger.path.partition("://")[0]
            if protocol not in known_implementations and protocol not in registry:
                raise DeploymentError(
                    f"{who}: path: {trigger.path!r}: unknown fsspec protocol {protocol!r}"
                )
        if isinstance(trigger, RowsTrigger):
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(trigger.url)
            except ArgumentError:
                raise DeploymentError(
                    f"{who}: url: {trigger.url!r} is not a SQLAlchemy URL"
                ) from None
        if isinstance(trigger, FlowRunTrigger) and trigger.matches(dep.flow_name, dep.full_name):
            raise DeploymentError(
                f"{who}: upstream: a run of {trigger.upstream} would start itself again (a cycle)"
            )
    names = templates.templated(dep.parameters)
    if names:
        templates.check(dep.parameters)
        if not dep.triggers:
            raise DeploymentError(
                f"parameters.{names[0]}: a template needs an event: give the deployment a trigger"
            )
        if dep.schedules:
            raise DeploymentError(
                f"parameters.{names[0]}: a template needs an event, and schedule ticks have none: "
                "serve the schedules and the triggers as two deployments"
            )


def check_cycles(deployments: Iterable[Deployment]) -> None:
    """Refuse a cycle of flow-run triggers among deployments served together."""
    cycle = trigger_cycle(deployments)
    if cycle:
        raise DeploymentError(
            f"deployment {cycle[0]!r}: triggers: a cycle of flow-run triggers: "
            + " -> ".join(cycle)
        )


def _schedules(
    cron: str | Iterable[str] | None,
    interval: float | timedelta | Iterable[float | timedelta] | None,
    timezone: str | None,
    anchor: str | float | datetime | None,
) -> list[Schedule]:
    crons = [cron] if isinstance(cron, str) else list(cron or [])
    if interval is None:
        intervals: list[Any] = []
    elif isinstance(interval, int | float | timedelta):
        intervals = [interval]
    else:
        intervals = list(interval)
    tz = timezone or "UTC"
    out: list[Schedule] = []
    for i, text in enumerate(crons):
        out.append(_at(f"cron[{i}]" if len(crons) > 1 else "cron", CronSchedule, text, tz))
    for i, every in enumerate(intervals):
        where = f"interval[{i}]" if len(intervals) > 1 else "interval"
        if anchor is None:
            out.append(_at(where, IntervalSchedule, every, timezone=tz))
        else:
            out.append(_at(where, IntervalSchedule, every, anchor, tz))
    return out


def _at(where: str, kind: Any, *args: Any, **kwargs: Any) -> Schedule:
    try:
        return kind(*args, **kwargs)
    except DeploymentError as exc:
        text = str(exc)
        field, _, rest = text.partition(": ")
        # "cron: invalid ..." -> "cron[1]: invalid ..."; "anchor: ..." -> "anchor: ..."
        text = f"{where}: {rest}" if field in ("cron", "interval") else text
        raise DeploymentError(text) from None


def checked_parameters(dep: Deployment, flow: Flow) -> Deployment:
    """`dep` with its parameters validated against `flow` and kept in JSON-ready form."""
    if flow.name != dep.flow_name:
        raise DeploymentError(
            f"deployment {dep.full_name!r}: entrypoint: {dep.entrypoint} is flow "
            f"{flow.name!r}, not {dep.flow_name!r}"
        )
    from dagflow.scheduler.templates import templated

    given = dict(dep.parameters)
    later = set(templated(given))  # filled from each event, validated when its run starts
    try:
        valid = validate_except(flow, given, later)
    except ParameterError as exc:
        raise DeploymentError(f"deployment {dep.full_name!r}: parameters: {_fields(exc)}") from None
    kept = {key: value if key in later else valid.get(key, value) for key, value in given.items()}
    return dataclasses.replace(dep, parameters=_jsonable(dep.full_name, kept))


def validate_except(flow: Flow, params: Mapping[str, Any], later: set[str]) -> dict[str, Any]:
    """`params` validated against `flow`, except those in `later` (templates, filled per event:
    neither their value nor their absence is an error now)."""
    if not later:
        return flow.validate_parameters(params)
    try:
        return flow.validate_parameters({k: v for k, v in params.items() if k not in later})
    except ParameterError as exc:
        left = [e for e in exc.errors if not (e.get("loc") and e["loc"][0] in later)]
        if left:
            raise ParameterError(exc.flow_name, left) from None
        return {}


def given_parameters(
    flow: Flow,
    full_name: str,
    pairs: Sequence[str] = (),
    params_json: str | None = None,
    base: Mapping[str, Any] | None = None,
    later: Iterable[str] = (),
) -> dict[str, Any]:
    """`--param NAME=VALUE` / `--params-json` text over `base` (a deployment's parameters),
    validated against `flow` (except the names in `later`: templates); returns `base` updated
    with the JSON-ready values given."""
    merged = dict(base or {})
    skip = set(later)
    try:
        valid = parse_parameters(
            flow.parameters,
            lambda given: validate_except(flow, {**merged, **given}, skip),
            pairs,
            params_json,
        )
    except ParameterError as exc:
        raise DeploymentError(
            f"deployment {full_name!r}: parameters: {_fields(exc)}", exc.errors
        ) from None
    given = {pair.partition("=")[0].strip() for pair in pairs}
    if params_json:
        given |= set(json.loads(params_json))
    return _jsonable(full_name, {**merged, **{k: valid[k] for k in given if k in valid}})


def _jsonable(full_name: str, values: dict[str, Any]) -> dict[str, Any]:
    from pydantic_core import to_jsonable_python

    out = {}
    for key, value in values.items():
        try:
            out[key] = to_jsonable_python(value)
        except Exception:
            raise DeploymentError(
                f"deployment {full_name!r}: parameters.{key}: a value of type "
                f"{type(value).__name__} cannot be stored (use JSON values: text, numbers, lists)"
            ) from None
    return out


def _fields(exc: ParameterError) -> str:
    """The field-by-field part of a `ParameterError` (the deployment is named by the caller)."""
    text = str(exc)
    prefix = f"invalid parameters for flow {exc.flow_name!r}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def load_checked(dep: Deployment) -> tuple[Deployment, Flow]:
    """Load `dep`'s flow from its entrypoint and check the deployment against it."""
    try:
        flow = load_flow(dep.entrypoint)
    except DagflowError as exc:
        raise DeploymentError(f"deployment {dep.full_name!r}: entrypoint: {exc}") from None
    return checked_parameters(dep, flow), flow


# ----------------------------------------------------------------------------- the YAML file


class _ScheduleModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    cron: str | None = None
    interval: float | None = None
    anchor: str | None = None
    timezone: str | None = None


class _DeploymentModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    entrypoint: str
    parameters: dict[str, Any] = {}
    schedules: list[_ScheduleModel] = []
    cluster: str | None = None
    tags: list[str] = []
    description: str | None = None
    paused: bool = False
    max_active_runs: int = 1
    catchup: bool = False
    triggers: list[dict[str, Any]] = []


class _FileModel(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    deployments: list[_DeploymentModel]


def is_yaml(target: str) -> bool:
    return target.lower().endswith(YAML_SUFFIXES)


def load_yaml(path: str | os.PathLike[str]) -> list[tuple[Deployment, Flow]]:
    """Every deployment of a YAML file, checked against its flow (entrypoints are relative to
    the file's folder)."""
    import yaml

    file = Path(path)
    shown = str(path)
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise DeploymentError(f"{shown}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise DeploymentError(f"{shown}: not valid YAML{at}: {problem}") from None
    try:
        model = _FileModel.model_validate(data)
    except pydantic.ValidationError as exc:
        raise DeploymentError(f"{shown}: {_yaml_error(exc, data)}") from None
    out: list[tuple[Deployment, Flow]] = []
    names: set[str] = set()
    for i, item in enumerate(model.deployments):
        label = f"{shown}: deployments[{i}] ({item.name})"
        entry = _relative(item.entrypoint, file.parent)
        try:
            flow = load_flow(entry)
        except DagflowError as exc:
            raise DeploymentError(f"{label}: entrypoint: {exc}") from None
        specs: list[Schedule] = []
        for j, sched in enumerate(item.schedules):
            spec = sched.model_dump(exclude_none=True)
            try:
                specs.append(schedule_from_spec(spec, f"schedules[{j}]"))
            except DeploymentError as exc:
                raise DeploymentError(f"{label}: {exc}") from None
        found: list[Trigger] = []
        for j, spec in enumerate(item.triggers):
            try:
                found.append(trigger_from_spec(spec, f"triggers[{j}]"))
            except DeploymentError as exc:
                raise DeploymentError(f"{label}: {exc}") from None
        try:
            dep = build(
                flow,
                item.name,
                schedules=specs,
                triggers=found,
                base=file.parent,
                parameters=item.parameters,
                cluster=item.cluster,
                tags=item.tags,
                description=item.description,
                paused=item.paused,
                max_active_runs=item.max_active_runs,
                catchup=item.catchup,
                entrypoint=entry,
            )
        except DeploymentError as exc:
            raise DeploymentError(f"{shown}: deployments[{i}]: {exc}") from None
        if dep.full_name in names:
            raise DeploymentError(f"{label}: name: {dep.full_name!r} is defined twice")
        names.add(dep.full_name)
        out.append((dep, flow))
    try:
        check_cycles(dep for dep, _ in out)
    except DeploymentError as exc:
        raise DeploymentError(f"{shown}: {exc}") from None
    return out


def _relative(entrypoint: str, base: Path) -> str:
    target, colon, attr = entrypoint.rpartition(":")
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = (base / path).resolve()
        return f"{path}{colon}{attr}"
    return entrypoint


def _yaml_error(exc: pydantic.ValidationError, data: Any) -> str:
    errors = exc.errors(include_url=False)
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = list(err["loc"])
    parts: list[str] = []
    if len(loc) >= 2 and loc[0] == "deployments" and isinstance(loc[1], int):
        index = loc[1]
        name = None
        if isinstance(data, dict) and isinstance(data.get("deployments"), list):
            items = data["deployments"]
            if index < len(items) and isinstance(items[index], dict):
                name = items[index].get("name")
        parts.append(f"deployments[{index}]" + (f" ({name})" if name else ""))
        loc = loc[2:]
    field = ""
    for part in loc:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    where = ": ".join([*parts, field] if field else parts) or "(file)"
    return f"{where}: {message}"
