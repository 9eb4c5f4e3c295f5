"""autocannon (HTTP, closed model) through our Node runner.

autocannon's CLI ``--json`` has no p95 and keeps whole milliseconds, so we drive its
programmatic API from ``tool_configs/node/autocannon-runner.js``: the runner reads one JSON
plan (never user text on argv), records every response time in microseconds into
HdrHistograms per second of the run, and writes one output file that
:mod:`.output` turns into a :class:`LoadTestResult`.

autocannon has no ramp, so the load shape becomes constant steps
(:meth:`LoadShape.steps`) run one after another in the same process; a step of 0
connections is a pause. With ``stop_when_error_rate`` the runner stops after the first
step whose failed share exceeds it (a stress test's breaking point).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from orchestrator import histogram as hdr
from orchestrator import tools
from orchestrator.engines import base
from orchestrator.engines.autocannon import output as parser
from orchestrator.engines.base import Invocation
from orchestrator.errors import ConfigError
from orchestrator.flow_result import FlowStats, flow_stats
from orchestrator.flows import step_checks
from orchestrator.models import LoadTestResult, Transport
from orchestrator.process import ToolRun
from orchestrator.scenarios import Endpoint, Scenario

LOG = logging.getLogger(__name__)

NAME = "autocannon"
TRANSPORTS: frozenset[Transport] = frozenset({"http"})
DEFAULT_FOR: frozenset[Transport] = frozenset({"http"})
NEEDS = ("node",)
EXTERNAL = False
RUNNER_SCRIPT = "autocannon-runner.js"
PLAN_NAME = "autocannon-plan.json"
OUTPUT_NAME = "autocannon-output.json"
# Each second the runner has measured, appended as it goes: read back after a kill.
CHECKPOINTS_NAME = "autocannon-checkpoints.ndjson"
STEP_SECONDS = 2.0
MIN_STEP_SECONDS = 0.5
# Each step starts a fresh autocannon instance (connections, first tick): allow for it.
STEP_OVERHEAD_S = 0.5


def executable() -> str:
    return tools.node_tool_executable(NAME)


def version() -> str | None:
    return tools.node_tool_version(NAME)


def import_file(path: Path) -> LoadTestResult:
    """autocannon's own ``--json`` output."""
    return parser.import_file(path, scenario_name=path.stem.removesuffix(".json"))


def check_scenario(scenario: Scenario) -> None:
    """Refuse what autocannon cannot do, before anything starts."""
    where = f"scenario {scenario.name!r}"
    if scenario.protocol not in TRANSPORTS:
        raise ConfigError(f"autocannon cannot run {scenario.protocol} load ({where})")
    if scenario.shape.model != "closed":
        raise ConfigError(
            f"autocannon runs a closed model (connections), not arrival rates ({where}); "
            "use k6 or artillery for an open model, or max_rate for a request-rate cap"
        )
    if scenario.think_time > 0:
        raise ConfigError(f"autocannon cannot pause between requests (think_time, {where})")
    if scenario.flow is not None and scenario.pipelining > 1:
        raise ConfigError(f"a flow's user waits for each reply: pipelining must be 1 ({where})")
    if scenario.timeout < 1:
        raise ConfigError(f"autocannon's request timeout must be at least 1 s ({where})")
    if scenario.max_rate is not None and scenario.max_rate < 1:
        raise ConfigError(f"autocannon's rate cap must be at least 1 req/s ({where})")
    if scenario.shape.peak < 1:
        raise ConfigError(f"the load shape never opens a connection ({where})")
    origin = origin_of(scenario.base_url)
    for endpoint in scenario.endpoints:
        if origin_of(scenario.url_for(endpoint)) != origin:
            raise ConfigError(
                f"autocannon sends every request to one origin ({origin}); endpoint "
                f"{endpoint.label!r} points elsewhere ({where})"
            )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def request_of(scenario: Scenario, endpoint: Endpoint, index: int) -> dict[str, Any]:
    """One entry of autocannon's ``requests``; ``endpoint``: its index in the plan's
    ``endpoints``, under which the runner records it."""
    request: dict[str, Any] = {
        "method": endpoint.method,
        "path": scenario.request_path(endpoint),
        "endpoint": index,
    }
    if endpoint.headers:
        request["headers"] = dict(endpoint.headers)
    if endpoint.body is not None:
        request["body"] = endpoint.body
    return request


def weighted_requests(scenario: Scenario) -> list[dict[str, Any]]:
    """autocannon's ``requests`` array: weights become repeats, spread out evenly.

    Every connection walks the array in order, so a smooth weighted round-robin order
    (A A B A rather than A A A B) keeps the mix right even over a short run.
    """
    endpoints = scenario.endpoints
    total = sum(e.weight for e in endpoints)
    current = [0] * len(endpoints)
    order: list[dict[str, Any]] = []
    for _ in range(total):
        for i, endpoint in enumerate(endpoints):
            current[i] += endpoint.weight
        best = max(range(len(endpoints)), key=lambda i: current[i])
        current[best] -= total
        order.append(request_of(scenario, endpoints[best], best))
    return order


