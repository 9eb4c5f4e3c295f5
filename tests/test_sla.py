from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.errors import ConfigError, ExitCode
from orchestrator.models import (
    LeakReport,
    LoadTestResult,
    ResourceUsage,
    ResponseTime,
    Status,
    Threshold,
    Transport,
    WebSocketStats,
)
from orchestrator.scenarios import Endpoint, LoadShape, Scenario
from orchestrator.sla import (
    ThresholdSpec,
    Verdict,
    evaluate,
    format_metric,
    parse_threshold,
    suite_exit_code,
    verdict,
)
from orchestrator.suite_gates import evaluate_suite

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def result(**overrides: Any) -> LoadTestResult:
    fields: dict[str, Any] = {
        "scenario": "normal",
        "tool": "autocannon",
        "protocol": "http",
        "workload_model": "closed",
        "latency_measures": "request sent to response read",
        "target": "http://127.0.0.1:8000",
        "concurrency": 50,
        "duration": 10.0,
        "total_requests": 2000,
        "successful_requests": 1999,
        "failed_requests": 1,
        "error_rate": 0.05,
        "throughput": 200.0,
        "response_time": ResponseTime(p50=12.0, p95=480.0, p99=900.0, mean=20.0, max=1500.0),
        "started_at": T0,
        "ended_at": T0,
        "status": Status.COMPLETED,
    }
    return LoadTestResult.model_validate({**fields, **overrides})


@pytest.mark.parametrize(
    ("text", "metric", "op", "limit"),
    [
        ("errorRate < 0.1%", "errorRate", "<", 0.1),
        ("errorRate<5", "errorRate", "<", 5.0),
        ("p95 < 500ms", "p95", "<", 500.0),
        ("p99 < 1s", "p99", "<", 1000.0),
        ("p50 <= 250us", "p50", "<=", 0.25),
        ("responseTime.max < 2s", "max", "<", 2000.0),
        ("throughput > 10/s", "throughput", ">", 10.0),
        ("throughputPerEndpoint > 10/s", "throughputPerEndpoint", ">", 10.0),
        ("memoryDelta < 20MB", "memoryDelta", "<", 20_000_000.0),
        ("memoryDelta < 20MiB", "memoryDelta", "<", 20 * 1024 * 1024.0),
        ("wsMessageRate > 100/s", "wsMessageRate", ">", 100.0),
        ("websocket.messageRate >= 1e2 msg/s", "wsMessageRate", ">=", 100.0),
        ("loadNotDelivered <= 0", "loadNotDelivered", "<=", 0.0),
        ("aggregateThroughput > 50/s", "aggregateThroughput", ">", 50.0),
    ],
)
def test_parse_text(text: str, metric: str, op: str, limit: float) -> None:
    spec = parse_threshold(text)
    assert (spec.metric, spec.op) == (metric, op)
    assert spec.limit == pytest.approx(limit)
    assert spec.text == text.strip()


def test_parse_mapping() -> None:
    spec = parse_threshold({"metric": "p95", "op": "<", "limit": 500})
    assert (spec.metric, spec.limit, spec.label) == ("p95", 500.0, None)
    assert spec.text == "p95 < 500"
    spec = parse_threshold({"metric": "memoryDelta", "op": "<", "limit": "20MB", "label": "leak"})
    assert (spec.limit, spec.text) == (20e6, "leak")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("p96 < 500ms", "unknown metric 'p96'"),
        ("p95 < 500 parsecs", "unknown unit 'parsecs' for p95"),
        ("p95 < 500 ms max", "cannot read threshold"),
        ("p95 < 500min", "unknown unit 'min' for p95"),
        ("memoryDelta < 20MiBs", "unknown unit 'MiBs' for memoryDelta"),
        ("errorRate < 1/s", "unknown unit '/s' for errorRate"),
        ("p95 = 5ms", "cannot read threshold"),
    ],
)
def test_parse_errors_name_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_threshold(text)
    with pytest.raises(ConfigError, match="unknown metric 'latency'"):
        parse_threshold({"metric": "latency", "op": "<", "limit": 1})


def test_parse_in_a_scope() -> None:
    assert parse_threshold("p95 < 1s", scope="scenario").metric == "p95"
    with pytest.raises(ConfigError, match="aggregateThroughput is not a scenario metric"):
        parse_threshold("aggregateThroughput > 5/s", scope="scenario")
    with pytest.raises(ConfigError, match="p95 is not a suite metric; suite metrics: aggregate"):
        parse_threshold("p95 < 1s", scope="suite")


