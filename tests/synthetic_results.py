"""Results generated from known models, for the conclusions' unit tests.

A closed system of ``servers`` parallel servers each taking ``service_ms`` per request, with
``n`` users and no think time, delivers X(n) = min(n, servers) x 1000 / service_ms requests
per second at a response time R(n) = n / X(n) (Little's law): its ceiling is
servers x 1000 / service_ms and its knee is at ``servers`` users.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from orchestrator import histogram as hist
from orchestrator.models import (
    LoadTestResult,
    ResourceSample,
    ResourceUsage,
    ResponseTime,
    Status,
    StepSummary,
    Threshold,
    TimeBucket,
)
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def ladder_shape(levels: list[int], hold: float, climb: float) -> LoadShape:
    """The built-in stress plan's form: hold, climb to the next level, hold, ..."""
    stages = [Stage(duration=hold, target=levels[0])]
    for level in levels[1:]:
        stages += [Stage(duration=climb, target=level), Stage(duration=hold - climb, target=level)]
    return LoadShape(start=levels[0], stages=stages)


def scenario(name: str, shape: LoadShape) -> Scenario:
    return Scenario(
        name=name, base_url="http://127.0.0.1:9", endpoints=[Endpoint(path="/x")], shape=shape
    )


def queue_model(n: int, servers: int, service_ms: float) -> tuple[float, float]:
    """(throughput req/s, response time ms) of the closed system at ``n`` users."""
    throughput = min(n, servers) * 1000.0 / service_ms
    return throughput, n / throughput * 1000.0


def step(
    index: int,
    level: int,
    start: float,
    duration: float,
    throughput: float,
    latency_ms: float,
    failed: int = 0,
    with_histogram: bool = True,
) -> StepSummary:
    total = round(throughput * duration) + failed
    h = hist.new_histogram()
    # A spread around the latency so that percentiles differ (p95 ~ 1.2 x latency).
    for k in range(20):
        hist.record_ms(h, latency_ms * (0.8 + 0.025 * k), max(1, total // 20))
    us = h.get_percentile_to_value_dict([50.0, 95.0, 99.0])
    rt = ResponseTime(
        p50=us[50.0] / 1000.0, p95=us[95.0] / 1000.0, p99=us[99.0] / 1000.0, source="histogram"
    )
    return StepSummary(
        index=index,
        concurrency=level,
        start=start,
        duration=duration,
        total_requests=total,
        failed_requests=failed,
        throughput=total / duration,
        response_time=rt,
        histogram=hist.encode(h) if with_histogram else None,
    )


def stepped_result(
    name: str,
    shape: LoadShape,
    servers: int,
    service_ms: float,
    step_seconds: float = 2.0,
    climb_efficiency: float = 0.4,
    overhead: float = 0.3,
    thresholds: list[Threshold] | None = None,
    resource: ResourceUsage | None = None,
    generator_saturated: bool = False,
) -> LoadTestResult:
    """A result as our autocannon runner gives it for ``shape`` against the queue model.

    Climb steps deliver only ``climb_efficiency`` of the model (fresh connections, short
    steps): the zig-zag that must not be read as levels held. Each step start costs
    ``overhead`` seconds, as a real runner's does.
    """
    holds = _hold_segments(shape)
    steps: list[StepSummary] = []
    clock = shape_clock = 0.0
    for i, (duration, level) in enumerate(shape.steps(step_seconds)):
        x, r = queue_model(level, servers, service_ms)
        in_hold = any(a <= shape_clock + duration / 2 <= b and lvl == level for a, b, lvl in holds)
        factor = 1.0 if in_hold else climb_efficiency
        steps.append(step(i, level, clock, duration, x * factor, r))
        clock += duration + overhead
        shape_clock += duration
    return result(name, steps, thresholds, resource, generator_saturated)


def _hold_segments(shape: LoadShape) -> list[tuple[float, float, int]]:
    out, t = [], 0.0
    for duration, low, high in shape.segments():
        if low == high:
            out.append((t, t + duration, high))
        t += duration
    return out


def result(
    name: str,
    steps: list[StepSummary],
    thresholds: list[Threshold] | None = None,
    resource: ResourceUsage | None = None,
    generator_saturated: bool = False,
    time_series: list[TimeBucket] | None = None,
    protocol: str = "http",
    errors: dict[str, int] | None = None,
    status_codes: dict[str, int] | None = None,
) -> LoadTestResult:
    total = sum(s.total_requests for s in steps) or sum(b.requests for b in time_series or [])
    failed = sum(s.failed_requests for s in steps) or sum(b.errors for b in time_series or [])
    duration = sum(s.duration for s in steps) or float(len(time_series or []))
    return LoadTestResult(
        scenario=name,
        tool="autocannon" if steps else "k6",
        protocol=protocol,
        workload_model="closed",
        latency_measures="synthetic",
        target="http://127.0.0.1:9",
        concurrency=max([s.concurrency for s in steps] + [0]),
        duration=duration,
        total_requests=total,
        successful_requests=total - failed,
        failed_requests=failed,
        error_rate=100.0 * failed / total if total else None,
        throughput=total / duration if duration else None,
        response_time=ResponseTime(p50=10.0, p95=20.0, p99=30.0, source="histogram"),
        resource_usage=resource,
        steps=steps,
        time_series=time_series or [],
        thresholds=thresholds or [],
        errors=errors or {},
        status_codes=status_codes or {},
        generator_saturated=generator_saturated,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=duration),
        status=Status.COMPLETED,
    )


def memory_series(
    seconds: float,
    interval: float,
    slope_bytes_per_s: float,
    noise_bytes: float,
    seed: int,
    base: float = 50e6,
    threads_per_s: float = 0.0,
) -> ResourceUsage:
    """RSS = base + slope x t + Gaussian noise, sampled every ``interval`` seconds."""
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, seconds + 1e-9, interval)
    samples = [
        ResourceSample(
            t=float(t),
            rss_bytes=round(base + slope_bytes_per_s * t + rng.normal(0.0, noise_bytes)),
            cpu_percent=50.0,
            threads=4 + int(threads_per_s * t),
            fds=12,
        )
        for t in times
    ]
    return ResourceUsage(series=samples, interval=interval, source="psutil")
