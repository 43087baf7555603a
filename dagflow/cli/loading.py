"""Loading a flow from what a user typed: see `dagflow.entrypoints` (shared with the scheduler)."""

from __future__ import annotations

from dagflow.entrypoints import load_flow

__all__ = ["load_flow"]