def test_evaluate_pass_fail_and_unmeasured() -> None:
    measured = result(
        resource_usage=ResourceUsage(memory_delta=25_000_000),
        missing={"websocket.messageRate": "an HTTP run has no WebSocket messages"},
    )
    specs = [
        parse_threshold(t)
        for t in ("errorRate < 0.1%", "p95 < 500ms", "p99 < 800ms", "throughput > 10/s",
                  "memoryDelta < 20MB", "wsMessageRate > 100/s", "p90 < 1s")
    ]  # fmt: skip
    checks = {c.metric: c for c in evaluate(measured, specs)}
    assert checks["errorRate"] == Threshold(
        metric="errorRate", op="<", limit=0.1, measured=0.05, passed=True
    )
    assert checks["p95"].passed is True and checks["p95"].measured == 480.0
    assert checks["p99"].passed is False and checks["p99"].measured == 900.0
    assert checks["throughput"].passed is True
    assert (checks["memoryDelta"].passed, checks["memoryDelta"].measured) == (False, 25e6)
    ws = checks["wsMessageRate"]
    assert ws.passed is None and ws.measured is None
    assert ws.detail == "an HTTP run has no WebSocket messages"
    assert checks["p90"].passed is None
    assert checks["p90"].detail == "responseTime.p90 was not measured"


def test_a_run_that_did_not_complete_is_never_judged_passed() -> None:
    failed = result(status=Status.TOOL_FAILED, status_detail="exit 1")
    (check,) = evaluate(failed, [parse_threshold("p95 < 500ms")])
    assert check.passed is None and check.measured == 480.0
    assert check.detail == "run tool_failed: not judged"


def test_saturated_generator_is_noted_on_latency() -> None:
    busy = result(generator_saturated=True)
    latency, errors = evaluate(
        busy, [parse_threshold("p95 < 500ms"), parse_threshold("errorRate < 1")]
    )
    assert latency.passed is True and "CPU-saturated" in (latency.detail or "")
    assert errors.detail is None


def test_throughput_per_endpoint_is_measured_never_estimated() -> None:
    spec = parse_threshold("throughputPerEndpoint > 10/s")
    shape = LoadShape.constant(50, 10)
    one = Scenario(name="one", base_url="http://x", endpoints=[Endpoint(path="/")], shape=shape)
    # One endpoint: every request is its own, so the run's throughput is its throughput.
    (check,) = evaluate(result(), [spec], one)
    assert (check.measured, check.passed, check.detail) == (200.0, True, None)
    weighted = one.model_copy(
        update={"endpoints": [Endpoint(path="/a", weight=3), Endpoint(path="/b", weight=1)]}
    )
    # Two endpoints and no per-endpoint numbers: not measured, with the reason (no estimate).
    no_split = result(throughput=36.0, missing={"endpoints": "the tool's --json has none"})
    (check,) = evaluate(no_split, [spec], weighted)
    assert (check.measured, check.passed) == (None, None)
    assert check.detail == "not measured per endpoint: the tool's --json has none"
    (check,) = evaluate(result(), [spec])
    assert check.passed is None and "not measured per endpoint" in (check.detail or "")


def test_evaluate_refuses_suite_metrics_and_vice_versa() -> None:
    with pytest.raises(ConfigError, match="suite-wide"):
        evaluate(result(), [parse_threshold("aggregateThroughput > 1/s")])
    with pytest.raises(ConfigError, match="scenario metric"):
        evaluate_suite([result()], [parse_threshold("p95 < 1s")])


def ws_result(rate: float | None, duration: float, **overrides: Any) -> LoadTestResult:
    return result(
        scenario="ws",
        tool="artillery",
        protocol="ws",
        duration=duration,
        throughput=None,
        websocket=WebSocketStats(message_rate=rate),
        **overrides,
    )


