"""A deployment's run asked for now: `dagflow deployments run`, and the server's API and Run form.

One function for every caller, so what a user types is checked the same way everywhere: the
deployment's default parameters, overridden by the JSON object given, then by the `NAME=VALUE`
pairs (coerced by each parameter's type, as `--param` is), validated against the flow loaded
from the deployment's entrypoint (`definitions.given_parameters`; a bad field is one
`DeploymentError` naming it, with the per-field `errors`). The run is created SCHEDULED, origin
`manual`, under a fresh idempotency key, for a `dagflow serve` process serving the deployment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagflow.core.deployments import Deployment
from dagflow.core.flow import FlowDefinition

if TYPE_CHECKING:
    from dagflow.store import Store


def create_run(
    store: Store,
    deployment: Deployment,
    flow: FlowDefinition[..., Any],
    pairs: Sequence[str] = (),
    params_json: str | None = None,
) -> str:
    """Validate the parameters given over `deployment`'s and create its run; returns its id."""
    from dagflow.scheduler.definitions import given_parameters
    from dagflow.store import NewRun

    params = given_parameters(flow, deployment.full_name, pairs, params_json, deployment.parameters)
    key = f"manual:{uuid.uuid4().hex}"
    created = store.create_runs([NewRun(deployment, time.time(), "manual", key, params)])
    return created[0]
