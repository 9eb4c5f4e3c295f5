"""Artillery (WebSocket and HTTP): a generated script run with ``artillery run --output``.

What a "request" is here:

* WebSocket: one message round trip (a message sent with ``expect_reply``, answered by
  the reply that echoes its ``id``, first-in-first-out for messages without one) is one
  request; a connection that could not be opened is one failed request. So
  ``totalRequests = round trips attempted + failed connections`` and ``errorRate`` is the
  share of those that did not complete. Fire-and-forget messages count as messages sent,
  not as requests.
* HTTP: one request as Artillery counts it (``http.requests``); a response with status
  >= 400 or no response at all is a failure. Latency is Artillery's own clock: time to
  first byte.

Artillery's ws engine measures no latency, so each WebSocket user's session is run by our
processor (``tool_configs/artillery/processor.js``) as one function step; it records
every round trip (and, for HTTP, every time to first byte) in µs into per-worker files
that :mod:`.output` merges into an exact HdrHistogram.

How the load shape maps onto Artillery phases (arrivals only, so the closed model is
built from arrivals plus sessions that stay):

* open model (stage targets are new sessions per second): a hold is
  ``{duration, arrivalRate}`` (a level of 0 is a ``pause``), a ramp is
  ``{duration, arrivalRate: from, rampTo: to}`` with the duration rounded to whole
  seconds (Artillery ramps step once a second); each user runs the flow once
  (messages x loops for WebSocket, one weighted request for HTTP).
* closed model (stage targets are concurrent users / connections): users are brought in
  with ``arrivalCount`` phases (all on Artillery's first worker) and capped with
  ``maxVusers`` = the shape's peak. The first stage's level arrives during its first
  second, a rising ramp brings ``to - from`` users spread over the ramp, holds and falls
  are pauses. Each user repeats its flow and, after every pass, leaves if more users are
  active than the shape's level at that moment, or when the shape is over, so 50
  connections stay 50 open connections and ramps down are followed one pass late at most.

Durations and think times are always written with units (``2500ms``): Artillery reads a
bare ``0.5`` as 0.5 ms.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from orchestrator import tools
from orchestrator.engines import base
from orchestrator.engines.artillery import output as parser
from orchestrator.engines.artillery.flow import flow_of, flow_scenarios, flow_variables
from orchestrator.engines.base import Invocation
from orchestrator.errors import ConfigError
from orchestrator.models import LoadTestResult, Transport
from orchestrator.process import ToolRun
from orchestrator.scenarios import Endpoint, LoadShape, Scenario

LOG = logging.getLogger(__name__)

NAME = "artillery"
TRANSPORTS: frozenset[Transport] = frozenset({"ws", "http"})
DEFAULT_FOR: frozenset[Transport] = frozenset({"ws"})
NEEDS = ("node",)
EXTERNAL = False
SCRIPT_NAME = "artillery.yml"
OUTPUT_NAME = "artillery-output.json"
DATA_DIR_NAME = "artillery-data"
DATA_ENV = "ORCHESTRATE_ARTILLERY_DATA"
# Seconds in which a closed model's first users connect (Artillery needs a phase for it).
RAMP_IN_S = 1.0
CONNECT_TIMEOUT_S = 10.0


def executable() -> str:
    return tools.node_tool_executable(NAME)


def version() -> str | None:
    return tools.node_tool_version(NAME)


def import_file(path: Path) -> LoadTestResult:
    """Artillery's ``--output`` JSON (sketch percentiles, labelled approximate)."""
    return parser.import_file(path, scenario_name=path.stem.removesuffix(".json"))


def processor_path() -> Path:
    return (tools.tool_configs_dir() / "artillery" / "processor.js").resolve()


def telemetry_blocker_path() -> Path:
    return (tools.tool_configs_dir() / "artillery" / "no_telemetry.js").resolve()


def check_scenario(scenario: Scenario) -> None:
    where = f"scenario {scenario.name!r}"
    if scenario.protocol not in TRANSPORTS:
        raise ConfigError(f"artillery cannot run {scenario.protocol} load ({where})")
    if scenario.shape.peak < 1:
        raise ConfigError(f"the load shape never starts a user ({where})")
    if scenario.pipelining != 1:
        raise ConfigError(f"artillery does not pipeline requests ({where})")
    if scenario.max_rate is not None:
        raise ConfigError(
            f"artillery has no request-rate cap (max_rate, {where}); use the open model"
        )


