"""Per-endpoint SLA gates: ``p95[login] < 300ms``, ``errorRate[login] < 1%``, and
``throughputPerEndpoint > 10/s`` (the slowest endpoint's rate).

Judged on the numbers each engine measured per endpoint (``result.endpoints``); a run whose
engine measured none is "not measured" with the reason, never an estimate. A scenario of a
single endpoint is the exception: all its requests are that endpoint's, so the run's own
numbers are that endpoint's, measured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from orchestrator.errors import ConfigError
from orchestrator.models import EndpointStats, LoadTestResult
from orchestrator.scenarios import Scenario

# Metrics an endpoint has (as in EndpointStats); throughputPerEndpoint judges every one.
SELECTABLE = (
    "errorRate", "throughput", "throughputPerEndpoint",
    "min", "mean", "max", "p50", "p90", "p95", "p99", "p999",
)  # fmt: skip
PER_ENDPOINT = "throughputPerEndpoint"


class Gate(Protocol):
    @property
    def metric(self) -> str: ...
    @property
    def endpoint(self) -> str | None: ...
    @property
    def text(self) -> str: ...


def split_selector(text: str) -> tuple[str, str | None]:
    """``p95[login]`` -> (``p95``, ``login``); ``p95`` -> (``p95``, None)."""
    found = re.fullmatch(r"\s*([^\[\s]+)\s*(?:\[([^\]]*)\])?\s*", text)
    if found is None:
        return text, None
    return found[1], None if found[2] is None else found[2].strip()


def check_selector(metric: str, endpoint: str | None) -> None:
    """ValueError when ``metric`` has no per-endpoint value to select."""
    if endpoint is None:
        return
    if not endpoint.strip():
        raise ValueError(f"{metric}[]: the endpoint name is empty")
    if metric not in SELECTABLE:
        raise ValueError(
            f"{metric} has no per-endpoint value; per endpoint: {', '.join(SELECTABLE)}"
        )


def check_endpoint_names(gates: Iterable[Gate], scenario: Scenario, where: str) -> None:
    """ConfigError naming the first gate whose ``[endpoint]`` the scenario does not have."""
    known = scenario.request_names  # the endpoints, or the messages that expect a reply
    for gate in gates:
        if gate.endpoint is not None and gate.endpoint not in known:
            names = ", ".join(repr(n) for n in known) or "none"
            raise ConfigError(
                f"{where}: threshold {gate.text!r}: scenario {scenario.name!r} has no "
                f"endpoint {gate.endpoint!r}; its endpoints: {names}"
            )


def measure(
    result: LoadTestResult,
    gate: Gate,
    path: str,
    scenario: Scenario | None,
    lookup: Callable[[dict[str, Any], str], Any],
) -> tuple[float | None, str | None]:
    """(value, detail) of a per-endpoint gate; ``path`` is the metric's camelCase path
    (the same in an endpoint's numbers), ``lookup`` reads it from a dumped model."""
    endpoints = result.endpoints or _whole_run(result, scenario)
    if not endpoints:
        why = result.missing.get("endpoints") or "the engine measured no per-endpoint numbers"
        return None, f"not measured per endpoint: {why}"
    if gate.endpoint is None:  # throughputPerEndpoint: the slowest endpoint is the gate's
        rates = [(e.throughput, e.name) for e in endpoints]
        unknown = [name for rate, name in rates if rate is None]
        if unknown:
            return None, f"throughput of {', '.join(unknown)} not measured"
        lowest, name = min((rate, name) for rate, name in rates if rate is not None)
        return lowest, f"lowest: {name}" if len(rates) > 1 else None
    found = next((e for e in endpoints if e.name == gate.endpoint), None)
    if found is None:
        measured = ", ".join(e.name for e in endpoints)
        return None, f"no endpoint {gate.endpoint!r} in the result (it has: {measured})"
    value = lookup(found.model_dump(by_alias=True, mode="json"), path)
    if value is None:
        return None, f"{path} of {gate.endpoint!r} was not measured"
    return float(value), None


def _whole_run(result: LoadTestResult, scenario: Scenario | None) -> list[EndpointStats]:
    """A single-endpoint HTTP scenario's run as its one endpoint (all its requests are)."""
    if scenario is None or scenario.protocol != "http" or len(scenario.endpoints) != 1:
        return []
    if result.total_requests is None or result.successful_requests is None:
        return []
    return [
        EndpointStats(
            name=scenario.endpoint_names[0],
            total_requests=result.total_requests,
            successful_requests=result.successful_requests,
            failed_requests=result.failed_requests or 0,
            error_rate=result.error_rate,
            throughput=result.throughput,
            response_time=result.response_time,
        )
    ]
