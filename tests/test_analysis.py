"""Capacity limits and spike recovery from hand-built results (no load)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.analysis import attach_findings, capacity_from_steps
from orchestrator.models import (
    LoadTestResult,
    ResponseTime,
    Status,
    StepSummary,
    TimeBucket,
)
from orchestrator.recovery import SpikePhases, recovery_after_spike, spike_phases
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage
from reports.summary import summary_rows

NOW = datetime(2024, 1, 1, tzinfo=UTC)
# 10 s at 10 users, 2 s up to 100, 6 s there, 2 s down to 10, 10 s back at 10.
SPIKE = LoadShape(
    start=10,
    stages=[
        Stage(duration=10, target=10),
        Stage(duration=2, target=100),
        Stage(duration=6, target=100),
        Stage(duration=2, target=10),
        Stage(duration=10, target=10),
    ],
)


def step(
    index: int,
    users: int,
    throughput: float | None,
    p99: float | None = 10.0,
    failed: int = 0,
    total: int = 1000,
    start: float | None = None,
    duration: float = 2.0,
) -> StepSummary:
    return StepSummary(
        index=index,
        concurrency=users,
        start=index * duration if start is None else start,
        duration=duration,
        total_requests=total,
        failed_requests=failed,
        throughput=throughput,
        response_time=ResponseTime(p99=p99),
    )


def result(
    steps: list[StepSummary] | None = None,
    series: list[TimeBucket] | None = None,
    **kw: Any,
) -> LoadTestResult:
    fields: dict[str, Any] = {
        "scenario": "s",
        "tool": "autocannon",
        "protocol": "http",
        "workload_model": "closed",
        "latency_measures": "test",
        "target": "http://127.0.0.1:1",
        "concurrency": max((s.concurrency for s in steps or []), default=1),
        "duration": 30.0,
        "total_requests": 1,
        "successful_requests": 1,
        "failed_requests": 0,
        "error_rate": 0.0,
        "throughput": 1.0,
        "response_time": ResponseTime(),
        "started_at": NOW,
        "ended_at": NOW,
        "status": Status.COMPLETED,
        "steps": steps or [],
        "time_series": series or [],
    }
    fields.update(kw)
    return LoadTestResult(**fields)


def scenario(shape: LoadShape = SPIKE, **kw: Any) -> Scenario:
    return Scenario(
        name="s", base_url="http://127.0.0.1:1", endpoints=[Endpoint(path="/")], shape=shape, **kw
    )


def series(p95: dict[int, float | None], errors: dict[int, int] | None = None) -> list[TimeBucket]:
    """One bucket per second 0..29 at p95 10 ms unless ``p95`` says otherwise."""
    return [
        TimeBucket(t=t, requests=100, errors=(errors or {}).get(t, 0), p95=p95.get(t, 10.0))
        for t in range(30)
    ]


# ---- capacity limits ----


def test_errors_over_the_limit_are_the_bottleneck() -> None:
    steps = [step(0, 50, 900.0), step(1, 100, 1500.0, failed=10), step(2, 150, 1200.0, failed=120)]
    limits = capacity_from_steps(result(steps), error_limit=5.0)
    assert limits is not None
    assert limits.max_concurrency == 100
    assert limits.max_throughput == 1500.0
    assert limits.bottleneck == "errors: 12% failed at 150 users (limit 5%)"


def test_no_step_within_the_limit_has_no_max_concurrency() -> None:
    steps = [step(0, 2, 100.0, failed=1000), step(1, 4, 120.0, failed=1000)]
    limits = capacity_from_steps(result(steps), error_limit=50.0)
    assert limits is not None
    assert limits.max_concurrency is None
    assert limits.bottleneck == "errors: 100% failed at 2 users (limit 50%)"


def test_a_saturated_generator_is_named() -> None:
    steps = [step(0, 50, 900.0), step(1, 100, 1800.0)]
    limits = capacity_from_steps(result(steps, generator_saturated=True), error_limit=5.0)
    assert limits is not None
    assert limits.bottleneck is not None
    assert limits.bottleneck.startswith("generator: the load tool was saturated")
    # With errors too, the errors come first and the saturation is still said.
    failing = [step(0, 50, 900.0), step(1, 100, 1000.0, failed=500)]
    limits = capacity_from_steps(result(failing, generator_saturated=True), error_limit=5.0)
    assert limits is not None and limits.bottleneck is not None
    assert limits.bottleneck.startswith("errors: 50% failed at 100 users")
    assert "load tool was saturated" in limits.bottleneck


def test_flat_throughput_with_growing_latency_is_saturation() -> None:
    steps = [
        step(0, 50, 500.0, p99=8.0),
        step(1, 100, 1000.0, p99=10.0),
        step(2, 150, 1050.0, p99=20.0),
        step(3, 200, 1040.0, p99=41.5),
        # Coming back down (a spike's drop) is not part of the climb.
        step(4, 50, 500.0, p99=900.0),
    ]
    limits = capacity_from_steps(result(steps), error_limit=5.0)
    assert limits is not None
    assert limits.max_concurrency == 200
    assert limits.bottleneck == (
        "latency: p99 rose from 10 ms at 100 users to 41.5 ms at 200 users while "
        "throughput stayed at about 1,050 req/s (saturated)"
    )


def test_rising_throughput_finds_no_bottleneck() -> None:
    steps = [step(0, 50, 500.0, p99=8.0), step(1, 100, 1000.0, p99=12.0), step(2, 150, 1400.0)]
    limits = capacity_from_steps(result(steps), error_limit=5.0)
    assert limits is not None
    assert limits.bottleneck == "none found up to 150 users"
    # Flat throughput at the same latency is not saturation either.
    flat = [step(0, 50, 1000.0, p99=10.0), step(1, 100, 1020.0, p99=10.5)]
    limits = capacity_from_steps(result(flat), error_limit=5.0)
    assert limits is not None and limits.bottleneck == "none found up to 100 users"


def test_pauses_and_empty_steps_are_not_evidence() -> None:
    steps = [step(0, 0, None, p99=None, total=0), step(1, 5, None, p99=None, total=0)]
    assert capacity_from_steps(result(steps), error_limit=5.0) is None


# ---- spike phases ----


def test_spike_phases_of_a_rise_drop_and_hold() -> None:
    assert spike_phases(SPIKE) == SpikePhases(
        ramp_start=10, peak_end=18, drop_end=20, end=30, base=10, recovery_level=10
    )


@pytest.mark.parametrize(
    "shape",
    [
        LoadShape(start=0, stages=[Stage(duration=5, target=50), Stage(duration=5, target=50)]),
        # Down to 0: nothing left to recover at.
        LoadShape(start=10, stages=[Stage(duration=2, target=100), Stage(duration=2, target=0),
                                    Stage(duration=5, target=0)]),
        # Down, but no hold after it.
        LoadShape(start=10, stages=[Stage(duration=2, target=100), Stage(duration=2, target=10)]),
    ],
)  # fmt: skip
def test_shapes_without_a_spike_and_recovery(shape: LoadShape) -> None:
    assert spike_phases(shape) is None
    assert recovery_after_spike(result(series=series({})), scenario(shape)) == (None, None)


# ---- recovery ----


def test_recovery_after_a_spike() -> None:
    # Warm-up second 0 is no baseline; 12 ms is its worst second; the spike peaks at 200;
    # after the drop (t=20) p95 is high for 4 s, then back within 1.5 x 12 = 18 ms.
    p95: dict[int, float | None] = {0: 90.0, 5: 12.0, 12: 150.0, 16: 200.0}
    p95 |= {20: 80.0, 21: 60.0, 22: 17.0, 23: 40.0, 24: 15.0, 25: 16.0, 26: 18.0}
    recovery, _ = recovery_after_spike(result(series=series(p95)), scenario())
    assert recovery is not None
    assert recovery.method == "upper_bound"  # no per-second histograms in these buckets
    assert recovery.baseline_p95 == 12.0
    assert recovery.spike_p95 == 200.0
    assert recovery.recovered_p95 == 18.0  # highest of t=25..29
    assert recovery.recovery_error_rate == 0.0
    assert recovery.recovered is True
    # 22 is good but 23 is not: the windows are all good from the one starting at 24.
    assert recovery.seconds_to_recover == 4.0
    assert (recovery.baseline_seconds, recovery.spike_seconds, recovery.recovery_seconds) == (
        10.0,
        8.0,
        10.0,
    )


def test_no_recovery_when_latency_stays_high_or_errors_go_on() -> None:
    slow = series(dict.fromkeys(range(20, 30), 30.0))
    recovery, _ = recovery_after_spike(result(series=slow), scenario())
    assert recovery is not None
    assert recovery.recovered is False and recovery.seconds_to_recover is None
    assert recovery.recovered_p95 == 30.0
    # Latency back, but 2% of the recovery window's requests failed (baseline 0%: band 1%).
    failing = series({}, errors=dict.fromkeys(range(20, 30), 2))
    recovery, _ = recovery_after_spike(result(series=failing), scenario())
    assert recovery is not None
    assert recovery.recovery_error_rate == pytest.approx(2.0)
    assert recovery.recovered is False and recovery.seconds_to_recover is None
    # Errors go on to t=26: the window 26..28 is the first at 2/300 = 0.67% <= 1%.
    late = series({}, errors=dict.fromkeys(range(20, 27), 2))
    recovery, _ = recovery_after_spike(result(series=late), scenario())
    assert recovery is not None
    assert recovery.recovered is True and recovery.seconds_to_recover == 6.0


def test_a_stepped_run_is_read_on_its_own_clock() -> None:
    # The steps started a little late; the run was back at 10 users at 19.4 s (the
    # ramp's last step already runs at 10).
    steps = [
        step(0, 10, 100.0, start=0.0, duration=10.1),
        step(1, 55, 500.0, start=10.1, duration=1.0),
        step(2, 100, 900.0, start=11.2, duration=7.0),
        step(3, 55, 500.0, start=18.3, duration=1.0),
        step(4, 10, 100.0, start=19.4, duration=10.0),
    ]
    p95: dict[int, float | None] = {20: 11.0, 21: 11.0, 22: 11.0}
    p95 |= dict.fromkeys(range(10, 20), 100.0)
    recovery, _ = recovery_after_spike(result(steps, series(p95)), scenario())
    assert recovery is not None
    # Buckets 20..28 (29 ends after 29.4), baseline from buckets 1..9.
    assert recovery.seconds_to_recover == pytest.approx(0.6)
    assert recovery.spike_p95 == 100.0
    assert recovery.recovered_p95 == 10.0


def test_nothing_before_the_spike_means_no_recovery() -> None:
    empty = series(dict.fromkeys(range(10)))
    recovery, why = recovery_after_spike(result(series=empty), scenario())
    assert recovery is None and why is not None and "no per-second latency" in why
    stopped = result(series=series({})[:15])
    found = attach_findings(stopped, scenario())
    assert found.recovery is None
    assert "recovery" in found.missing


# ---- attached to a result, and shown ----


def test_attach_findings_uses_the_scenarios_limit_and_shows_rows() -> None:
    back = step(2, 10, 100.0, start=8.0, duration=22.0)
    steps = [step(0, 10, 100.0, duration=4), step(1, 100, 400.0, failed=300, duration=4), back]
    found = attach_findings(result(steps, series({})), scenario(stop_when_error_rate=50))
    assert found.capacity_limits is not None
    # 30% failed at 100 users: over the default 5%, under the scenario's 50%.
    assert found.capacity_limits.max_concurrency == 100
    assert found.recovery is not None and found.recovery.recovered
    rows = dict(summary_rows(found))
    assert rows["capacity limits"].startswith("100 users within the error limit")
    assert rows["recovery"].startswith("recovered 0.0 s after the drop: p95 baseline 10.00 ms")
    default = attach_findings(result(steps), scenario(LoadShape.constant(10, 5)))
    assert default.capacity_limits is not None
    assert default.capacity_limits.max_concurrency == 10
    assert default.recovery is None and "recovery" not in default.missing
    one_step = attach_findings(result(steps[:1]), scenario(LoadShape.constant(10, 5)))
    assert one_step.capacity_limits is None
    assert "capacity limits" not in dict(summary_rows(one_step))
