"""A deployment's run asked for now: `dagflow deployments run`, and the server's API and Run form.

One function for every caller, so what a user types is checked the same way everywhere: the
deployment's default parameters, overridden by the JSON object given, then by the `NAME=VALUE`
pairs (coerced by each parameter's type, as `--param` is), validated against the flow loaded
from the deployment's entrypoint (`definitions.given_parameters`; a bad field is one
`DeploymentError` naming it, with the per-field `errors`). A parameter the deployment templates
from a trigger's event (`{{ event.path }}`) must be given. The request is recorded as a `manual`
event (who asked, with which parameters: every run has a "why"), which creates the run SCHEDULED,
origin `manual`, for a `dagflow serve` process serving the deployment.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event
from dagflow.core.flow import FlowDefinition
from dagflow.errors import DeploymentError

if TYPE_CHECKING:
    from dagflow.store import Store


def create_run(
    store: Store,
    deployment: Deployment,
    flow: FlowDefinition[..., Any],
    pairs: Sequence[str] = (),
    params_json: str | None = None,
    requested_by: str = "unknown",
) -> str:
    """Validate the parameters given over `deployment`'s and create its run; returns its id."""
    from dagflow.scheduler.definitions import given_parameters
    from dagflow.scheduler.templates import templated

    base = dict(deployment.parameters)
    given = {p.partition("=")[0].strip() for p in pairs}
    if params_json:
        try:
            given |= set(json.loads(params_json))
        except (ValueError, TypeError):
            pass  # given_parameters says what is wrong with it
    missing = sorted(set(templated(base)) - given)
    if missing:
        raise DeploymentError(
            f"deployment {deployment.full_name!r}: parameters.{missing[0]}: a template of the "
            f"event ({base[missing[0]]}); a manual run gives it: -p {missing[0]}=VALUE"
        )
    params = given_parameters(flow, deployment.full_name, pairs, params_json, base)
    event = Event(
        uuid.uuid4().hex,
        "manual",
        "dagflow deployments run",
        {"user": requested_by, "parameters": params},
        time.time(),
    )
    fired = store.fire(deployment, "manual", [[event]], lambda _: params, origin="manual")
    run_id = fired[0].run_id
    if run_id is None:
        raise DeploymentError(
            f"deployment {deployment.full_name!r}: run not created: {fired[0].error}"
        )
    return run_id


def local_user() -> str:
    """`user@host` of this process, for the record of who asked for a run."""
    import getpass
    import socket

    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except Exception:
        return "unknown"
