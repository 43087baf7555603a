"""Webhook deliveries: an HTTP call becomes an event of each deployment with that webhook.

`receive(store, name, body, signature, delivery)` is what `POST /api/v1/webhooks/{name}` does
(`dagflow/server/routes/webhooks.py` is only its HTTP side), kept here so it reads like the other
triggers and is tested without a server:

1. the deployments with a webhook trigger named `name` (none: `WebhookUnknown`, 404);
2. the signature: `X-Dagflow-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed by the
   secret in the environment variable the trigger names (`secret_env`) of the receiving process.
   A missing or wrong signature is `WebhookRefused` (401); an unset secret refuses every call
   (`WebhookUnconfigured`, 503): a webhook is never open without its secret. The admin token is
   not needed, so a webhook can be exposed to a third party without it;
3. one event per deployment: its identity is the `X-Dagflow-Delivery` header when the sender
   gives one (a retried delivery then starts nothing more), else a fresh id (each call its own
   event); its payload `body` is the JSON body (or the text), so `{{ event.body.order_id }}`.

Runs are created SCHEDULED (once, by the event's id); a `dagflow serve` process serving the
deployment claims and runs them. A paused deployment records nothing (`WebhookRefused`, 409).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagflow.core.events import Event, event_id, template_context
from dagflow.core.triggers import WebhookTrigger
from dagflow.errors import DagflowError
from dagflow.scheduler import templates

if TYPE_CHECKING:
    from dagflow.store import Store

MAX_BODY = 1_000_000  # bytes
HEADER = "x-dagflow-signature"
DELIVERY = "x-dagflow-delivery"


class WebhookError(DagflowError):
    """A webhook call was not accepted; `status` is its HTTP status."""

    status = 400


class WebhookTooLarge(WebhookError):
    status = 413


class WebhookUnknown(WebhookError):
    status = 404


class WebhookRefused(WebhookError):
    status = 401


class WebhookPaused(WebhookError):
    status = 409


class WebhookUnconfigured(WebhookError):
    status = 503


@dataclass(frozen=True, slots=True)
class Delivered:
    """What one call did, per deployment: the event and the run it started (None: recorded
    before, by the same delivery id)."""

    deployment: str
    event_id: str
    run_id: str | None


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: what a sender computes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def receive(
    store: Store,
    name: str,
    body: bytes,
    signature: str | None,
    delivery: str | None = None,
    content_type: str = "",
    environ: Mapping[str, str] | None = None,
) -> list[Delivered]:
    """Check and record one webhook call (see the module docstring)."""
    env = os.environ if environ is None else environ
    if len(body) > MAX_BODY:
        raise WebhookTooLarge(f"webhook {name!r}: body larger than {MAX_BODY} bytes")
    targets = [
        (info.deployment, t)
        for info in store.deployments()
        for t in info.deployment.triggers
        if isinstance(t, WebhookTrigger) and t.name == name
    ]
    if not targets:
        raise WebhookUnknown(f"no webhook named {name!r}")
    payload_body = _parse(body, content_type)
    delivered: list[Delivered] = []
    for dep, trigger in targets:
        secret = env.get(trigger.secret_env or "")
        if not secret:
            raise WebhookUnconfigured(
                f"webhook {name!r}: its secret is not set (${trigger.secret_env} of the server)"
            )
        given = (signature or "").strip().encode("utf-8", "replace")
        if not given or not hmac.compare_digest(sign(secret, body).encode(), given):
            raise WebhookRefused(f"webhook {name!r}: missing or wrong {HEADER} signature")
        if dep.paused:
            raise WebhookPaused(f"webhook {name!r}: deployment {dep.full_name} is paused")
        identity = delivery.strip()[:200] if delivery and delivery.strip() else uuid.uuid4().hex
        payload: dict[str, Any] = {"body": payload_body, "delivery": identity}
        event = Event(
            event_id(dep.full_name, trigger.name, identity), "webhook", name, payload, time.time()
        )
        params = dict(dep.parameters)

        def render(events: list[Event], params: dict[str, Any] = params) -> dict[str, Any]:
            return templates.render(params, template_context(events))

        fired = store.fire(dep, trigger.name, [[event]], render)
        if fired and fired[0].error:
            raise WebhookError(f"webhook {name!r}: {fired[0].error}")
        delivered.append(Delivered(dep.full_name, event.id, fired[0].run_id if fired else None))
    return delivered


def _parse(body: bytes, content_type: str) -> Any:
    text = body.decode("utf-8", "replace")
    if "json" in content_type or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text
