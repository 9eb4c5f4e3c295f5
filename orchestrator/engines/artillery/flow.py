"""Artillery flows: a user journey as Artillery's own steps, and its iterations read back.

Artillery runs the steps natively: named requests (the processor records each under its
step), its ``capture`` (our dotted JSON path becomes JSONPath), ``{{ var }}`` templating
(the same syntax as ours) and ``think``. A think range, ``expect`` checks, data rows and the
per-iteration counts live in our processor (``tool_configs/artillery/processor.js``), which
reads the steps from ``config.variables.orchestrate.flow``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from orchestrator import histogram as hdr
from orchestrator.flow_result import FlowStats, flow_stats
from orchestrator.flows import Capture, FlowStep, step_checks
from orchestrator.scenarios import Endpoint, Scenario


def http_request(scenario: Scenario, step: FlowStep, endpoint: Endpoint) -> dict[str, Any]:
    # The name reaches the processor's hooks: each request is recorded under its step.
    params: dict[str, Any] = {"url": scenario.url_for(endpoint), "name": step.name}
    if step.headers:
        params["headers"] = dict(step.headers)
    if step.body is not None:
        params["body"] = step.body
    return {step.method.lower(): params}


def json_path(dotted: str) -> str:
    """Our dotted path as Artillery's JSONPath: ``a.0.b`` -> ``$.a[0].b``."""
    parts = [f"[{k}]" if k.isdigit() else f".{k}" for k in dotted.split(".")]
    return "$" + "".join(parts)


def artillery_capture(capture: Capture) -> dict[str, Any]:
    if capture.json_path is not None:
        return {"json": json_path(capture.json_path), "as": capture.var}
    if capture.header is not None:
        return {"header": capture.header, "as": capture.var}
    return {"regexp": capture.regex, "group": 1, "as": capture.var}


def flow_scenarios(scenario: Scenario) -> list[dict[str, Any]]:
    """The flow as Artillery steps: its own capture, ``{{ var }}`` templating (the same
    syntax as ours) and think; a think range and expect checks go through the processor."""
    assert scenario.flow is not None
    steps: list[dict[str, Any]] = []
    for step, endpoint in zip(scenario.flow.steps, scenario.endpoints, strict=True):
        request = http_request(scenario, step, endpoint)
        if step.capture:
            request[step.method.lower()]["capture"] = [artillery_capture(c) for c in step.capture]
        steps.append(request)
        low, high = step.think
        if high > 0 and low == high:
            steps.append({"think": _think(low)})
        elif high > 0:
            # orchestrateAfterResponse drew this step's pause; the function sleeps it.
            steps.append({"function": "orchestrateThink"})
    closed = scenario.shape.model == "closed"
    flow = [{"loop": steps, "whileTrue": "orchestrateKeepGoing"}] if closed else steps
    return [
        {
            "name": scenario.name,
            "beforeScenario": ["orchestrateArrive"],
            "afterScenario": ["orchestrateLeave"],
            "beforeRequest": ["orchestrateBeforeRequest"],
            "afterResponse": ["orchestrateAfterResponse"],
            "onError": ["orchestrateOnError"],
            "flow": flow,
        }
    ]


def _think(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"  # as artillery.format_think: a bare number is ms


def flow_variables(scenario: Scenario) -> dict[str, Any]:
    """What the processor reads: each step's checks, its place, and the data rows."""
    assert scenario.flow is not None
    last = len(scenario.flow.steps) - 1
    return {
        "steps": {
            s.name: {**step_checks(s), "index": i, "last": i == last}
            for i, s in enumerate(scenario.flow.steps)
        },
        "data": scenario.flow.data,
    }


def flow_of(scenario: Scenario, data_dir: Path) -> FlowStats:
    """The flow's iterations, summed over the processor's per-worker files."""
    assert scenario.flow is not None
    completed = 0
    failed: Counter[tuple[str, str]] = Counter()
    histogram = hdr.new_histogram()
    for path in sorted(data_dir.glob("*.json")):
        try:
            flow = json.loads(path.read_text(encoding="utf-8")).get("flow") or {}
        except (OSError, ValueError):
            continue  # the result's own parser reports unreadable worker files
        completed += int(flow.get("completed") or 0)
        for name, kinds in (flow.get("failed") or {}).items():
            for kind, n in kinds.items():
                failed[(name, kind)] += int(n)
        hdr.add_buckets(histogram, ((int(us), int(n)) for us, n in flow.get("values") or []))
    names = [s.name for s in scenario.flow.steps]
    return flow_stats(names, completed, failed, histogram)
