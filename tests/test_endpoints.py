"""Per-endpoint numbers: every HTTP engine records each request under its endpoint.

Real runs of autocannon, k6 and Artillery against the reference target with five endpoints,
one slow by design (``/api/slow``) and one always failing (``/api/error``): each endpoint's
count, errors, throughput and latency are its own, add up to the run's, and the per-endpoint
SLA gates and report tables read them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import start_reference_target
from engine_helpers import run_engine

from orchestrator import histogram as hist
from orchestrator import tools
from orchestrator.engines import k6
from orchestrator.errors import ConfigError
from orchestrator.models import EndpointStats, LoadTestResult, Status
from orchestrator.options import RunOptions
from orchestrator.plan import load_config, plan_scenario, resolve_scenario
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, WsFlow, WsMessage
from orchestrator.sla import evaluate, parse_threshold
from reports.console import print_result
from reports.markdown import render_markdown

SLOW_MS = 1000
# The slow endpoint sleeps SLOW_MS; the fast ones answer in a few ms on an idle target, but
# a shared machine can stall one for a few hundred ms (with ~15 samples that is their p95):
# half of SLOW_MS still tells them apart.
FAST_BELOW_MS = SLOW_MS / 2
NAMES = ["health", "slow", "hierarchy", "token", "GET /api/error"]
ENGINES = ["autocannon", "k6", "artillery"]


def five_endpoints(url: str, tool: str) -> Scenario:
    endpoints = [
        Endpoint(name="health", path="/health"),
        Endpoint(name="slow", path=f"/api/slow?ms={SLOW_MS}"),
        Endpoint(name="hierarchy", path="/api/textbooks/hierarchy"),
        Endpoint(
            name="token",
            method="POST",
            path="/api/livekit/token",
            headers={"Content-Type": "application/json"},
            body='{"room": "r1"}',
        ),
        Endpoint(path="/api/error"),  # unnamed: "GET /api/error"
    ]
    if tool == "artillery":  # arrivals: 30 users a second, each one request
        shape = LoadShape.constant(30, 3.0, model="open")
        return Scenario(name="five", base_url=url, endpoints=endpoints, shape=shape)
    # 4 users capped at 100 req/s: a few hundred requests, the target never saturated
    shape = LoadShape.constant(4, 3.0)
    return Scenario(name="five", base_url=url, endpoints=endpoints, shape=shape, max_rate=100)


@pytest.fixture(scope="module")
def five_runs(
    node_tools: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LoadTestResult]]:
    """One short run per engine against one reference target (about 3 s each)."""
    results: dict[str, LoadTestResult] = {}
    with start_reference_target() as target:
        for tool in ENGINES:
            workdir = tmp_path_factory.mktemp(tool)
            results[tool] = run_engine(tool, five_endpoints(target.url, tool), workdir).result
        yield results


def by_name(result: LoadTestResult) -> dict[str, EndpointStats]:
    return {e.name: e for e in result.endpoints}


@pytest.mark.load
@pytest.mark.parametrize("tool", ENGINES)
def test_slow_endpoint_stands_out_and_endpoints_add_up(
    tool: str, five_runs: dict[str, LoadTestResult]
) -> None:
    result = five_runs[tool]
    assert result.status is Status.COMPLETED, result.status_detail
    assert [e.name for e in result.endpoints] == NAMES
    endpoints = by_name(result)
    assert endpoints["health"].method == "GET" and endpoints["health"].path == "/health"
    assert endpoints["slow"].path == f"/api/slow?ms={SLOW_MS}"
    # Only the slow endpoint is slow: its p50 is at least its sleep, every other p95 far below.
    slow = endpoints["slow"].response_time
    assert slow.p50 is not None and slow.p50 >= SLOW_MS
    for name in NAMES:
        if name != "slow":
            p95 = endpoints[name].response_time.p95
            assert p95 is not None and p95 < FAST_BELOW_MS, (name, p95)
    # The run's p95 is not the slow endpoint's: one p95 per endpoint is the point.
    assert result.response_time.p95 is not None
    # Counts add up to the run's, and so do the histograms (merged, never averaged).
    assert result.total_requests == sum(e.total_requests for e in result.endpoints)
    assert result.successful_requests == sum(e.successful_requests for e in result.endpoints)
    assert result.failed_requests == sum(e.failed_requests for e in result.endpoints)
    assert result.histogram is not None
    merged = hist.merge(e.histogram for e in result.endpoints if e.histogram)
    assert merged.get_total_count() == hist.decode(result.histogram).get_total_count()
    assert merged.get_max_value() == hist.decode(result.histogram).get_max_value()
    assert result.throughput == pytest.approx(sum(e.throughput or 0 for e in result.endpoints))
    for e in result.endpoints:
        assert e.total_requests > 0, e.name
        assert e.histogram is not None
        # Every request got a response here: its latency is in the endpoint's histogram.
        assert hist.decode(e.histogram).get_total_count() == sum(e.status_codes.values())
        assert sum(b.requests for b in e.time_series) == e.total_requests
        assert e.response_time.source == "histogram"
    # The failing endpoint carries the failures, the others none.
    failing = endpoints["GET /api/error"]
    assert failing.error_rate == 100.0
    assert failing.status_codes == {"500": failing.total_requests}
    assert failing.errors == {"non_2xx": failing.total_requests}
    assert all(endpoints[n].error_rate == 0.0 for n in NAMES[:4])
    assert all(endpoints[n].errors == {} for n in NAMES[:4])


@pytest.mark.load
def test_per_endpoint_gates_judge_each_endpoint(five_runs: dict[str, LoadTestResult]) -> None:
    result = five_runs["autocannon"]
    scenario = five_endpoints("http://127.0.0.1:1", "autocannon")
    specs = [
        parse_threshold(text)
        for text in (
            f"p95[health] < {FAST_BELOW_MS:g}ms",
            f"p95[slow] < {FAST_BELOW_MS:g}ms",
            "errorRate[slow] < 1%",
            "errorRate[GET /api/error] < 1%",
            "throughputPerEndpoint > 0.5/s",
            "throughputPerEndpoint > 10000/s",
        )
    ]
    checks = evaluate(result, specs, scenario)
    endpoints = by_name(result)
    health, slow, slow_errors, failing, some, too_much = checks
    assert (health.metric, health.passed) == ("p95[health]", True)
    assert health.measured == endpoints["health"].response_time.p95
    assert (slow.metric, slow.passed) == ("p95[slow]", False)
    assert slow.measured == endpoints["slow"].response_time.p95
    assert (slow_errors.passed, slow_errors.measured) == (True, 0.0)
    assert (failing.passed, failing.measured) == (False, 100.0)
    # The slowest endpoint's measured rate decides, and the check names it.
    lowest = min(e.throughput or 0.0 for e in result.endpoints)
    assert some.passed is True and some.measured == lowest
    named = (some.detail or "").removeprefix("lowest: ")
    assert endpoints[named].throughput == lowest
    assert too_much.passed is False and too_much.measured == lowest


@pytest.mark.load
def test_reports_show_a_table_per_endpoint(
    five_runs: dict[str, LoadTestResult], capsys: pytest.CaptureFixture[str]
) -> None:
    result = five_runs["k6"]
    markdown = render_markdown("run", [result])
    header = "| endpoint | requests | OK | KO | KO % | req/s | min | p50 | p95 | p99 | max |"
    assert header in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| slow (GET /api/slow")]
    assert len(rows) == 1
    slow = by_name(result)["slow"]
    assert f"| {slow.total_requests:,} | {slow.total_requests:,} | 0 | 0.00 |" in rows[0]
    assert any(line.startswith("| all | ") for line in markdown.splitlines())
    print_result(result)
    console = capsys.readouterr().out
    assert "five: per endpoint" in console
    assert f"slow (GET /api/slow?ms={SLOW_MS})" in console and "GET /api/error" in console


@pytest.mark.load
def test_autocannon_timeouts_and_refusals_count_under_their_endpoint(
    node_tools: Path, reference_target: Any, closed_port: int, tmp_path: Path
) -> None:
    endpoints = [
        Endpoint(name="fast", path="/health"),
        Endpoint(name="stuck", path="/api/slow?ms=3000"),
    ]
    shape = LoadShape.constant(2, 3.0)
    stuck = Scenario(
        name="stuck", base_url=reference_target.url, endpoints=endpoints, shape=shape, timeout=1
    )
    result = run_engine("autocannon", stuck, tmp_path / "stuck").result
    fast, slow = result.endpoints
    assert slow.total_requests > 0 and slow.errors == {"timeout": slow.total_requests}
    assert slow.successful_requests == 0 and slow.histogram is None
    assert slow.response_time.p50 is None  # nothing answered: no latency, never 0
    assert fast.errors == {} and fast.error_rate == 0.0
    assert result.errors == {"timeout": slow.total_requests}
    refused = stuck.model_copy(update={"base_url": f"http://127.0.0.1:{closed_port}"})
    result = run_engine("autocannon", refused, tmp_path / "refused").result
    assert result.total_requests == sum(e.total_requests for e in result.endpoints)
    for e in result.endpoints:
        assert e.total_requests > 0 and e.errors == {"connection_refused": e.total_requests}


def ws_scenario(url: str) -> Scenario:
    flow = WsFlow(
        messages=[
            WsMessage(payload='{"type": "ping"}', think=0.1),
            WsMessage(payload='{"type": "student_message", "content": "hi"}', think=0.1),
            WsMessage(payload='{"type": "session_update"}', expect_reply=False),
            WsMessage(payload="plain text", think=0.1),
        ],
        loops=100,
    )
    shape = LoadShape.constant(3, 3.0)
    return Scenario(name="ws-flow", protocol="ws", base_url=url, ws=flow, shape=shape)


@pytest.mark.load
@pytest.mark.parametrize("tool", ["k6", "artillery"])
def test_websocket_endpoints_are_the_flow_messages(
    tool: str, node_tools: Path, reference_target: Any, tmp_path: Path
) -> None:
    result = run_engine(tool, ws_scenario(reference_target.url), tmp_path).result
    assert result.status is Status.COMPLETED, result.status_detail
    # Messages that expect a reply are the endpoints; a fire-and-forget one is not.
    assert [e.name for e in result.endpoints] == ["ping", "student_message", "message 4"]
    assert result.total_requests == sum(e.total_requests for e in result.endpoints)
    assert result.histogram is not None
    merged = hist.merge(e.histogram for e in result.endpoints if e.histogram)
    assert merged.get_total_count() == hist.decode(result.histogram).get_total_count()
    for e in result.endpoints:
        assert e.total_requests > 0 and e.successful_requests == e.total_requests
        assert e.method is None and e.path is None and e.status_codes == {}


@pytest.mark.load
@pytest.mark.parametrize("tool", ["k6", "artillery"])
def test_websocket_reply_timeouts_count_under_their_message(
    tool: str, node_tools: Path, target_factory: Any, tmp_path: Path
) -> None:
    slow = target_factory("--latency-ms", "600")  # every reply 600 ms late
    scenario = ws_scenario(slow.url).model_copy(
        update={"timeout": 0.2, "shape": LoadShape.constant(2, 1.5)}
    )
    result = run_engine(tool, scenario, tmp_path).result
    assert result.status is Status.TARGET_FAILED
    # A session ends at its first failure: the first message's reply timed out each time.
    ping, *others = result.endpoints
    assert ping.name == "ping" and ping.total_requests > 0
    assert ping.errors == {"timeout": ping.total_requests} and ping.histogram is None
    assert all(e.total_requests == 0 for e in others)
    assert result.total_requests == ping.total_requests


# ---- names, the generated configs, the gates' parsing (no load) --------------------------


def test_names_are_labels_made_unique() -> None:
    scenario = Scenario(
        name="dup",
        base_url="http://127.0.0.1:1",
        endpoints=[
            Endpoint(path="/a"),
            Endpoint(path="/a", headers={"X-Variant": "2"}),
            Endpoint(name="b", path="/b"),
        ],
        shape=LoadShape.constant(1, 1),
    )
    assert scenario.endpoint_names == ["GET /a", "GET /a #2", "b"]
    flow = ws_scenario("http://127.0.0.1:1").ws
    assert flow is not None
    assert flow.message_names == ["ping", "student_message", "session_update", "message 4"]


def test_k6_tags_every_request_and_message_with_its_name() -> None:
    http = Scenario(
        name="dup",
        base_url="http://127.0.0.1:1",
        endpoints=[Endpoint(path="/a", weight=2), Endpoint(path="/a", body="x")],
        shape=LoadShape.constant(1, 1),
    )
    endpoints = k6.build_config(http)["http"]["endpoints"]
    assert [(e["name"], e["weight"]) for e in endpoints] == [("GET /a", 2), ("GET /a #2", 1)]
    messages = k6.build_config(ws_scenario("http://127.0.0.1:1"))["ws"]["messages"]
    assert [m["name"] for m in messages] == [
        "ping", "student_message", "session_update", "message 4",
    ]  # fmt: skip
    script = (tools.tool_configs_dir() / "k6" / "load.js").read_text(encoding="utf-8")
    assert "tags: { name: e.name }" in script
    assert "wsRtt.add(now - pending.sentAt, { name: pending.name })" in script


@pytest.mark.parametrize(
    ("text", "metric", "endpoint", "name"),
    [
        ("p95[login] < 300ms", "p95", "login", "p95[login]"),
        ("errorRate[ GET /api/x ] < 1%", "errorRate", "GET /api/x", "errorRate[GET /api/x]"),
        ("responseTime.p99[login] < 1s", "p99", "login", "p99[login]"),
        ("throughput[login] > 10/s", "throughput", "login", "throughput[login]"),
        ("throughputPerEndpoint > 10/s", "throughputPerEndpoint", None, "throughputPerEndpoint"),
    ],
)
def test_parse_endpoint_selectors(text: str, metric: str, endpoint: str | None, name: str) -> None:
    spec = parse_threshold(text)
    assert (spec.metric, spec.endpoint, spec.name) == (metric, endpoint, name)
    mapping = parse_threshold({"metric": name, "op": "<", "limit": 300})
    assert (mapping.metric, mapping.endpoint) == (metric, endpoint)


def test_parse_endpoint_selector_errors() -> None:
    with pytest.raises(ConfigError, match="memoryDelta has no per-endpoint value"):
        parse_threshold("memoryDelta[login] < 20MB")
    with pytest.raises(ConfigError, match=r"p95\[\]: the endpoint name is empty"):
        parse_threshold("p95[] < 1s")
    spec = parse_threshold({"metric": "p95", "endpoint": "login", "op": "<", "limit": 300})
    assert spec.name == "p95[login]"


def test_unknown_endpoint_in_a_gate_is_a_config_error(tmp_path: Path) -> None:
    mine: dict[str, Any] = {
        "endpoints": ["health"],
        "users": 2,
        "hold": 1,
        "thresholds": ["p95[health] < 300ms", "p95[login] < 300ms"],
    }
    config = {
        "endpoints": {"health": {"path": "/health"}, "login": {"path": "/api/auth/login"}},
        "scenarios": {"mine": mine},
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert (
        "scenarios.mine.thresholds: threshold 'p95[login] < 300ms': scenario 'mine' has no "
        "endpoint 'login'; its endpoints: 'health'"
    ) in str(caught.value)
    # What the user sees: one line, exit 2, before anything starts.
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "suite", "full", "--config", str(bad),
         "--report-dir", str(reports)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "has no endpoint 'login'" in done.stderr and not reports.exists()
    mine["thresholds"] = ["p95[health] < 300ms"]
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(config), encoding="utf-8")
    loaded = load_config(good)
    planned = plan_scenario("mine", resolve_scenario("mine", loaded), loaded)
    assert [t.name for t in planned.thresholds] == ["p95[health]"]
    options = RunOptions.from_values(
        {"url": "http://127.0.0.1:1/health", "thresholds": ["p95[nope] < 1s"]}
    )
    with pytest.raises(ConfigError, match=r"--threshold: .* has no endpoint 'nope'; its "):
        options.planned()