def test_evaluate_suite_aggregates() -> None:
    specs = [
        parse_threshold("aggregateThroughput > 50/s"),
        parse_threshold("aggregateWsMessageRate > 100/s"),
        parse_threshold("memoryDeltaPer100Users < 20MB"),
    ]
    results = [
        # 100 req/s for 30 s and 40 req/s for 10 s: 3400 requests in 40 s = 85 req/s.
        result(throughput=100.0, duration=30.0, concurrency=50,
               resource_usage=ResourceUsage(memory_delta=6_000_000)),
        result(throughput=40.0, duration=10.0, concurrency=200,
               resource_usage=ResourceUsage(memory_delta=30_000_000)),
        ws_result(90.0, 60.0, concurrency=50),
        ws_result(None, 10.0),
        result(throughput=1.0, duration=100.0, status=Status.TARGET_FAILED),  # not counted
        # The database server's RSS is not the service's memory: not counted either.
        result(protocol="postgres", tool="pgbench", throughput=9000.0, concurrency=50,
               resource_usage=ResourceUsage(memory_delta=60_000_000)),
    ]  # fmt: skip
    throughput, ws, memory = evaluate_suite(results, specs)
    assert throughput.measured == pytest.approx(85.0) and throughput.passed is True
    assert ws.measured == pytest.approx(90.0) and ws.passed is False
    assert "1 scenario(s) without a measurement" in (ws.detail or "")
    # 6 MB at 50 users = 12 MB per 100; 30 MB at 200 users = 15 MB per 100 (the worst).
    assert memory.measured == pytest.approx(15e6) and memory.passed is True


def test_evaluate_suite_leaves_out_absent_kinds_but_not_unmeasured_ones() -> None:
    specs = [parse_threshold("aggregateWsMessageRate > 100/s"),
             parse_threshold("memoryDeltaPer100Users < 20MB")]  # fmt: skip
    (memory,) = evaluate_suite([result()], specs)  # no WebSocket scenario ran
    assert memory.metric == "memoryDeltaPer100Users"
    assert memory.passed is None and memory.detail == "no scenario measured the target's memory"
    ws, _ = evaluate_suite([ws_result(None, 5.0)], specs)
    assert ws.passed is None


def test_gates_of_scenarios_left_out_are_not_applicable_but_unmeasured_ones_still_fail() -> None:
    """`suite full --only db-pool`: the service's gates are about scenarios that did not run."""
    specs = [parse_threshold("aggregateThroughput > 50/s"),
             parse_threshold("aggregateWsMessageRate > 100/s"),
             parse_threshold("memoryDeltaPer100Users < 20MB")]  # fmt: skip
    db_pool = judged(True, scenario="db-pool", tool="pgbench", protocol="postgres")
    left_out: dict[str, Transport] = {
        "normal": "http", "ws-normal": "ws", "db-exhaustion": "postgres",
    }  # fmt: skip
    checks = evaluate_suite([db_pool], specs, left_out)
    assert [(c.metric, c.applicable, c.passed) for c in checks] == [
        ("aggregateThroughput", False, None),
        ("aggregateWsMessageRate", False, None),
        ("memoryDeltaPer100Users", False, None),
    ]
    assert checks[0].detail == "not applicable: its scenarios were left out (normal)"
    assert checks[2].detail == "not applicable: its scenarios were left out (normal, ws-normal)"
    assert suite_exit_code([db_pool], {}, checks) == ExitCode.OK
    # The HTTP scenario ran but nothing sampled the service's memory: still not a pass.
    http = judged(True, resource_usage=None)
    checks = evaluate_suite([db_pool, http], specs, {"ws-normal": "ws"})
    memory = next(c for c in checks if c.metric == "memoryDeltaPer100Users")
    assert memory.applicable and memory.passed is None
    assert suite_exit_code([db_pool, http], {}, checks) == ExitCode.SLA_FAILED
    # A suite that has no scenario of a kind at all: the gate is dropped, as before.
    assert evaluate_suite([db_pool], specs) == []


def judged(*passed: bool | None, **overrides: Any) -> LoadTestResult:
    checks = [
        Threshold(metric="p95", op="<", limit=1, measured=None if p is None else 0.5, passed=p)
        for p in passed
    ]
    return result(thresholds=checks, **overrides)


def test_verdicts() -> None:
    assert verdict(judged(True, True)) == Verdict.PASSED
    assert verdict(judged()) == Verdict.PASSED
    assert verdict(judged(True, False)) == Verdict.SLA_FAILED
    assert verdict(judged(True, None)) == Verdict.NOT_JUDGED
    assert verdict(judged(status=Status.TARGET_FAILED)) == Verdict.FAILED
    assert verdict(judged(status=Status.INTERRUPTED)) == Verdict.INTERRUPTED
    assert verdict(None) == Verdict.FAILED  # could not run


