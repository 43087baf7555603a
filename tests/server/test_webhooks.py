"""`POST /api/v1/webhooks/{name}` on a real server: signed calls start runs, once per delivery;
unsigned, wrongly signed or unconfigured ones are refused, without the admin token."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from dagflow.core.deployments import Deployment
from dagflow.core.triggers import WebhookTrigger
from dagflow.scheduler.webhooks import sign
from tests.server.conftest import Live

SECRET = "s3cret-for-tests"


@pytest.fixture
def hooked(live: Live, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.setenv("DAGFLOW_WEBHOOK_SECRET_ORDERS", SECRET)
    dep = Deployment(
        name="on-order",
        flow_name="ship",
        entrypoint="flows.py:ship",
        parameters={"order": "{{ event.body.order_id }}"},
        triggers=(WebhookTrigger("orders"),),
    )
    live.store.save_deployments([dep])
    return live


def post(live: Live, name: str, body: bytes, headers: dict[str, Any]) -> httpx.Response:
    # no Authorization header: a webhook needs only its signature
    return httpx.post(f"{live.url}/api/v1/webhooks/{name}", content=body, headers=headers)


def test_a_signed_call_starts_one_run_per_delivery(hooked: Live) -> None:
    body = json.dumps({"order_id": 42}).encode()
    headers = {"X-Dagflow-Signature": sign(SECRET, body), "X-Dagflow-Delivery": "d-1",
               "Content-Type": "application/json"}  # fmt: skip
    first = post(hooked, "orders", body, headers)
    assert first.status_code == 202, first.text
    [delivery] = first.json()["deliveries"]
    assert delivery["deployment"] == "ship/on-order" and delivery["run_id"]
    run = hooked.store.get_flow_run(delivery["run_id"])
    assert run.parameters == {"order": 42} and run.event_id == delivery["event_id"]
    again = post(hooked, "orders", body, headers)  # a retried delivery: nothing more
    assert again.status_code == 202 and again.json()["deliveries"][0]["run_id"] is None
    other = post(hooked, "orders", body, {**headers, "X-Dagflow-Delivery": "d-2"})
    assert other.json()["deliveries"][0]["run_id"] not in (None, delivery["run_id"])
    runs = [r for r in hooked.store.list_flow_runs(limit=50) if r.deployment == "ship/on-order"]
    assert len(runs) == 2
    [record] = hooked.store.events(run_id=delivery["run_id"])
    assert record.event.kind == "webhook" and record.event.payload["body"] == {"order_id": 42}


def test_unsigned_wrong_unknown_and_unconfigured_calls_are_refused(
    hooked: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b'{"order_id": 1}'
    assert post(hooked, "orders", body, {}).status_code == 401
    wrong = post(hooked, "orders", body, {"X-Dagflow-Signature": sign("guess", body)})
    assert wrong.status_code == 401 and "signature" in wrong.json()["detail"]
    assert post(hooked, "nosuch", body, {}).status_code == 404
    odd = post(hooked, "orders", body, {"X-Dagflow-Signature": b"sha256=\xe9t\xe9"})
    assert odd.status_code == 401  # not ASCII: refused, not a server error
    big = b"x" * 1_000_001
    too_big = post(hooked, "orders", big, {"X-Dagflow-Signature": sign(SECRET, big)})
    assert too_big.status_code == 413
    monkeypatch.delenv("DAGFLOW_WEBHOOK_SECRET_ORDERS")
    unset = post(hooked, "orders", body, {"X-Dagflow-Signature": sign(SECRET, body)})
    assert unset.status_code == 503 and "DAGFLOW_WEBHOOK_SECRET_ORDERS" in unset.json()["detail"]
    assert hooked.store.events() == []


def test_a_template_naming_a_missing_field_is_a_clear_refusal(hooked: Live) -> None:
    body = b'{"something": "else"}'
    answer = post(hooked, "orders", body, {"X-Dagflow-Signature": sign(SECRET, body)})
    assert answer.status_code == 400
    assert "order_id" in answer.json()["detail"] and "parameters.order" in answer.json()["detail"]
