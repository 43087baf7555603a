"""The tables of the run history (SQLAlchemy Core), the one place their shape is written down.

- `flows`: one row per flow name, with the last version seen.
- `flow_runs`: one row per run; `heartbeat` is refreshed by the driver's writer while it lives.
- `task_runs`: one row per (run, task key) holding the latest known state of the task run; the
  key is a Dask key (`task-token[n]`), so a task call run again by a later flow attempt has a row
  per attempt, the older ones `superseded`.
- `state_history`: append-only, one row per transition of a run (`task_key = ''`) or of a task
  run; unique on (run_id, task_key, attempt, to_state), which is an event's identity, so a
  transition delivered twice is stored once.
- `logs`: log records; unique on (run_id, ident), `ident` a hash of the record's identity.
- `task_edges`: a run's dependencies between task names (one row per pair), for its task graph.
- `deployments` (keyed by `flow/name`) and `deployment_schedules` (one row per schedule, in
  order): what `dagflow serve` registered. A flow run created for a deployment names it in
  `flow_runs.deployment_id` (no foreign key: a removed deployment's runs stay as history), with
  its tick (`scheduled_time`), its `origin` (schedule, backfill, manual) and its
  `idempotency_key`, unique, so a tick's run is created once whoever asks. `claimed_by` /
  `claimed_at` say which serve process claimed it; `cancel_requested` is when someone asked to
  cancel it (a live driver polls it); `resume_requested` when someone asked for a FAILED or
  CRASHED run of a deployment to be resumed by a serving process (which clears it as it claims).
  `deployments.triggers` holds its triggers' specs (JSON).
- `events`: every event a trigger saw (and every manual run request), keyed by an id derived
  from its identity, so an event is recorded once and starts its run once; `run_id` names the
  run it started and `flow_runs.event_id` the event that started a run (its "why").
  `trigger_positions`: per (deployment, trigger), where it is (a watermark), how many events it
  recorded and the last one.
- `variables`: named JSON values (`dagflow variables`), read by flows and tasks.
- `run_pauses`: a run's pauses for approval (`dagflow.pause`), one row per pause, with the
  answer an approver gave and what the run's driver made of it.
- `concurrency_limits`: at most `slots` task runs carrying `tag` at once, across the cluster.
- `secrets`: named values encrypted with Fernet (`store/secrets.py`); the plain value is never
  stored, and only a run's driver decrypts it.

`state_history`, `logs` and `task_edges` name their run without a foreign key: they are the hot,
append-only tables, a key check per row would cost about as much as the insert itself, and the
writer only writes rows of runs whose `flow_runs` row exists (it drops, and logs, events of
unknown runs).

Every time is a float: seconds since the UNIX epoch (UTC), as the engine's events carry them.
The Alembic revisions in `migrations/versions` must create exactly this (a test compares them).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

VERSION_TABLE = "dagflow_alembic_version"
FLOW_LEVEL = ""  # task_key of a flow run's own transitions in `state_history`

flows = Table(
    "flows",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("version", String(255), nullable=True),
    Column("created", Float, nullable=False),
)

flow_runs = Table(
    "flow_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow_name", String(255), ForeignKey("flows.name"), nullable=False),
    Column("flow_version", String(255), nullable=True),
    Column("parameters", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created", Float, nullable=False),
    Column("started", Float, nullable=True),
    Column("ended", Float, nullable=True),
    Column("heartbeat", Float, nullable=True),
    Column("parent_run_id", String(64), nullable=True),
    Column("parent_task_key", String(255), nullable=True),
    Column("cluster_address", String(512), nullable=True),
    Column("dashboard_link", String(1024), nullable=True),
    Column("entrypoint", String(1024), nullable=True),  # file.py:flow, for `dagflow resume`
    Column("error_type", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("result_location", Text, nullable=True),  # the flow's persisted return value
    Column("result_serializer", String(32), nullable=True),
    Column("deployment_id", String(512), nullable=True),  # flow/name
    Column("scheduled_time", Float, nullable=True),  # the tick (or when a manual run was asked)
    Column("origin", String(32), nullable=True),  # schedule | backfill | manual
    Column("idempotency_key", String(600), nullable=True),
    Column("claimed_by", String(255), nullable=True),  # the serve process that claimed the run
    Column("claimed_at", Float, nullable=True),
    Column("cancel_requested", Float, nullable=True),
    Column("resume_requested", Float, nullable=True),  # queued for a serving process to resume
    Column("event_id", String(64), nullable=True),  # the event that started it (its "why")
    Index("ix_flow_runs_flow_created", "flow_name", "created"),
    Index("ix_flow_runs_state_created", "state", "created"),
    Index("ix_flow_runs_state_heartbeat", "state", "heartbeat"),
    Index("ix_flow_runs_created", "created"),
    Index("ix_flow_runs_parent", "parent_run_id"),
    Index("ux_flow_runs_idempotency_key", "idempotency_key", unique=True),
    Index("ix_flow_runs_state_scheduled", "state", "scheduled_time"),
    Index("ix_flow_runs_deployment_state", "deployment_id", "state"),
    Index("ix_flow_runs_resume_requested", "resume_requested"),
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("run_id", String(64), ForeignKey("flow_runs.id"), primary_key=True),
    Column("task_key", String(255), primary_key=True),
    Column("task_name", String(255), nullable=False),
    Column("map_index", Integer, nullable=True),
    Column("state", String(32), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("started", Float, nullable=True),
    Column("ended", Float, nullable=True),
    Column("worker", String(512), nullable=True),
    Column("error_type", String(255), nullable=True),
    Column("error", Text, nullable=True),
    Column("traceback", Text, nullable=True),
    Column("result_location", Text, nullable=True),
    Column("result_size", BigInteger, nullable=True),  # bytes, as written by the worker
    Column("result_serializer", String(32), nullable=True),  # cloudpickle | json
    Column("cache_key", String(255), nullable=True),
    Column("result_identity", String(64), nullable=True),  # code + inputs the result came from
    # a later flow attempt (a retry of the flow, a resume) ran the same task call again
    Column("superseded", Boolean, nullable=False, server_default=false()),
    Index("ix_task_runs_run_name", "run_id", "task_name"),
    Index("ix_task_runs_cache_key", "cache_key", "ended"),
)

state_history = Table(
    "state_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("task_key", String(255), nullable=False),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=False),
    Column("time", Float, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("message", Text, nullable=False),
    UniqueConstraint(
        "run_id", "task_key", "attempt", "to_state", name="uq_state_history_transition"
    ),
)

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("task_key", String(255), nullable=True),
    Column("task_name", String(255), nullable=True),
    Column("level", Integer, nullable=False),
    Column("time", Float, nullable=False),
    Column("worker", String(512), nullable=True),
    Column("message", Text, nullable=False),
    Column("ident", String(32), nullable=False),
    UniqueConstraint("run_id", "ident", name="uq_logs_ident"),
    Index("ix_logs_run_time", "run_id", "time"),
)

task_edges = Table(
    "task_edges",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("upstream", String(255), primary_key=True),
    Column("downstream", String(255), primary_key=True),
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(512), primary_key=True),  # flow/name
    Column("flow_name", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("entrypoint", String(1024), nullable=False),
    Column("parameters", Text, nullable=False),  # JSON object
    Column("cluster", String(512), nullable=True),
    Column("tags", Text, nullable=False),  # JSON list
    Column("description", Text, nullable=True),
    Column("paused", Boolean, nullable=False),
    Column("max_active_runs", Integer, nullable=False),
    Column("catchup", Boolean, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("triggers", Text, nullable=True),  # JSON list of trigger specs (core/triggers.py)
    UniqueConstraint("flow_name", "name", name="uq_deployments_flow_name"),
)

deployment_schedules = Table(
    "deployment_schedules",
    metadata,
    Column(
        "deployment_id",
        String(512),
        ForeignKey("deployments.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # cron | interval
    Column("cron", String(255), nullable=True),
    Column("interval_seconds", Float, nullable=True),
    Column("anchor", Float, nullable=True),
    Column("timezone", String(64), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", String(64), primary_key=True),  # derived from the event's identity: once
    Column("kind", String(32), nullable=False),  # files | rows | flow_run | webhook | manual
    Column("source", String(1024), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("time", Float, nullable=False),
    Column("deployment_id", String(512), nullable=False),
    Column("trigger", String(255), nullable=False),
    Column("run_id", String(64), nullable=True),  # the run it started (None: see `error`)
    Column("error", Text, nullable=True),  # why it started no run (a template, the parameters)
    Index("ix_events_time", "time"),
    Index("ix_events_deployment_trigger_time", "deployment_id", "trigger", "time"),
    Index("ix_events_run", "run_id"),
)

trigger_positions = Table(
    "trigger_positions",
    metadata,
    Column("deployment_id", String(512), primary_key=True),
    Column("trigger", String(255), primary_key=True),
    Column("position", Text, nullable=True),  # JSON: a rows trigger's watermark, ...
    Column("events", Integer, nullable=False),  # events recorded (files seen, rows, ...)
    Column("last_event_id", String(64), nullable=True),
    Column("last_event_time", Float, nullable=True),
    Column("updated", Float, nullable=False),
)

variables = Table(
    "variables",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("token", Text, nullable=False),  # a Fernet token of the UTF-8 value
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

concurrency_limits = Table(
    "concurrency_limits",
    metadata,
    Column("tag", String(255), primary_key=True),
    Column("slots", Integer, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

run_pauses = Table(
    "run_pauses",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("number", Integer, primary_key=True),  # the body's first pause is 1
    Column("reason", Text, nullable=False),
    Column("input_schema", Text, nullable=True),  # JSON schema of the expected input
    Column("created", Float, nullable=False),
    Column("deadline", Float, nullable=True),
    Column("status", String(16), nullable=False),  # dagflow.core.pauses.PauseStatus
    Column("submitted", Text, nullable=True),  # the input given with an approval (JSON)
    Column("answered_by", String(255), nullable=True),
    Column("error", Text, nullable=True),  # why the last input was refused
    Column("decided", Float, nullable=True),
)