def test_suite_exit_codes() -> None:
    ok, sla, unknown = judged(True), judged(False), judged(None)
    assert suite_exit_code([ok, ok]) == ExitCode.OK
    assert suite_exit_code([ok, sla]) == ExitCode.SLA_FAILED
    assert suite_exit_code([ok, unknown]) == ExitCode.SLA_FAILED  # never a silent pass
    broken = judged(True, status=Status.TOOL_FAILED)
    assert suite_exit_code([sla, broken]) == ExitCode.TOOL_OR_TARGET_FAILED
    assert suite_exit_code([ok, judged(status=Status.TARGET_FAILED)]) == 3
    not_run = {"db-pool": "skipped: pgbench not installed"}
    assert suite_exit_code([ok], not_run) == ExitCode.TOOL_OR_TARGET_FAILED
    assert suite_exit_code([]) == ExitCode.TOOL_OR_TARGET_FAILED
    stopped = judged(True, status=Status.INTERRUPTED)
    assert suite_exit_code([broken, stopped], not_run) == ExitCode.INTERRUPTED
    assert suite_exit_code([ok], interrupted=True) == ExitCode.INTERRUPTED
    suite_fail = Threshold(metric="aggregateThroughput", op=">", limit=50, measured=3, passed=False)
    assert suite_exit_code([ok], (), [suite_fail]) == ExitCode.SLA_FAILED
    suite_ok = suite_fail.model_copy(update={"measured": 60, "passed": True})
    assert suite_exit_code([ok], {}, [suite_ok]) == ExitCode.OK
    suite_unknown = suite_fail.model_copy(update={"measured": None, "passed": None})
    assert suite_exit_code([ok], {}, [suite_unknown]) == ExitCode.SLA_FAILED


def test_spec_is_frozen_and_judges() -> None:
    spec = ThresholdSpec.model_validate("p95 < 500ms")
    assert spec.judge(499.9).passed is True
    assert spec.judge(500.0).passed is False
    assert spec.judge(None, "no data").passed is None
    assert ThresholdSpec.model_validate("p95 <= 500ms").judge(500.0).passed is True


def leaking(verdict: bool | None) -> LeakReport:
    return LeakReport(
        verdict={True: "leak", False: "no leak", None: "inconclusive"}[verdict],
        memory_leak=verdict,
        warmup=1.0,
        window_start=0.0,
        window_end=60.0,
        projection_minutes=60.0,
        trends=[],
        summary="synthetic",
    )


def test_the_leak_verdict_is_a_gate() -> None:
    spec = parse_threshold("memoryLeak == false")
    assert (spec.metric, spec.op, spec.limit) == ("memoryLeak", "==", 0.0)
    assert evaluate(result(leak=leaking(False)), [spec])[0].passed is True
    failed = evaluate(result(leak=leaking(True)), [spec])[0]
    assert failed.passed is False
    assert format_metric("memoryLeak", failed.measured) == "true"
    unknown = evaluate(result(leak=leaking(None)), [spec])[0]
    assert unknown.passed is None  # could not tell: never a pass
    short = result(missing={"leak": "too short to judge a trend: 4 samples over 3.0 s"})
    not_judged = evaluate(short, [spec])[0]
    assert not_judged.passed is None
    assert not_judged.detail is not None and "too short" in not_judged.detail


def test_yes_no_metrics_take_true_or_false_only() -> None:
    with pytest.raises(ConfigError, match="true or false"):
        parse_threshold("memoryLeak < 1")
    with pytest.raises(ConfigError, match="takes a number"):
        parse_threshold("p95 < true")


def test_cpu_utilization_is_judged_only_where_the_target_was_sampled() -> None:
    spec = parse_threshold("cpuUtilization < 80%")
    sampled = result(resource_usage=ResourceUsage(cpu_percent_mean=90.0, cpu_utilization_mean=45.0))
    assert evaluate(sampled, [spec])[0].passed is True
    busy = result(resource_usage=ResourceUsage(cpu_percent_mean=190.0, cpu_utilization_mean=95.0))
    assert evaluate(busy, [spec])[0].passed is False
    remote = result(missing={"resourceUsage": "no local target process to sample"})
    unknown = evaluate(remote, [spec])[0]
    assert unknown.passed is None  # not measured: never a pass
    assert unknown.detail == "no local target process to sample"
