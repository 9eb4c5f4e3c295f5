"""A config scenario's ``flow`` resolved into the :class:`Flow` a scenario runs.

Steps naming an endpoint take its request (inline fields given beside the name replace
the endpoint's); the CSV of per-user data is read here, relative to the config file, so
engines only ever get rows of data. Errors name the key path (``scenarios.X.flow...``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.config_file import format_validation
from orchestrator.config_requests import EndpointConfig, serialise_body
from orchestrator.errors import ConfigError
from orchestrator.flows import Flow, FlowConfig, FlowStepConfig, read_data
from orchestrator.scenarios import Endpoint, unique_names


def _request(
    step: FlowStepConfig, where: str, endpoints: dict[str, EndpointConfig]
) -> dict[str, Any]:
    base: dict[str, Any] = {}
    if step.endpoint is not None:
        if step.endpoint not in endpoints:
            known = ", ".join(endpoints) or "none"
            raise ConfigError(
                f"{where}.endpoint: unknown endpoint {step.endpoint!r}; known: {known}"
            )
        base = endpoints[step.endpoint].model_dump(exclude={"weight"})
    headers = dict(base.get("headers") or {})
    headers.update(step.headers or {})
    body = base.get("body")
    if step.body is not None:
        try:
            body = serialise_body(step.body)
        except ValueError as exc:
            raise ConfigError(f"{where}.body: {exc}") from None
        if isinstance(step.body, dict | list) and not any(
            k.lower() == "content-type" for k in headers
        ):
            headers["Content-Type"] = "application/json"
    return {
        "method": step.method or base.get("method", "GET"),
        "path": step.path or base["path"],
        "headers": headers,
        "body": body,
    }


def resolve_flow(
    scenario: str, flow: FlowConfig, endpoints: dict[str, EndpointConfig], folder: Path
) -> Flow:
    """The runnable flow of ``scenarios.<scenario>.flow``; ConfigError naming the key."""
    where = f"scenarios.{scenario}.flow"
    requests = [_request(s, f"{where}.steps.{i}", endpoints) for i, s in enumerate(flow.steps)]
    labels = [
        s.name or s.endpoint or f"{r['method']} {r['path']}"
        for s, r in zip(flow.steps, requests, strict=True)
    ]
    steps = [
        {**r, "name": n, "think": s.think, "capture": s.capture, "expect": s.expect}
        for s, r, n in zip(flow.steps, requests, unique_names(labels), strict=True)
    ]
    data = []
    if flow.data is not None:
        path = flow.data.expanduser()
        data = read_data(path if path.is_absolute() else folder / path, f"{where}.data")
    try:
        return Flow.model_validate({"steps": steps, "data": data})
    except ValidationError as exc:
        raise ConfigError(f"{where}: {format_validation(exc)}") from None


def flow_endpoints(flow: Flow) -> list[Endpoint]:
    """The steps as the scenario's endpoints: each step's numbers are an endpoint's."""
    return [
        Endpoint(name=s.name, method=s.method, path=s.path, headers=s.headers, body=s.body)
        for s in flow.steps
    ]
