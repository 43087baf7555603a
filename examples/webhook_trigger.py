"""A run per signed HTTP call: `POST /api/v1/webhooks/orders` on the dagflow server.

    export DAGFLOW_WEBHOOK_SECRET_ORDERS=change-me      # for the server, not the sender's token
    dagflow server start &                              # receives the calls
    python examples/webhook_trigger.py                  # serves the runs
    body='{"order_id": 7}'
    sig=$(printf %s "$body" | openssl dgst -sha256 -hmac change-me | sed 's/.* //')
    curl -X POST localhost:8000/api/v1/webhooks/orders -H "X-Dagflow-Signature: sha256=$sig" \
         -H "X-Dagflow-Delivery: order-7" -H "Content-Type: application/json" -d "$body"

A call without the right signature is refused (401); the same delivery id twice starts one run.
"""

from __future__ import annotations

from dagflow import flow, get_run_logger, triggers


@flow
def ship(order: int) -> int:
    get_run_logger().info("shipping order %d", order)
    return order


if __name__ == "__main__":
    ship.serve(
        "on-order",
        triggers=[triggers.webhook("orders")],
        parameters={"order": "{{ event.body.order_id }}"},
    )