def flow_requests(scenario: Scenario) -> list[dict[str, Any]]:
    """A flow's steps in order: every connection walks them as one user."""
    return [request_of(scenario, e, i) for i, e in enumerate(scenario.endpoints)]


def flow_plan(scenario: Scenario) -> dict[str, Any] | None:
    """What autocannon-flow.js needs per step (captures, checks, think) and the data rows."""
    if scenario.flow is None:
        return None
    steps = [step_checks(s) for s in scenario.flow.steps]
    return {"steps": steps, "data": scenario.flow.data}


def step_seconds(scenario: Scenario) -> float:
    """Step length for ramps: 2 s, shorter when a ramp is short so that it still climbs."""
    ramps = [d for d, low, high in scenario.shape.segments() if low != high]
    if not ramps:
        return STEP_SECONDS
    return max(MIN_STEP_SECONDS, min(STEP_SECONDS, min(ramps) / 2))


def build_plan(scenario: Scenario, output_path: Path) -> dict[str, Any]:
    """The runner's plan: everything it needs, in one JSON document."""
    return {
        "url": origin_of(scenario.base_url),
        "requests": flow_requests(scenario) if scenario.flow else weighted_requests(scenario),
        # What the runner records each request under (by the request's "endpoint" index).
        "endpoints": [
            {"name": name, "method": method, "path": path}
            for name, (method, path) in scenario.request_targets().items()
        ],
        "pipelining": scenario.pipelining,
        "workers": scenario.workers,
        "overallRate": None if scenario.max_rate is None else round(scenario.max_rate),
        "timeout": scenario.timeout,
        "steps": [
            {"duration": round(duration, 3), "connections": level}
            for duration, level in scenario.shape.steps(step_seconds(scenario))
        ],
        # Percent; after a step failing more than this, the runner runs no further steps.
        "stopWhenErrorRate": scenario.stop_when_error_rate,
        "output": str(output_path),
        "checkpoints": str(output_path.with_name(CHECKPOINTS_NAME)),
        "progress": True,
        # Only with a flow (autocannon-flow.js): a plain mix's plan stays as it was.
        **({"flow": flow_plan(scenario)} if scenario.flow is not None else {}),
    }


def prepare(scenario: Scenario, workdir: Path) -> Invocation:
    check_scenario(scenario)
    node = tools.node_executable()
    script = tools.node_script(RUNNER_SCRIPT)
    env = tools.node_env()
    workdir.mkdir(parents=True, exist_ok=True)
    output_path = (workdir / OUTPUT_NAME).resolve()
    plan = build_plan(scenario, output_path)
    private_dir = base.make_private_dir()
    real, saved = base.write_config(
        private_dir,
        workdir,
        PLAN_NAME,
        json.dumps(plan, indent=2),
        base.scenario_secrets(scenario),
    )
    threads = max(1, min(scenario.workers, scenario.shape.peak))
    cores = os.cpu_count() or 1
    return Invocation(
        tool=NAME,
        argv=[node, str(script), str(real)],
        workdir=workdir,
        output_path=output_path,
        timeout=scenario.shape.total_duration
        + base.DEFAULT_GRACE
        + STEP_OVERHEAD_S * len(plan["steps"]),
        cpu_capacity_percent=100.0 * min(threads, cores),
        env=env,
        private_dir=private_dir,
        saved_configs=[saved],
    )


def parse(scenario: Scenario, invocation: Invocation, run: ToolRun) -> LoadTestResult:
    result = parser.parse_output(
        scenario,
        invocation.output_path,
        run=run,
        tool_version=version(),
        checkpoints=invocation.output_path.with_name(CHECKPOINTS_NAME),
    )
    if scenario.flow is None or not invocation.output_path.is_file():
        return result
    return result.model_copy(update={"flow": flow_of(scenario, invocation.output_path)})


def flow_of(scenario: Scenario, output_path: Path) -> FlowStats:
    """The flow's iterations, from each step record's ``flow`` (autocannon-flow.js)."""
    assert scenario.flow is not None
    steps = json.loads(output_path.read_text(encoding="utf-8")).get("steps") or []
    completed = 0
    failed: Counter[tuple[str, str]] = Counter()
    histograms = []
    for step in steps:
        flow = step.get("flow") or {}
        completed += int(flow.get("completed") or 0)
        for name, kinds in (flow.get("failed") or {}).items():
            for kind, n in kinds.items():
                failed[(name, kind)] += int(n)
        if flow.get("histogram"):
            histograms.append(flow["histogram"])
    names = [s.name for s in scenario.flow.steps]
    return flow_stats(names, completed, failed, hdr.merge(histograms) if histograms else None)
