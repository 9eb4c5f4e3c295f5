"""The one result builder: what it derives, and that every engine's recorded runs obey it.

The definitions (see :mod:`parsers.build`): failedRequests = total - successful;
errorRate = failed / total * 100; throughput = completed / duration, where a request is
completed when it got a response, whatever its status (HTTP: it has a status code).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator import histogram as hist
from orchestrator.engines.artillery import output as artillery
from orchestrator.engines.autocannon import output as autocannon
from orchestrator.engines.k6 import output as k6
from orchestrator.engines.pgbench import output as pgbench
from orchestrator.execute import RunSettings, run_scenario
from orchestrator.models import LoadTestResult, ResponseTime, Status, WebSocketStats
from orchestrator.process import ToolRun
from orchestrator.scenarios import Endpoint, LoadShape, Scenario
from parsers import build

FIXTURES = Path(__file__).parent / "fixtures"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def identity(**kw: Any) -> build.Identity:
    values: dict[str, Any] = {
        "scenario": "s",
        "tool": "any",
        "protocol": "http",
        "workload_model": "closed",
        "latency_measures": "test",
        "target": "http://user:pw@127.0.0.1:1",
        "raw_output": "out.json",
        "concurrency": 4,
    }
    return build.Identity(**{**values, **kw})


def tool_run(returncode: int | None = 0, **kw: Any) -> ToolRun:
    return ToolRun(["tool"], returncode, T0, T0 + timedelta(seconds=2), Path("t.log"), **kw)


def histogram_of(*values_ms: float) -> Any:
    histogram = hist.new_histogram()
    for value in values_ms:
        hist.record_ms(histogram, value)
    return histogram


TIMING = build.Timing(T0, T0 + timedelta(seconds=2), 2.0)
SAMPLES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 80.0)


def make(
    counts: build.Counts | None = build.Counts(10, 6, 8),  # noqa: B008 - frozen dataclass
    latency: build.Latency | None = None,
    timing: build.Timing = TIMING,
    outcome: build.Outcome = build.Outcome(),  # noqa: B008
    **kw: Any,
) -> LoadTestResult:
    latency = latency or build.Latency(histogram_of(*SAMPLES))
    return build.result(identity(), counts, latency, timing, outcome, **kw)


# ---- the builder alone -------------------------------------------------------------------


def test_derives_failed_error_rate_and_throughput_from_counts() -> None:
    # 10 made, 6 as expected, 8 got a response (2 were 5xx), 2 got none: over 2 s.
    result = make(details=build.Details(status_codes={"200": 6, "500": 2}))
    assert result.total_requests == 10 and result.successful_requests == 6
    assert result.failed_requests == 4
    assert result.error_rate == 40.0
    assert result.throughput == 4.0  # 8 completed / 2 s: the 2 without a response are not
    assert result.status is Status.COMPLETED
    assert result.target == "http://user:***@127.0.0.1:1"
    assert "throughput" not in result.missing and "errorRate" not in result.missing


def test_latency_summary_comes_from_the_histogram() -> None:
    result = make()
    rt = result.response_time
    assert rt.source == "histogram" and rt.resolution_us == 1.0
    assert rt == hist.summarize(histogram_of(*SAMPLES))
    assert rt.p50 == pytest.approx(4.0, rel=1e-3) and rt.max == pytest.approx(80.0, rel=1e-3)
    assert result.histogram is not None
    assert hist.decode(result.histogram).get_total_count() == len(SAMPLES)


def test_tool_summary_is_taken_as_given_and_says_there_is_no_histogram() -> None:
    summary = ResponseTime(p50=3.0, p95=9.0, source="tool_summary")
    result = make(latency=build.Latency(summary=summary))
    assert result.response_time == summary
    assert result.histogram is None and "histogram" in result.missing
    assert "responseTime" not in result.missing


def test_no_sample_is_missing_latency_never_zero() -> None:
    result = make(
        build.Counts(5, 0, 0), build.Latency(hist.new_histogram(), no_sample="nothing answered")
    )
    assert result.response_time.p50 is None and result.response_time.mean is None
    assert result.missing["responseTime"] == "nothing answered"
    assert result.histogram is None
    assert result.throughput == 0.0  # measured: none of the 5 got a response in 2 s
    assert result.status is Status.TARGET_FAILED
    assert result.error_rate == 100.0


def test_unknown_completed_or_duration_is_a_missing_throughput() -> None:
    unknown = make(build.Counts(10, 6, None), missing={"throughput": "the source cannot tell"})
    assert unknown.throughput is None
    assert unknown.missing["throughput"] == "the source cannot tell"
    no_time = make(timing=build.Timing(T0, T0, None))
    assert no_time.throughput is None and no_time.duration == 0.0
    assert no_time.missing["throughput"] == build.NO_DURATION
    assert no_time.missing["duration"] == build.NO_DURATION


def test_no_request_made_has_no_error_rate() -> None:
    result = make(build.Counts(0, 0, 0), build.Latency(hist.new_histogram()))
    assert result.error_rate is None and result.missing["errorRate"] == build.NOTHING_MADE
    assert result.status is Status.TOOL_FAILED


def test_steps_and_websocket_rates_use_the_same_rules() -> None:
    step = build.Step(
        index=0,
        concurrency=2,
        start=0.0,
        duration=0.5,
        counts=build.Counts(4, 1, 3),
        histogram=histogram_of(1.0, 2.0, 3.0),
    )
    pause = build.Step(1, 0, 0.5, 0.5, build.Counts(0, 0, None), hist.new_histogram())
    websocket = WebSocketStats(connections_attempted=2, messages_sent=30, message_rate=999.0)
    result = make(steps=[step, pause], details=build.Details(websocket=websocket))
    first, second = result.steps
    assert (first.total_requests, first.failed_requests, first.throughput) == (4, 3, 6.0)
    assert first.response_time.p50 == 2.0
    assert second.throughput is None and second.response_time.p50 is None
    assert result.websocket is not None and result.websocket.message_rate == 15.0


def test_endpoints_use_the_same_rules_as_the_totals() -> None:
    login = build.EndpointTally(
        name="login",
        method="POST",
        path="/api/auth/login",
        counts=build.Counts(6, 4, 5),  # 6 made, 4 as expected, 5 got a response
        histogram=histogram_of(1.0, 2.0, 3.0, 4.0, 80.0),
        status_codes={"200": 4, "500": 1},
        errors={"non_2xx": 1, "timeout": 1, "unused": 0},
    )
    dead = build.EndpointTally("dead", build.Counts(4, 0, 0), hist.new_histogram())
    result = make(endpoints=[login, dead])  # over the run's 2 s
    first, second = result.endpoints
    assert (first.name, first.method, first.path) == ("login", "POST", "/api/auth/login")
    assert (first.total_requests, first.successful_requests, first.failed_requests) == (6, 4, 2)
    assert first.error_rate == pytest.approx(100 * 2 / 6)
    assert first.throughput == 2.5  # 5 completed / 2 s
    assert first.response_time == hist.summarize(histogram_of(1.0, 2.0, 3.0, 4.0, 80.0))
    assert first.histogram is not None
    assert hist.decode(first.histogram).get_total_count() == 5
    assert first.errors == {"non_2xx": 1, "timeout": 1}
    # Nothing answered: no latency (never 0), no histogram; a measured throughput of 0.
    assert second.response_time.p50 is None and second.histogram is None
    assert (second.error_rate, second.throughput) == (100.0, 0.0)
    assert "endpoints" not in result.missing
    assert make().missing["endpoints"] == build.NO_ENDPOINTS


@pytest.mark.parametrize(
    ("outcome", "status", "detail"),
    [
        (build.Outcome(run=tool_run(interrupted=True)), Status.INTERRUPTED, "Ctrl-C"),
        (build.Outcome(interrupted=True), Status.INTERRUPTED, build.RUNNER_INTERRUPTED),
        (
            build.Outcome(run=tool_run(None, timed_out=True), interrupted=True),
            Status.TOOL_FAILED,
            build.TIME_LIMIT,
        ),
        (build.Outcome(cut_short="2 of 3 steps"), Status.TOOL_FAILED, "2 of 3 steps"),
        (
            build.Outcome(status=Status.TOOL_FAILED, notes=["set-up failed"]),
            Status.TOOL_FAILED,
            "set-up failed",
        ),
        (build.Outcome(run=tool_run(3)), Status.TOOL_FAILED, "3"),
        (build.Outcome(notes=["a note"]), Status.COMPLETED, "a note"),
    ],
)
def test_status_from_counts_and_what_the_output_says(
    outcome: build.Outcome, status: Status, detail: str
) -> None:
    result = make(outcome=outcome)
    assert result.status is status
    assert detail in (result.status_detail or "")


def test_failure_hint_only_when_the_target_failed() -> None:
    hint = build.Outcome(failure_hint="k6: connection refused")
    failed = make(build.Counts(5, 0, 0), outcome=hint)
    assert failed.status is Status.TARGET_FAILED
    assert failed.status_detail is not None and failed.status_detail.endswith("refused")
    assert make(outcome=hint).status_detail is None


def test_unreadable_output_is_every_measurement_unknown(tmp_path: Path) -> None:
    scenario = http_scenario()
    result = build.unreadable(scenario, "tool", tool_run(2), tmp_path / "o.json", "bad JSON")
    assert result.status is Status.TOOL_FAILED
    assert result.status_detail is not None and "bad JSON" in result.status_detail
    assert result.total_requests is None and result.failed_requests is None
    assert result.error_rate is None and result.throughput is None
    for key in ("totalRequests", "errorRate", "throughput", "responseTime", "histogram"):
        assert result.missing[key] == "tool output unreadable: bad JSON"
    stopped = build.unreadable(
        scenario, "tool", tool_run(None, interrupted=True), tmp_path / "o.json", "x"
    )
    assert stopped.status is Status.INTERRUPTED


# ---- every engine's recorded runs obey the builder's definitions -------------------------


def http_scenario(url: str = "http://127.0.0.1:1", **kw: Any) -> Scenario:
    return Scenario(
        name="s",
        base_url=url,
        endpoints=[Endpoint(path="/health")],
        shape=LoadShape.constant(2, 2.0),
        **kw,
    )


def ws_scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "ws",
            "protocol": "ws",
            "base_url": "http://127.0.0.1:1",
            "ws": {"messages": [{"payload": "{}"}]},
            "shape": {"stages": [{"duration": 5, "target": 50}]},
        }
    )


def artillery_run(name: str, scenario: Scenario) -> LoadTestResult:
    folder = FIXTURES / "artillery" / name
    return artillery.parse_output(
        scenario,
        folder / "artillery-output.json",
        folder / "artillery-data",
        run=None,
        tool_version=None,
    )


def pgbench_run(tmp_path: Path) -> LoadTestResult:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "pgbench" / "exhaustion", folder)
    scenario = http_scenario("postgresql://bench:pw@127.0.0.1:5/fixture")
    return pgbench.parse_output(scenario, folder / "pgbench-output.json")


Load = Callable[[Path], LoadTestResult]


def http_completed(result: LoadTestResult) -> int:
    """HTTP: a request got a response when it has a status code."""
    return sum(result.status_codes.values())


def replies(result: LoadTestResult) -> int:
    """WebSocket (ours): a request (a message expecting a reply) completes with its reply."""
    assert result.successful_requests is not None
    return result.successful_requests


def transactions_in_log(result: LoadTestResult) -> int:
    """pgbench: every transaction in its log ran on the server (committed or SQL error)."""
    folder = Path(result.raw_output or "").parent
    return sum(f.read_text().count("\n") for f in folder.glob("pgbench_log_*"))


def autocannon_cli(name: str) -> Load:
    return lambda _: autocannon.import_file(FIXTURES / "autocannon" / f"{name}.json")


def k6_raw(name: str) -> Load:
    return lambda _: k6.import_raw(FIXTURES / "k6" / f"{name}.json.gz")


K6_FIXTURES = (
    "http_ok",
    "http_500",
    "http_refused",
    "http_timeout",
    "open_dropped",
    "ws",
    "ws_refused",
)
RECORDED: list[tuple[str, Load, Callable[[LoadTestResult], int]]] = [
    (
        "autocannon runner",
        lambda _: autocannon.parse_output(
            http_scenario(), FIXTURES / "autocannon" / "runner-steps-pause.json"
        ),
        http_completed,
    ),
    *(
        (f"autocannon {name}", autocannon_cli(name), http_completed)
        for name in ("cli-health", "cli-closed-port", "cli-error-route")
    ),
    ("artillery http", lambda _: artillery_run("http-ok", http_scenario()), http_completed),
    (
        "artillery http import",
        lambda _: artillery.import_file(
            FIXTURES / "artillery" / "http-ok" / "artillery-output.json"
        ),
        http_completed,
    ),
    ("artillery ws", lambda _: artillery_run("ws-ok", ws_scenario()), replies),
    ("artillery ws refused", lambda _: artillery_run("ws-refused", ws_scenario()), replies),
    *(
        (f"k6 {name}", k6_raw(name), replies if name.startswith("ws") else http_completed)
        for name in K6_FIXTURES
    ),
    ("pgbench", pgbench_run, transactions_in_log),
]


@pytest.mark.parametrize(
    ("load", "completed"), [r[1:] for r in RECORDED], ids=[r[0] for r in RECORDED]
)
def test_recorded_runs_obey_the_definitions(
    load: Load, completed: Callable[[LoadTestResult], int], tmp_path: Path
) -> None:
    result = load(tmp_path)
    assert_definitions(result, completed(result))


def assert_definitions(result: LoadTestResult, completed: int) -> None:
    total, ok, failed = result.total_requests, result.successful_requests, result.failed_requests
    assert total is not None and ok is not None and failed is not None
    assert total == ok + failed
    assert result.error_rate == pytest.approx(100.0 * failed / total)
    assert result.duration > 0
    assert result.throughput == pytest.approx(completed / result.duration)
    assert completed <= total


def test_k6_against_a_closed_port_completes_nothing() -> None:
    """Recorded k6 run against a refusing loopback port: 190 attempts, no response."""
    result = k6.import_raw(FIXTURES / "k6" / "http_refused.json.gz")
    assert result.total_requests == result.failed_requests == 190
    assert result.throughput == 0.0  # was 93.9/s: k6 counted the refused attempts
    summary_only = k6.import_summary(FIXTURES / "k6" / "http_refused.summary.json")
    assert summary_only.throughput is None and "throughput" in summary_only.missing


# ---- the three HTTP engines, live, on a target where a fraction of requests fail ---------


@pytest.mark.load
@pytest.mark.parametrize("tool", ["autocannon", "k6", "artillery"])
def test_http_engines_agree_on_the_definitions(
    tool: str, target_factory: Any, node_tools: Path, tmp_path: Path
) -> None:
    # 30% of API requests answer 500; a delay of 0-1.2 s against a 1 s timeout leaves
    # about one in six with no response at all: three outcomes, one definition.
    target = target_factory(
        "--error-rate", "0.3", "--latency-ms", "600", "--latency-jitter-ms", "600"
    )
    scenario = Scenario(
        name=f"agree-{tool}",
        base_url=target.url,
        endpoints=[Endpoint(path="/api/slow")],
        shape=LoadShape.constant(20, 2.0),
        timeout=1.0,
    )
    result = run_scenario(scenario, tool, tmp_path, None, RunSettings(sink=None))
    completed = http_completed(result)
    assert_definitions(result, completed)
    assert result.failed_requests and result.total_requests
    assert 0 < result.failed_requests < result.total_requests
    assert result.status_codes.get("500", 0) > 0  # failed, yet completed
    assert completed < result.total_requests  # failed with no response: not completed
