"""The capacity report from a synthetic suite: limits with their sources, bottlenecks with
evidence, reproducible JSON that validates against the report's schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from synthetic_results import (
    ladder_shape,
    memory_series,
    result,
    scenario,
    step,
    stepped_result,
)

from orchestrator.conclusions.capacity import build_capacity_report, capacity_schema
from orchestrator.conclusions.models import CapacityReport
from orchestrator.models import LoadTestResult, ResourceSample, ResourceUsage, Threshold
from orchestrator.scenarios import LoadShape, Scenario

MB = 1e6
LEVELS = [2, 4, 6, 8, 10, 12, 16]


def _gate(metric: str, limit: float, measured: float = 0.0) -> Threshold:
    return Threshold(metric=metric, op="<", limit=limit, measured=measured, passed=True)


def _cpu_busy(seconds: float, cpu: float) -> ResourceUsage:
    series = [
        ResourceSample(t=t / 2, rss_bytes=40_000_000, cpu_percent=cpu, threads=3, fds=20)
        for t in range(int(seconds * 2) + 1)
    ]
    return ResourceUsage(series=series, interval=0.5, source="psutil")


def _suite() -> tuple[list[LoadTestResult], dict[str, Scenario]]:
    stress_shape = ladder_shape(LEVELS, hold=10.0, climb=4.0)
    # Past 8 servers at 20 ms requests queue: latency climbs beyond p99 < 60 ms at 12+.
    stress = stepped_result(
        "stress", stress_shape, 8, 20.0,
        thresholds=[_gate("errorRate", 5.0), _gate("p99", 60.0)],
        resource=_cpu_busy(200.0, 97.0),
    )  # fmt: skip
    normal_shape = LoadShape.constant(4, 60.0)
    normal = result(
        "normal",
        [step(0, 4, 0.0, 60.0, 200.0, 20.0)],
        thresholds=[_gate("errorRate", 0.1)],
        resource=memory_series(60.0, 1.0, slope_bytes_per_s=0.0, noise_bytes=0.2 * MB, seed=1),
    )
    endurance_shape = LoadShape.constant(4, 120.0)
    endurance = result(
        "endurance",
        [step(0, 4, 0.0, 120.0, 200.0, 20.0)],
        resource=memory_series(
            120.0, 1.0, slope_bytes_per_s=0.5 * MB, noise_bytes=0.2 * MB, seed=2
        ),
    )
    scenarios = {
        "stress": scenario("stress", stress_shape),
        "normal": scenario("normal", normal_shape),
        "endurance": scenario("endurance", endurance_shape),
    }
    return [stress, endurance, normal], scenarios


def test_limits_come_with_their_source() -> None:
    results, scenarios = _suite()
    report = build_capacity_report(results, scenarios, suite="full")
    users = report.capacity_limits.max_concurrent_users
    # 10 users: R = 25 ms, p99 ~ 31 ms < 60; 12 users: p99 ~ 37.5 ms; 16: p99 ~ 50 ms... all
    # within p99 < 60 ms, so every level held stays within the SLA: a lower bound.
    assert users.value == 16 and users.bound == "lower_bound"
    assert users.source is not None and users.source.scenario == "stress"
    throughput = report.capacity_limits.max_throughput
    assert throughput.value == pytest.approx(400.0, rel=0.01)
    assert throughput.bound == "measured"
    assert throughput.source is not None and throughput.source.scenario == "stress"
    ws = report.capacity_limits.max_web_socket_connections
    assert ws.value is None and ws.reason == "no WebSocket scenario ran"
    assert report.capacity_limits.max_database_connections.value is None


def test_a_latency_sla_bounds_the_users() -> None:
    results, scenarios = _suite()
    tight = [
        r.model_copy(update={"thresholds": [_gate("p95", 35.0)]}) if r.scenario == "stress" else r
        for r in results
    ]
    users = build_capacity_report(tight, scenarios).capacity_limits.max_concurrent_users
    # R(n) = n x 2.5 ms past 8 users, p95 ~ 1.19 x R: 10 users ~ 29.7 ms, 12 ~ 35.6 ms.
    assert users.value == 10 and users.bound == "measured"
    assert "p95 < 35 ms" in (users.basis or "")


def test_knee_fit_leak_and_bottlenecks_per_scenario() -> None:
    results, scenarios = _suite()
    report = build_capacity_report(results, scenarios, suite="full")
    by_name = {a.scenario: a for a in report.scenarios}
    assert [a.scenario for a in report.scenarios] == ["endurance", "normal", "stress"]
    stress = by_name["stress"]
    assert stress.knee is not None and stress.knee.concurrency == 8
    assert stress.usl is not None and stress.usl.points == len(LEVELS)
    assert any(r.role == "transition" for r in stress.step_roles)
    assert by_name["normal"].usl is None  # one level: nothing to fit
    endurance_leak = by_name["endurance"].leak
    assert endurance_leak is not None and endurance_leak.memory_leak is True
    normal_leak = by_name["normal"].leak
    assert normal_leak is not None and normal_leak.memory_leak is False
    assert report.memory_leak is True
    components = {(b.scenario, b.component) for b in report.bottlenecks}
    assert ("stress", "request queueing") in components
    assert ("stress", "target CPU") in components
    assert ("endurance", "target memory") in components
    queueing = next(b for b in report.bottlenecks if b.component == "request queueing")
    # 400 req/s x the 20.5 ms p50 at 2 users (its histogram's): about 8 in service.
    assert any("about 8.2 requests in service" in e for e in queueing.evidence)
    metrics = report.performance_metrics
    assert metrics.normal_load.scenario == "normal"
    assert metrics.peak_load.scenario is None and "peak" in (metrics.peak_load.reason or "")
    assert metrics.stress_load.scenario == "stress"


def test_a_saturated_generator_is_the_bottleneck_named_first() -> None:
    shape = ladder_shape([2, 4, 8], hold=6.0, climb=2.0)
    saturated = stepped_result("stress", shape, 64, 20.0, generator_saturated=True)
    report = build_capacity_report([saturated], {"stress": scenario("stress", shape)})
    assert report.bottlenecks[0].component == "load generator"
    throughput = report.capacity_limits.max_throughput
    assert throughput.bound == "lower_bound"
    assert "load generator was saturated" in (throughput.basis or "")


def test_connection_errors_are_evidence() -> None:
    failing = result(
        "stress",
        [step(0, 4, 0.0, 5.0, 200.0, 20.0), step(1, 64, 5.3, 5.0, 150.0, 900.0, failed=300)],
        errors={"connection_refused": 250, "timeout": 50},
    )
    report = build_capacity_report([failing])
    kinds = {b.component: b for b in report.bottlenecks}
    assert kinds["connections"].evidence == ["connection_refused: 250 of 2,050 requests"]
    assert kinds["connections"].limit == 4
    assert kinds["timeouts"].evidence == ["timeouts: 50 of 2,050 requests"]


def test_same_results_same_bytes_and_schema_valid() -> None:
    results, scenarios = _suite()
    first = build_capacity_report(results, scenarios, suite="full").to_json()
    again = build_capacity_report(list(reversed(results)), scenarios, suite="full").to_json()
    assert first == again
    # The saved report reads back into the same bytes.
    assert CapacityReport.model_validate_json(first).to_json() == first
    jsonschema.validate(json.loads(first), capacity_schema())


def test_an_empty_suite_says_why_for_every_limit() -> None:
    report = build_capacity_report([])
    limits = report.capacity_limits
    for limit in (limits.max_concurrent_users, limits.max_throughput):
        assert limit.value is None and limit.reason
    assert report.memory_leak is None and report.timestamp is None


def test_database_memory_is_not_judged_for_leaks() -> None:
    growing = memory_series(120.0, 1.0, slope_bytes_per_s=0.5 * MB, noise_bytes=0.0, seed=4)
    pgbench = result(
        "db-pool", [step(0, 50, 0.0, 120.0, 500.0, 20.0)], resource=growing, protocol="postgres"
    )
    report = build_capacity_report([pgbench])
    analysis = report.scenarios[0]
    assert analysis.leak is None and report.memory_leak is None
    assert any("not judged for leaks" in n for n in analysis.notes)
    assert report.capacity_limits.max_database_connections.value == 50


def test_no_constant_hold_long_enough_is_one_recommendation() -> None:
    shape = ladder_shape([2, 4, 8], hold=3.0, climb=1.0)
    short = stepped_result("stress", shape, 8, 20.0, resource=_cpu_busy(12.0, 20.0))
    report = build_capacity_report([short], {"stress": scenario("stress", shape)})
    leak = report.scenarios[0].leak
    assert leak is not None and leak.verdict == "too short to judge"
    assert sum("long enough to judge a leak" in r for r in report.recommendations) == 1
