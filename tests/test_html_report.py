"""index.html and its plots: written beside the other report files, never at their expense."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

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
from reports import plots
from reports.writer import write_report

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def make_result(scenario: str = "api", **update: Any) -> LoadTestResult:
    """A stepped 6-second run with per-second latency and target/generator samples."""
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
    result = LoadTestResult(
        scenario=scenario,
        tool="autocannon",
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


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def test_report_has_an_html_page_and_every_plot(tmp_path: Path) -> None:
    results = [make_result("api"), make_result("login", thresholds=[])]
    written = write_report(tmp_path, "suite demo", results, exit_code=0)

    assert tmp_path / "index.html" in written
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    kinds = ("capacity", "latency", "resources", "throughput")
    expected = [f"{i:02d}-{name}-{k}.png" for i, name in ((1, "api"), (2, "login")) for k in kinds]
    assert names == sorted([*expected, "suite-p95.png"])
    for png in (tmp_path / "plots").iterdir():
        assert png_size(png) == (900, 350)
        assert png.stat().st_size < 150_000
    html = (tmp_path / "index.html").read_text()
    assert 'src="plots/01-api-latency.png"' in html
    assert 'src="plots/suite-p95.png"' in html
    assert "PASS" in html
    assert 'class="skip"' not in html  # every plot was drawn


def test_single_result_gets_no_suite_chart_and_no_capacity_without_steps(tmp_path: Path) -> None:
    write_report(tmp_path, "one", [make_result(steps=[])], exit_code=0)
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert names == {"01-api-latency.png", "01-api-throughput.png", "01-api-resources.png"}


def test_missing_time_series_means_no_latency_plot_and_the_page_says_why(tmp_path: Path) -> None:
    why = "autocannon's --json has no per-second samples"
    result = make_result(time_series=[], resource_usage=None, missing={"timeSeries": why})
    write_report(tmp_path, "no series", [result], exit_code=0)

    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert "01-api-latency.png" not in names
    assert "01-api-throughput.png" not in names
    html = (tmp_path / "index.html").read_text()
    assert "Latency over time</strong>: not measured: timeSeries: autocannon&#39;s --json" in html
    assert (
        "Target resources</strong>: not measured: the target&#39;s resources were not sampled"
        in html
    )


def test_series_without_percentiles_is_not_drawn_as_zeros(tmp_path: Path) -> None:
    series = [TimeBucket(t=float(t), requests=100, errors=0) for t in range(3)]
    why = "per-period quantiles left out"
    result = make_result(time_series=series, missing={"timeSeries.p50": why})
    write_report(tmp_path, "sketch", [result], exit_code=0)
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert "01-api-latency.png" not in names
    assert "01-api-throughput.png" in names
    assert f"not measured: timeSeries.p50: {why}" in (tmp_path / "index.html").read_text()


def test_per_second_frame_leaves_gaps_and_rates_a_short_last_bucket_honestly() -> None:
    series = [
        TimeBucket(t=0.0, requests=100, errors=0),
        TimeBucket(t=1.0, requests=100, errors=0),
        TimeBucket(t=3.0, requests=100, errors=0),  # second 2 is missing
        TimeBucket(t=4.0, requests=50, errors=5),
        TimeBucket(t=5.0, requests=3, errors=0),  # the run ended at 5.05 s: not a rate
    ]
    frame = plots.per_second_frame(make_result(time_series=series, duration=5.05))
    assert frame["x"].tolist() == pytest.approx([0.5, 1.5, 2.5, 3.5, 4.5, 5.025])
    rps = frame["rps"].tolist()
    assert rps[:2] == [100.0, 100.0]
    assert rps[2] != rps[2]  # the gap is NaN, not 0
    assert rps[3:5] == [100.0, 50.0]
    assert frame["eps"].iloc[4] == 5.0
    assert rps[5] != rps[5]
    assert frame["p95"].isna().all()


def test_html_special_text_is_escaped(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>'
    result = make_result(scenario="a<b>", status_detail=evil, status=Status.TOOL_FAILED)
    write_report(tmp_path, "escape <me>", [result], exit_code=3)
    html = (tmp_path / "index.html").read_text()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<title>escape &lt;me&gt;</title>" in html
    assert "a&lt;b&gt;" in html
    assert "FAILED: a tool or the target failed" in html


def test_a_failing_plot_still_leaves_every_file_and_the_other_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(plots, "per_second_frame", broken)
    write_report(tmp_path, "broken", [make_result()], exit_code=0)

    assert json.loads((tmp_path / "summary.json").read_text())["results"][0]["scenario"] == "api"
    assert (tmp_path / "results.csv").exists()
    html = (tmp_path / "index.html").read_text()
    assert "plot failed: RuntimeError: no fonts today" in html
    assert (tmp_path / "plots" / "01-api-resources.png").exists()
    assert not (tmp_path / "plots" / "01-api-latency.png").exists()


def test_plotting_blowing_up_whole_still_writes_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise MemoryError("too big")

    monkeypatch.setattr(plots, "plot_result", broken)
    monkeypatch.setattr(plots, "plot_suite", broken)
    write_report(tmp_path, "broken", [make_result(), make_result("b")], exit_code=0)
    assert (tmp_path / "summary.json").exists()
    html = (tmp_path / "index.html").read_text()
    assert "plots failed: too big" in html
    assert "suite plot not drawn: MemoryError" in caplog.text


def test_a_failing_page_never_costs_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import reports.html

    def broken(*_: object, **__: object) -> str:
        raise ValueError("template gone")

    monkeypatch.setattr(reports.html, "render_html", broken)
    written = write_report(tmp_path, "t", [make_result()], exit_code=0)
    assert [p.name for p in written] == ["summary.json", "summary.md", "junit.xml", "results.csv"]
    assert "index.html not written: ValueError: template gone" in caplog.text


def test_secrets_are_masked_in_the_page(tmp_path: Path) -> None:
    secret = "s3cr3t-t0ken-value"
    result = make_result(
        scenario=f"login-{secret}",
        target=f"http://user:{secret}@127.0.0.1:8000/",
        status_detail=f"Authorization: Bearer {secret}",
    )
    write_report(tmp_path, f"run {secret}", [result], exit_code=0, secrets=(secret,))
    html = (tmp_path / "index.html").read_text()
    assert secret not in html
    assert "login-***" in html
    assert {p.name for p in (tmp_path / "plots").iterdir()} >= {"01-login-latency.png"}


def test_importing_the_writer_does_not_import_matplotlib_or_pandas() -> None:
    code = (
        "import sys, reports.writer, reports.html, reports.plots; "
        "assert 'matplotlib' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