def format_seconds(seconds: float) -> int | str:
    """A duration Artillery reads right: whole seconds as a number, else milliseconds."""
    if float(seconds).is_integer():
        return int(seconds)
    return f"{round(seconds * 1000)}ms"


def format_think(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


def open_phases(shape: LoadShape) -> list[dict[str, Any]]:
    phases: list[dict[str, Any]] = []
    for duration, low, high in shape.segments():
        if low == high:
            if high == 0:
                phases.append({"pause": format_seconds(duration)})
            else:
                phases.append({"duration": format_seconds(duration), "arrivalRate": high})
        else:
            whole = max(1, round(duration))
            phases.append({"duration": whole, "arrivalRate": low, "rampTo": high})
    return phases


def closed_phases(shape: LoadShape) -> list[dict[str, Any]]:
    phases: list[dict[str, Any]] = []
    cap = shape.peak
    first = True
    for duration, low, high in shape.segments():
        rest = duration
        if first and low > 0:
            ramp_in = min(RAMP_IN_S, duration)
            phases.append(
                {"duration": format_seconds(ramp_in), "arrivalCount": low, "maxVusers": cap}
            )
            rest = duration - ramp_in
        first = False
        if rest <= 0:
            continue
        if high > low:
            phases.append(
                {"duration": format_seconds(rest), "arrivalCount": high - low, "maxVusers": cap}
            )
        else:
            phases.append({"pause": format_seconds(rest)})
    return phases


def first_arrival_seconds(phases: list[dict[str, Any]]) -> float:
    """When the first user arrives: Artillery spaces ``arrivalCount`` users by d/n from d/n."""
    start = 0.0
    for phase in phases:
        seconds = _phase_seconds(phase.get("pause", phase.get("duration", 0)))
        count = int(phase.get("arrivalCount", 0))
        if count:
            return start + seconds / count
        if phase.get("arrivalRate") or phase.get("rampTo"):
            return start
        start += seconds
    return start


def _phase_seconds(value: int | str) -> float:
    if isinstance(value, str) and value.endswith("ms"):
        return float(value[:-2]) / 1000.0
    return float(value)


def flow_pass_seconds(scenario: Scenario) -> float:
    """Longest time a user can go on after the shape ended: users start no new loop
    then (processor.js), so one loop, whose replies may each time out."""
    if scenario.flow is not None:
        return sum(scenario.timeout + s.think[1] for s in scenario.flow.steps)
    if scenario.ws is None:
        return scenario.timeout + scenario.think_time
    per_loop = sum(
        m.think + (scenario.timeout if m.expect_reply else 0.0) for m in scenario.ws.messages
    )
    return CONNECT_TIMEOUT_S + per_loop


def ws_variables(scenario: Scenario) -> dict[str, Any]:
    assert scenario.ws is not None
    return {
        "url": scenario.ws_url,
        "headers": dict(scenario.ws.headers),
        "loops": scenario.ws.loops,
        "messages": [
            {
                # The processor records the message's round trips under it.
                "name": name,
                "payload": m.payload,
                "expectReply": m.expect_reply,
                "think": format_think(m.think),
                "thinkMs": round(m.think * 1000),
            }
            for name, m in zip(scenario.ws.message_names, scenario.ws.messages, strict=True)
        ],
    }


def http_request(scenario: Scenario, endpoint: Endpoint, name: str) -> dict[str, Any]:
    # The name reaches the processor's hooks: each request is recorded under its endpoint.
    params: dict[str, Any] = {"url": scenario.url_for(endpoint), "name": name}
    if endpoint.headers:
        params["headers"] = dict(endpoint.headers)
    if endpoint.body is not None:
        params["body"] = endpoint.body
    return {endpoint.method.lower(): params}


def http_scenarios(scenario: Scenario) -> list[dict[str, Any]]:
    closed = scenario.shape.model == "closed"
    out: list[dict[str, Any]] = []
    for name, endpoint in zip(scenario.endpoint_names, scenario.endpoints, strict=True):
        steps: list[dict[str, Any]] = [http_request(scenario, endpoint, name)]
        if scenario.think_time > 0:
            steps.append({"think": format_think(scenario.think_time)})
        flow = [{"loop": steps, "whileTrue": "orchestrateKeepGoing"}] if closed else steps
        out.append(
            {
                "name": name,
                "weight": endpoint.weight,
                "beforeScenario": ["orchestrateArrive"],
                "afterScenario": ["orchestrateLeave"],
                "afterResponse": ["orchestrateAfterResponse"],
                "onError": ["orchestrateOnError"],
                "flow": flow,
            }
        )
    return out


def build_script(scenario: Scenario, processor: Path) -> dict[str, Any]:
    """The Artillery script as data (rendered to YAML by :func:`render_script`)."""
    shape = scenario.shape
    phases = closed_phases(shape) if shape.model == "closed" else open_phases(shape)
    orchestrate: dict[str, Any] = {
        "timeoutMs": round(scenario.timeout * 1000),
        "shape": {
            "model": shape.model,
            "firstArrivalMs": round(first_arrival_seconds(phases) * 1000),
            "segments": [list(segment) for segment in shape.segments()],
        },
    }
    if scenario.protocol == "ws":
        orchestrate["ws"] = ws_variables(scenario)
        parts = urlsplit(scenario.ws_url)
        target = f"{'https' if parts.scheme == 'wss' else 'http'}://{parts.netloc}"
        scenarios = [{"name": scenario.name, "flow": [{"function": "orchestrateWsSession"}]}]
    elif scenario.flow is not None:
        target = scenario.base_url
        scenarios = flow_scenarios(scenario)
        orchestrate["flow"] = flow_variables(scenario)
    else:
        target = scenario.base_url
        scenarios = http_scenarios(scenario)
    return {
        "config": {
            "target": target,
            "processor": str(processor),
            "timeout": scenario.timeout,
            "phases": phases,
            "variables": {"orchestrate": orchestrate},
        },
        "scenarios": scenarios,
    }


def render_script(script: dict[str, Any]) -> str:
    header = "# Generated by orchestrate; the WebSocket flow is run by config.processor.\n"
    return header + yaml.safe_dump(script, sort_keys=False, allow_unicode=True, width=100)


def timeout_for(scenario: Scenario) -> float:
    return scenario.shape.total_duration + flow_pass_seconds(scenario) + base.DEFAULT_GRACE


def tool_env(data_dir: Path) -> dict[str, str]:
    return {
        **tools.node_env(),
        "ARTILLERY_DISABLE_TELEMETRY": "true",
        DATA_ENV: str(data_dir),
    }


def prepare(scenario: Scenario, workdir: Path) -> Invocation:
    check_scenario(scenario)
    if scenario.stop_when_error_rate is not None:
        LOG.warning(
            "artillery ramps natively and ignores stop_when_error_rate; the whole shape runs"
        )
    node = tools.node_executable()
    entry = tools.node_tool_entry(NAME)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    output_path = workdir / OUTPUT_NAME
    output_path.unlink(missing_ok=True)
    data_dir = workdir / DATA_DIR_NAME
    shutil.rmtree(data_dir, ignore_errors=True)  # stale worker files would be merged
    data_dir.mkdir()
    private_dir = base.make_private_dir()
    text = render_script(build_script(scenario, processor_path()))
    real, saved = base.write_config(
        private_dir, workdir, SCRIPT_NAME, text, base.scenario_secrets(scenario)
    )
    argv = [
        node,
        "--require",
        str(telemetry_blocker_path()),
        str(entry),
        "run",
        "--output",
        str(output_path),
        str(real),
    ]
    workers = max(1, (os.cpu_count() or 1) - 1)
    return Invocation(
        tool=NAME,
        argv=argv,
        workdir=workdir,
        output_path=output_path,
        timeout=timeout_for(scenario),
        # Artillery runs its users on cpus-1 worker threads, plus the main thread.
        cpu_capacity_percent=100.0 * min(workers + 1, os.cpu_count() or 1),
        env=tool_env(data_dir),
        private_dir=private_dir,
        saved_configs=[saved],
    )


def parse(scenario: Scenario, invocation: Invocation, run: ToolRun) -> LoadTestResult:
    result = parser.parse_output(
        scenario,
        invocation.output_path,
        invocation.workdir / DATA_DIR_NAME,
        run=run,
        tool_version=version(),
    )
    if scenario.flow is None:
        return result
    return result.model_copy(update={"flow": flow_of(scenario, invocation.workdir / DATA_DIR_NAME)})
