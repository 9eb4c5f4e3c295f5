"""Results shaped as every engine produces them, and ways to read a written report.html."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from html import unescape
from typing import Any

from orchestrator import histogram as hist
from orchestrator.models import (
    CapacityLimits,
    GeneratorUsage,
    LoadTestResult,
    ResourceSample,
    ResourceUsage,
    ResponseTime,
    Status,
    StepSummary,
    Threshold,
    TimeBucket,
)

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
IMG = re.compile(r'<img src="([^"]*)"')


def histogram_of(values_ms: list[float]) -> str:
    h = hist.new_histogram()
    for value in values_ms:
        hist.record_ms(h, value)
    return str(hist.encode(h))


def make_result(scenario: str = "api", **update: Any) -> LoadTestResult:
    """A stepped 6-second run with per-second latency, a histogram, target/generator samples."""
    series = [
        TimeBucket(t=float(t), requests=1000 + 100 * t, errors=t, concurrency=10 if t < 3 else 20)
        for t in range(6)
    ]
    series[2] = TimeBucket(t=2.0, requests=900, errors=0, concurrency=10, p50=None, p95=None)
    for bucket in series:
        if bucket.t != 2.0:
            bucket.p50, bucket.p95, bucket.p99 = 2.0 + bucket.t, 5.0 + bucket.t, 9.0 + bucket.t
    samples = [
        ResourceSample(
            t=float(t), rss_bytes=50_000_000 + t * 10_000, cpu_percent=None if t == 0 else 60.0
        )
        for t in range(7)
    ]
    steps = [
        StepSummary(
            index=i,
            concurrency=users,
            start=3.0 * i,
            duration=3.0,
            total_requests=3000,
            failed_requests=30 * i,
            throughput=1000.0 + 200 * i,
            response_time=ResponseTime(p95=5.0 + i, p99=9.0 + i),
        )
        for i, users in enumerate((10, 20))
    ]
    latencies = [1.0 + (i % 97) * 0.2 for i in range(6000)]
    result = LoadTestResult(
        scenario=scenario,
        tool="autocannon",
        tool_version="9.0.0",
        protocol="http",
        workload_model="closed",
        latency_measures="request to response",
        target="http://127.0.0.1:8000/health",
        concurrency=20,
        duration=6.0,
        total_requests=6000,
        successful_requests=5985,
        failed_requests=15,
        error_rate=0.25,
        throughput=1000.0,
        response_time=ResponseTime(p50=3.0, p95=8.0, p99=12.0, source="histogram"),
        histogram=histogram_of(latencies),
        status_codes={"200": 5985, "503": 15},
        errors={"non_2xx": 15},
        resource_usage=ResourceUsage(series=samples, memory_start=50_000_000),
        generator=GeneratorUsage(
            cpu_capacity_percent=100.0,
            series=[ResourceSample(t=float(t), cpu_percent=30.0) for t in range(1, 7)],
        ),
        capacity_limits=CapacityLimits(max_concurrency=20, max_throughput=1200.0),
        time_series=series,
        steps=steps,
        thresholds=[Threshold(metric="p95", op="<", limit=20.0, measured=8.0, passed=True)],
        started_at=START,
        ended_at=START,
        status=Status.COMPLETED,
    )
    return result.model_copy(update=update)


def text_of(page: str) -> str:
    """The page's text as a browser shows it, white space collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page)))


def images(page: str) -> list[str]:
    return IMG.findall(page)


def svg_of(uri: str) -> bytes:
    assert uri.startswith("data:image/svg+xml;base64,"), uri[:60]
    return base64.b64decode(uri.split(",", 1)[1])
