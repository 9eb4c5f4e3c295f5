"""autocannon adapter: the generated plan, and real autocannon runs against the reference target."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import http_scenario, run_engine

from orchestrator import histogram as hist
from orchestrator import tools
from orchestrator.engines import autocannon
from orchestrator.engines.autocannon import output as parser
from orchestrator.errors import ConfigError, ParseError
from orchestrator.models import LoadTestResult, Status
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage

FIXTURES = Path(__file__).parent / "fixtures" / "autocannon"
SECRET = "Bearer s3cr3t-token-value"


def make_scenario(url: str, *paths: str, shape: LoadShape | None = None, **kw: Any) -> Scenario:
    return http_scenario(
        url, *paths, shape=shape or LoadShape.constant(4, 2.0), name="ac-test", **kw
    )


def run_scenario(scenario: Scenario, workdir: Path) -> LoadTestResult:
    return run_engine("autocannon", scenario, workdir).result


# ---- plan (no load) ----


def test_plan_for_ramp_then_hold_is_golden(node_tools: Path, tmp_path: Path) -> None:
    scenario = Scenario(
        name="golden",
        base_url="http://127.0.0.1:8123/base",
        endpoints=[
            Endpoint(path="/health", weight=3),
            Endpoint(
                method="post",
                path="api/auth/login?x=1",
                headers={"Authorization": SECRET, "Content-Type": "application/json"},
                body='{"email": "a@b.c"}',
            ),
        ],
        shape=LoadShape(start=0, stages=[Stage(duration=4, target=4), Stage(duration=3, target=4)]),
        pipelining=2,
        timeout=5,
        max_rate=50,
    )
    invocation = autocannon.prepare(scenario, tmp_path)
    output = str((tmp_path / "autocannon-output.json").resolve())
    # Each request names its endpoint (index into "endpoints"): the runner records it there.
    health = {"method": "GET", "path": "/base/health", "endpoint": 0}
    login = {
        "method": "POST",
        "path": "/base/api/auth/login?x=1",
        "endpoint": 1,
        "headers": {"Authorization": SECRET, "Content-Type": "application/json"},
        "body": '{"email": "a@b.c"}',
    }
    expected = {
        "url": "http://127.0.0.1:8123",
        "requests": [health, health, login, health],
        "endpoints": [
            {"name": "GET /health", "method": "GET", "path": "/base/health"},
            {
                "name": "POST api/auth/login?x=1",
                "method": "POST",
                "path": "/base/api/auth/login?x=1",
            },
        ],
        "pipelining": 2,
        "workers": 0,
        "overallRate": 50,
        "timeout": 5.0,
        # The ramp climbs in two 2 s steps; the hold then really holds 4 for its 3 s
        # (merged with the ramp's last step at the same level: 2 + 3 s).
        "steps": [{"duration": 2.0, "connections": 2}, {"duration": 5.0, "connections": 4}],
        "stopWhenErrorRate": None,
        "output": output,
        "checkpoints": str(tmp_path.resolve() / "autocannon-checkpoints.ndjson"),
        "progress": True,
    }
    assert invocation.private_dir is not None
    real_plan = Path(invocation.argv[2])
    assert real_plan.parent == invocation.private_dir
    assert json.loads(real_plan.read_text()) == expected
    assert invocation.argv[:2] == [
        tools.node_executable(),
        str(tools.node_script(autocannon.RUNNER_SCRIPT)),
    ]
    assert invocation.env == {"NODE_PATH": str(tools.node_modules())}
    assert invocation.timeout == pytest.approx(7 + 30 + 2 * autocannon.STEP_OVERHEAD_S)
    assert invocation.cpu_capacity_percent == 100.0
    saved = invocation.saved_configs[0].read_text()
    assert "s3cr3t" not in saved
    assert json.loads(saved)["steps"] == expected["steps"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shape": LoadShape.constant(5, 2.0, model="open")}, "closed model"),
        ({"think_time": 0.5}, "think_time"),
        ({"timeout": 0.5}, "at least 1 s"),
    ],
)
def test_prepare_refuses_what_autocannon_cannot_do(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    scenario = make_scenario("http://127.0.0.1:1", **change)
    with pytest.raises(ConfigError, match=message):
        autocannon.prepare(scenario, tmp_path)


def test_endpoint_on_another_origin_is_refused(tmp_path: Path) -> None:
    scenario = make_scenario("http://127.0.0.1:1", "http://example.com/x")
    with pytest.raises(ConfigError, match="one origin"):
        autocannon.prepare(scenario, tmp_path)


# ---- real runs ----


@pytest.mark.load
def test_health_run_reads_percentiles_from_histogram(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    result = run_scenario(make_scenario(reference_target.url), tmp_path)
    rt = result.response_time
    assert result.status is Status.COMPLETED, result.status_detail
    assert rt.source == "histogram"
    assert rt.resolution_us == 1.0
    assert rt.p50 is not None and rt.p95 is not None and rt.p99 is not None
    assert 0 < rt.p50 <= rt.p95 <= rt.p99
    assert result.throughput is not None and result.throughput > 0
    assert result.histogram is not None
    recorded = hist.decode(result.histogram).get_total_count()
    assert result.successful_requests is not None and result.failed_requests is not None
    assert recorded == result.successful_requests + result.failed_requests == result.total_requests
    assert sum(result.status_codes.values()) == recorded
    assert result.concurrency == 4
    assert 1.9 <= result.duration <= 2.6
    assert len(result.time_series) >= 2
    assert sum(b.requests for b in result.time_series) == result.total_requests
    assert result.raw_output == str((tmp_path / "autocannon-output.json").resolve())


@pytest.mark.load
def test_error_route_is_all_non_2xx(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    result = run_scenario(make_scenario(reference_target.url, "/api/error"), tmp_path)
    assert result.total_requests is not None and result.total_requests > 0
    assert result.error_rate == pytest.approx(100.0)
    assert result.errors == {"non_2xx": result.total_requests}
    assert result.status_codes == {"500": result.total_requests}
    assert result.status is Status.TARGET_FAILED
    # Failed responses still have a latency.
    assert result.response_time.p50 is not None


@pytest.mark.load
def test_injected_error_rate_is_measured(
    node_tools: Path, target_factory: Any, tmp_path: Path
) -> None:
    target = target_factory("--error-rate", "0.2")
    result = run_scenario(make_scenario(target.url, "/api/textbooks/hierarchy"), tmp_path)
    assert result.total_requests is not None and result.total_requests >= 50
    assert result.error_rate == pytest.approx(20.0, abs=3.0)
    assert result.errors.get("non_2xx") == result.failed_requests
    assert result.status is Status.COMPLETED


@pytest.mark.load
def test_closed_port_is_target_failed_with_refused_connections(
    node_tools: Path, closed_port: int, tmp_path: Path
) -> None:
    scenario = make_scenario(f"http://127.0.0.1:{closed_port}", shape=LoadShape.constant(2, 1.0))
    result = run_scenario(scenario, tmp_path)
    assert result.status is Status.TARGET_FAILED
    assert result.errors.get("connection_refused", 0) > 0
    assert result.successful_requests == 0
    assert result.response_time.p50 is None
    assert "responseTime" in result.missing
    assert result.histogram is None


@pytest.mark.load
@pytest.mark.parametrize("workers", [0, 2])
def test_steps_merge_exactly(
    node_tools: Path, reference_target: Any, tmp_path: Path, workers: int
) -> None:
    shape = LoadShape(start=1, stages=[Stage(duration=1, target=3), Stage(duration=1, target=3)])
    scenario = make_scenario(reference_target.url, shape=shape, workers=workers)
    result = run_scenario(scenario, tmp_path)
    assert [s.concurrency for s in result.steps] == [2, 3]
    assert result.concurrency == 3
    assert result.histogram is not None
    merged = hist.decode(result.histogram).get_total_count()
    # Every request got a response here, so each step's count is its histogram's count.
    assert merged == sum(s.total_requests for s in result.steps) == result.total_requests
    raw = json.loads(Path(result.raw_output or "").read_text())
    step_counts = [hist.decode(s["histogram"]).get_total_count() for s in raw["steps"]]
    assert sum(step_counts) == merged
    assert result.response_time.resolution_us == 1.0
    assert result.steps[1].start >= result.steps[0].start + result.steps[0].duration - 0.01
    # Ramp 1 -> 3 in 1 s: 0.5 s at 2, then 0.5 s at 3 merged with the 1 s hold at 3.
    assert [s.duration for s in result.steps] == pytest.approx([0.5, 1.5], abs=0.15)


# Steps of 2, 4 and 8 connections, 2 s each (a 0.5 s ramp is one step at its target).
DOUBLING = LoadShape(
    start=2,
    stages=[
        Stage(duration=2, target=2),
        Stage(duration=0.5, target=4),
        Stage(duration=1.5, target=4),
        Stage(duration=0.5, target=8),
        Stage(duration=1.5, target=8),
    ],
)


def run_until_broken(url: str, path: str, tmp_path: Path) -> tuple[LoadTestResult, float]:
    scenario = make_scenario(url, path, shape=DOUBLING, stop_when_error_rate=50)
    assert [c for _, c in scenario.shape.steps(autocannon.step_seconds(scenario))] == [2, 4, 8]
    started = time.monotonic()
    result = run_scenario(scenario, tmp_path)
    return result, time.monotonic() - started


@pytest.mark.load
def test_stops_at_the_breaking_point(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    result, wall = run_until_broken(reference_target.url, "/api/error", tmp_path)
    assert [s.concurrency for s in result.steps] == [2]
    assert result.status_detail is not None
    assert "stopped early after step 1 of 3 (2 connections): 100.0% of its requests failed" in (
        result.status_detail
    )
    # Every request failed, which no early stop hides.
    assert result.status is Status.TARGET_FAILED
    assert result.duration < 3.0
    assert wall < DOUBLING.total_duration - 1.5
    raw = json.loads(Path(result.raw_output or "").read_text())
    assert raw["complete"] is True
    assert raw["stoppedEarly"] == {"afterStep": 0, "errorRate": 100, "limit": 50}


@pytest.mark.load
def test_an_early_stop_is_a_completed_run(
    node_tools: Path, target_factory: Any, tmp_path: Path
) -> None:
    target = target_factory("--error-rate", "0.7")
    result, _ = run_until_broken(target.url, "/api/textbooks/hierarchy", tmp_path)
    assert [s.concurrency for s in result.steps] == [2]
    assert result.status is Status.COMPLETED
    assert result.status_detail is not None and "stopped early after step 1" in result.status_detail
    assert result.error_rate == pytest.approx(70.0, abs=5.0)
    assert not result.missing


@pytest.mark.load
def test_rate_cap_is_honoured(node_tools: Path, reference_target: Any, tmp_path: Path) -> None:
    scenario = make_scenario(reference_target.url, max_rate=20, shape=LoadShape.constant(4, 3.0))
    result = run_scenario(scenario, tmp_path)
    # autocannon releases each connection's share in a burst at every second's start, so
    # a burst can land just before the end: at most one second's worth above the cap.
    assert result.total_requests is not None
    assert 20 * 3 * 0.8 <= result.total_requests <= 20 * 4
    assert "capped at 20 req/s" in result.latency_measures


@pytest.mark.load
def test_sigint_leaves_interrupted_output_with_data(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    scenario = make_scenario(reference_target.url, shape=LoadShape.constant(3, 20.0))
    invocation = autocannon.prepare(scenario, tmp_path)
    proc = subprocess.Popen(
        invocation.argv,
        env={**os.environ, **invocation.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(1.5)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=8) == 130
    raw = json.loads(invocation.output_path.read_text())
    assert raw["interrupted"] is True
    result = parser.parse_output(scenario, invocation.output_path)
    assert result.status is Status.INTERRUPTED
    assert result.total_requests is not None and result.total_requests > 0
    assert result.response_time.p50 is not None
    assert result.duration < 5


@pytest.mark.load
def test_time_limit_stops_the_runner_and_keeps_its_data(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    scenario = make_scenario(reference_target.url, shape=LoadShape.constant(2, 20.0))
    engine_run = run_engine("autocannon", scenario, tmp_path, timeout=1.5)
    assert engine_run.run.timed_out
    result = engine_run.result
    assert result.status is Status.TOOL_FAILED
    assert result.status_detail is not None and "time limit" in result.status_detail
    assert result.successful_requests is not None and result.successful_requests > 0


@pytest.mark.load
def test_truncated_output_is_a_parse_error_naming_the_file(
    node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    scenario = make_scenario(reference_target.url, shape=LoadShape.constant(2, 1.0))
    result = run_scenario(scenario, tmp_path)
    path = Path(result.raw_output or "")
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ParseError, match=re.escape(str(path))):
        parser.parse_output(scenario, path)
    path.unlink()
    with pytest.raises(ParseError, match=re.escape(str(path))):
        parser.parse_output(scenario, path)


def test_runner_output_with_a_pause_parses_without_node() -> None:
    """A real runner output (2 connections, a 0.5 s pause, 4 connections) read back."""
    path = FIXTURES / "runner-steps-pause.json"
    raw = json.loads(path.read_text())
    scenario = make_scenario("http://127.0.0.1:18431")
    result = parser.parse_output(scenario, path)
    assert [s.concurrency for s in result.steps] == [2, 0, 4]
    pause = result.steps[1]
    assert pause.total_requests == 0 and pause.response_time.p50 is None
    assert result.total_requests == sum(s["counts"]["requests"] for s in raw["steps"]) == 156
    assert result.errors == {"non_2xx": result.failed_requests}
    assert result.histogram is not None
    assert hist.decode(result.histogram).get_total_count() == 156
    assert [b.t for b in result.time_series] == [0.0, 1.0, 2.0, 3.0]
    assert sum(b.requests for b in result.time_series) == 156
    assert result.duration == pytest.approx(3.09, abs=0.01)
    assert result.status is Status.COMPLETED


def test_wrong_format_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"format": "orchestrate-autocannon/1", "steps": [{"index": 0}]}))
    with pytest.raises(ParseError, match=r"out\.json"):
        parser.parse_output(make_scenario("http://127.0.0.1:1"), path)


# ---- autocannon's own --json (fixtures from real CLI runs) ----


def test_cli_json_of_a_healthy_run() -> None:
    path = FIXTURES / "cli-health.json"
    result = parser.import_file(path)
    rt = result.response_time
    assert result.status is Status.COMPLETED
    assert rt.source == "tool_summary"
    assert rt.resolution_us == 1000.0
    assert rt.p95 is None and "responseTime.p95" in result.missing
    assert rt.p50 is not None and rt.p99 is not None and rt.p50 <= rt.p99
    assert result.total_requests == json.loads(path.read_text())["requests"]["total"]
    assert result.throughput is not None and result.throughput > 0
    assert result.concurrency == 5
    assert result.time_series == [] and "timeSeries" in result.missing


def test_cli_json_of_a_closed_port() -> None:
    result = parser.import_file(FIXTURES / "cli-closed-port.json")
    assert result.status is Status.TARGET_FAILED
    assert result.errors == {"unclassified": 10220}
    assert result.total_requests == 10220
    assert result.response_time.p50 is None
    assert "errors" in result.missing and "responseTime" in result.missing


def test_cli_json_of_the_error_route() -> None:
    result = parser.import_file(FIXTURES / "cli-error-route.json")
    assert result.status is Status.TARGET_FAILED
    assert result.errors == {"non_2xx": result.total_requests}
    assert result.error_rate == pytest.approx(100.0)


def test_cli_json_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    with pytest.raises(ParseError, match=r"other\.json"):
        parser.import_file(path)
