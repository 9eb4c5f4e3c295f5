"""report.html: one self-contained page, written beside the other report files and never at
their expense; the verdict first; missing data said, not drawn as zeros.

The results here are built in the test (the shape every engine produces); the page of a real
suite, opened in a real browser, is tests/test_report_page.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from report_results import images, make_result, svg_of

from orchestrator.models import ResourceSample, ResponseTime, Status, Threshold, TimeBucket
from reports import figures, html, plots
from reports.writer import write_report


def test_one_page_holds_every_plot_and_links_only_relative_paths(tmp_path: Path) -> None:
    results = [make_result("api"), make_result("login", thresholds=[])]
    written = write_report(tmp_path, "suite demo", results, exit_code=0)

    assert {tmp_path / "report.html", tmp_path / "index.html"} <= set(written)
    page = (tmp_path / "report.html").read_text()
    srcs = images(page)
    # Per scenario: timeline, distribution, capacity; and the suite's latency overview.
    assert len(srcs) == 7
    for src in srcs:
        assert svg_of(src).startswith(b"<?xml") and b"<svg" in svg_of(src)
    assert 'class="skip"' not in page  # every plot was drawn
    # Nothing the page needs is fetched: no stylesheet, script or picture by URL.
    assert not re.search(r'<(?:link|script)\b|src="(?!data:)', page)
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(not h.startswith(("/", "file:", "http")) for h in hrefs)
    assert str(tmp_path) not in page
    # The same pictures in plots/, for use outside the page.
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    kinds = ("capacity", "distribution", "timeline")
    expected = [f"{i:02d}-{name}-{k}.svg" for i, name in ((1, "api"), (2, "login")) for k in kinds]
    assert names == sorted([*expected, "suite-latency.svg"])
    # index.html sends a browser (or a web server's folder index) to the one page.
    index = (tmp_path / "index.html").read_text()
    assert 'http-equiv="refresh" content="0; url=report.html"' in index


def test_the_verdict_comes_first_and_stands_out(tmp_path: Path) -> None:
    failed = make_result(
        "api",
        thresholds=[Threshold(metric="p95", op="<", limit=5.0, measured=8.0, passed=False)],
    )
    write_report(tmp_path, "t", [failed, make_result("b", thresholds=[])], exit_code=1)
    page = (tmp_path / "report.html").read_text()
    body = page.split("<body>", 1)[1]
    first_heading = body.index('<h2 id="capacity">')
    verdict = body.index('class="overall fail"')
    assert verdict < first_heading
    assert '<span class="word">FAIL</span>' in page
    assert "1 of 2 scenarios passed" in page
    # Bigger than any per-scenario badge (2.6em against .85em), and solid, not pale.
    assert re.search(r"\.overall \.word \{ font-size: 2\.6em", page)
    assert re.search(r"\.overall\.fail \{ background: #c62828; \}", page)
    markdown = (tmp_path / "summary.md").read_text().splitlines()
    assert markdown[:3] == [
        "# t",
        "",
        "**FAIL**: an SLA was not met or could not be measured (exit code 1)",
    ]


def test_a_run_that_could_not_start_says_why_everywhere(tmp_path: Path) -> None:
    why = "login POST http://127.0.0.1:9/api/auth/login failed: HTTP 401"
    write_report(tmp_path, "orchestrate suite ci", [], exit_code=3, failure=why)
    page = (tmp_path / "report.html").read_text()
    assert f"<strong>Cause:</strong> {why}" in page
    assert f"No scenario ran: {why}." in page
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["failure"] == why
    assert f"Cause: {why}" in (tmp_path / "summary.md").read_text()
    assert why in (tmp_path / "junit.xml").read_text()


def test_a_failed_scenario_shows_its_cause_in_its_section(tmp_path: Path) -> None:
    detail = "autocannon exited with code 1: connect ECONNREFUSED 127.0.0.1:9"
    failed = make_result(status=Status.TARGET_FAILED, status_detail=detail)
    write_report(tmp_path, "t", [failed], exit_code=3)
    page = (tmp_path / "report.html").read_text()
    assert f"<strong>Could not run as planned:</strong> {detail}" in page
    assert '<span class="verdict fail">TARGET FAILED</span>' in page


def test_missing_data_is_said_not_drawn_as_zeros(tmp_path: Path) -> None:
    why = "autocannon's --json has no per-second samples"
    result = make_result(
        time_series=[], resource_usage=None, histogram=None, generator=None,
        response_time=ResponseTime(), missing={"timeSeries": why, "histogram": "sketch only"},
    )  # fmt: skip
    write_report(tmp_path, "no series", [result], exit_code=0)
    page = (tmp_path / "report.html").read_text()
    assert "not measured: timeSeries: autocannon&#39;s --json has no per-second samples" in page
    assert "Response-time distribution</strong>: not measured: histogram: sketch only" in page


def test_a_summary_only_latency_is_drawn_as_labelled_points(tmp_path: Path) -> None:
    rt = ResponseTime(p50=3.0, p90=6.0, p95=8.0, p99=12.0, source="approximate")
    (_, distribution, _) = figures.scenario_figures(make_result(histogram=None, response_time=rt))
    assert distribution.svg is not None
    assert "no histogram" in distribution.title


def test_html_special_text_is_escaped(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>'
    result = make_result(scenario="a<b>", status_detail=evil, status=Status.TOOL_FAILED)
    write_report(tmp_path, "escape <me>", [result], exit_code=3)
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "<title>FAIL: escape &lt;me&gt;</title>" in page
    assert "a&lt;b&gt;" in page


def test_a_failing_plot_costs_only_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(plots, "per_second_frame", broken)
    write_report(tmp_path, "broken", [make_result()], exit_code=0)
    assert json.loads((tmp_path / "summary.json").read_text())["results"][0]["scenario"] == "api"
    page = (tmp_path / "report.html").read_text()
    assert "plot failed: RuntimeError: no fonts today" in page
    assert len(images(page)) == 2  # the distribution and capacity plots are still there


def test_plotting_blowing_up_whole_still_writes_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise MemoryError("too big")

    monkeypatch.setattr(figures, "scenario_figures", broken)
    monkeypatch.setattr(figures, "suite_figure", broken)
    write_report(tmp_path, "broken", [make_result(), make_result("b")], exit_code=0)
    assert (tmp_path / "summary.json").exists()
    page = (tmp_path / "report.html").read_text()
    assert "plots failed: too big" in page
    assert "suite plot not drawn: MemoryError" in caplog.text


def test_a_failing_page_never_costs_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> str:
        raise ValueError("template gone")

    monkeypatch.setattr(html, "render_html", broken)
    written = write_report(tmp_path, "t", [make_result()], exit_code=0)
    assert [p.name for p in written] == ["summary.json", "summary.md", "junit.xml", "results.csv"]
    assert "report.html not written: ValueError: template gone" in caplog.text


def test_per_second_frame_leaves_gaps_and_rates_a_short_last_bucket_honestly() -> None:
    series = [
        TimeBucket(t=0.0, requests=100, errors=0),
        TimeBucket(t=1.0, requests=100, errors=0),
        TimeBucket(t=3.0, requests=100, errors=0),  # second 2 is missing
        TimeBucket(t=4.0, requests=50, errors=5),
        TimeBucket(t=5.0, requests=3, errors=0),  # the run ended at 5.05 s: not a rate
    ]
    frame = plots.per_second_frame(make_result(time_series=series, duration=5.05))
    assert frame["x"] == pytest.approx([0.5, 1.5, 2.5, 3.5, 4.5, 5.025])
    rps = frame["rps"]
    assert rps[:2] == [100.0, 100.0]
    assert rps[2] != rps[2]  # the gap is NaN, not 0
    assert rps[3:5] == [100.0, 50.0]
    assert frame["eps"][4] == 5.0
    assert rps[5] != rps[5]
    assert all(v != v for v in frame["p95"])


def test_one_time_axis_spans_every_series_of_a_scenario() -> None:
    # Load for 3.9 s, resources sampled for 8 s (the tool's start-up and drain included).
    result = make_result(duration=3.9)
    usage = result.resource_usage
    assert usage is not None
    late = [*usage.series, ResourceSample(t=7.99, rss_bytes=50_000_000, cpu_percent=1.0)]
    result = result.model_copy(update={"resource_usage": usage.model_copy(update={"series": late})})
    assert plots.time_end(result) == pytest.approx(7.99)
    assert len(plots.timeline_panels(result)) == 3  # drawn with sharex on one figure


def test_importing_the_writer_does_not_import_matplotlib_or_pandas() -> None:
    code = (
        "import sys, reports.writer, reports.html, reports.plots, reports.figures, "
        "reports.distribution, reports.sections, reports.run_info; "
        "assert 'matplotlib' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
