"""A small real ASGI service (HTTP, WebSocket, SQLite) that load tests run against."""

from __future__ import annotations

from orchestrator.reference_target.app import create_app, serve
from orchestrator.reference_target.faults import LEAKED, TargetSettings

__all__ = ["LEAKED", "TargetSettings", "create_app", "serve"]
