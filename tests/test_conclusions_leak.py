"""Leak verdicts on series generated with a known slope and noise."""

from __future__ import annotations

from collections import Counter

import pytest
from synthetic_results import memory_series

from orchestrator.conclusions.leak import default_warmup, judge_trend, leak_report
from orchestrator.models import ResourceSample, ResourceUsage

MB = 1e6


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_a_half_megabyte_per_second_leak_is_found_with_its_slope(seed: int) -> None:
    # 30 MB gained over the minute, under 0.5 MB of sample-to-sample noise.
    usage = memory_series(60.0, 1.0, slope_bytes_per_s=0.5 * MB, noise_bytes=0.5 * MB, seed=seed)
    report = leak_report(usage)
    assert report is not None
    assert report.verdict == "leak" and report.memory_leak is True
    memory = report.trends[0]
    assert memory.resource == "memory" and memory.unit == "MB/min"
    assert memory.slope == pytest.approx(30.0, rel=0.05)  # 0.5 MB/s = 30 MB/min
    assert memory.slope_low is not None and memory.slope_low > 0
    assert memory.p_value is not None and memory.p_value < 0.01
    # 60 minutes at 30 MB/min, and said to be a projection.
    assert memory.projected_growth == pytest.approx(1800.0, rel=0.05)
    assert "projection" in memory.detail
    # Threads and open files stay flat: no leak there.
    assert {t.resource: t.verdict for t in report.trends[1:]} == {
        "threads": "no leak", "fds": "no leak",
    }  # fmt: skip


def test_flat_noisy_memory_is_no_leak_on_almost_every_seed() -> None:
    verdicts: Counter[str] = Counter()
    for seed in range(200):
        usage = memory_series(60.0, 0.5, slope_bytes_per_s=0.0, noise_bytes=1 * MB, seed=seed)
        report = leak_report(usage)
        assert report is not None
        verdicts[report.trends[0].verdict] += 1
    # A trend test at p < 0.05 calls ~5% of flat series a trend (inconclusive, not a leak);
    # a leak needs p < 0.01 and a slope above the floor too.
    assert verdicts["leak"] <= 2
    assert verdicts["no leak"] >= 180


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_flat_noisy_memory_is_no_leak(seed: int) -> None:
    usage = memory_series(120.0, 1.0, slope_bytes_per_s=0.0, noise_bytes=0.5 * MB, seed=seed)
    report = leak_report(usage)
    assert report is not None
    assert report.memory_leak is False
    assert report.verdict == "no leak"


def test_the_warmup_is_left_out() -> None:
    # Memory climbs by 20 MB while caches fill in the first 20 s, then stays flat.
    series = [
        ResourceSample(t=float(t), rss_bytes=round(60e6 + 1e6 * min(t, 20)), threads=4, fds=9)
        for t in range(60)
    ]
    usage = ResourceUsage(series=series)
    report = leak_report(usage, warmup=20.0)
    assert report is not None and report.verdict == "no leak"
    assert report.warmup == 20.0
    # Judged from t=0, the same climb would look like a trend.
    unguarded = leak_report(usage, warmup=0.0)
    assert unguarded is not None and unguarded.verdict != "no leak"


def test_too_short_to_judge_says_how_short() -> None:
    usage = memory_series(4.0, 1.0, slope_bytes_per_s=MB, noise_bytes=0.0, seed=1)
    report = leak_report(usage)
    assert report is not None
    assert report.verdict == "too short to judge" and report.memory_leak is None
    assert report.trends[0].detail.startswith("too short to judge: ")
    assert "samples over" in report.trends[0].detail


def test_growing_threads_are_a_leak_even_when_memory_is_flat() -> None:
    usage = memory_series(60.0, 1.0, 0.0, 0.2 * MB, seed=3, threads_per_s=0.5)
    report = leak_report(usage)
    assert report is not None
    threads = next(t for t in report.trends if t.resource == "threads")
    assert threads.verdict == "leak"
    assert threads.slope == pytest.approx(30.0, rel=0.05)  # per minute
    assert report.verdict == "leak" and report.memory_leak is False


def test_window_limits_the_judged_samples() -> None:
    # Memory steps up with load until t=30, then holds: judged on the hold only.
    series = [
        ResourceSample(t=float(t), rss_bytes=round(50e6 + 1e6 * min(t, 30))) for t in range(91)
    ]
    report = leak_report(ResourceUsage(series=series), window=(30.0, 90.0))
    assert report is not None and report.memory_leak is False
    assert report.window_start == 30.0 and report.window_end == 90.0


def test_no_samples_no_report() -> None:
    assert leak_report(None) is None
    assert leak_report(ResourceUsage()) is None


def test_default_warmup_keeps_most_of_a_short_run() -> None:
    assert default_warmup(3600.0) == 360.0
    assert default_warmup(30.0) == 5.0
    assert default_warmup(8.0) == pytest.approx(2.4)


def test_a_judged_trend_reports_ci_and_test() -> None:
    points = [(float(t), 1e8 + 2e5 * t) for t in range(30)]
    trend = judge_trend(points, "memory")
    assert trend.slope == pytest.approx(12.0)  # 0.2 MB/s
    assert trend.slope_low == pytest.approx(12.0) and trend.slope_high == pytest.approx(12.0)
    assert trend.kendall_tau == pytest.approx(1.0)
