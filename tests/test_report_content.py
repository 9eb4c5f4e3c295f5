"""What every report says: status codes, error kinds, units by transport, relative paths,
the capacity report and regressions, the pool, run metadata; secrets never.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

from report_results import histogram_of, images, make_result, svg_of, text_of

from orchestrator.compare import Change, Comparison
from orchestrator.models import EndpointStats, PoolFigure, PoolMetrics, PoolSample, ResponseTime
from reports import figures, html, plots
from reports.run_info import collect_run_info, mask_argv
from reports.writer import write_report


def test_status_codes_error_kinds_sla_share_and_endpoints(tmp_path: Path) -> None:
    endpoint = EndpointStats(
        name="GET /health",
        total_requests=6000,
        successful_requests=5985,
        failed_requests=15,
        error_rate=0.25,
        throughput=1000.0,
        response_time=ResponseTime(min=0.5, p50=3.0, p95=8.0, p99=12.0, max=40.0),
        histogram=histogram_of([3.0] * 50 + [8.0] * 5),
        status_codes={"200": 5985, "503": 15},
    )
    write_report(tmp_path, "t", [make_result(endpoints=[endpoint])], exit_code=0)
    page = (tmp_path / "report.html").read_text()
    cells = text_of(page)
    assert "503 server error 15 0.25%" in cells
    assert "200 success 5,985 99.75%" in cells
    assert "non_2xx 15 0.25%" in cells  # share of all requests
    assert "p95 < 20 ms 20 ms 8 ms 40% of limit PASS" in cells
    assert "GET /health 6,000 15 0.25 1,000.0 500 µs" in cells
    assert "200: 5,985, 503: 15" in cells


def test_websocket_and_postgres_are_counted_in_their_own_units(tmp_path: Path) -> None:
    ws = make_result("chat", protocol="ws", status_codes={}, errors={})
    db = make_result("db", protocol="postgres", status_codes={}, errors={"client_aborted": 2})
    write_report(tmp_path, "t", [ws, db], exit_code=0)
    page = (tmp_path / "report.html").read_text()
    assert '<th class="num">msg/s</th>' in page
    assert '<th class="num">tx/s</th>' in page
    assert "WebSocket messages have no HTTP status codes" in page
    assert "PostgreSQL has no status codes" in page
    markdown = (tmp_path / "summary.md").read_text()
    assert "| messages | 6,000 total, 15 failed |" in markdown
    assert "| throughput | 1,000.0 msg/s |" in markdown
    assert "| transactions | 6,000 total, 15 failed |" in markdown
    assert "req/s" not in markdown.split("## db")[1]


def test_raw_output_is_named_relative_to_the_report(tmp_path: Path) -> None:
    folder = tmp_path / "api"
    folder.mkdir()
    (folder / "autocannon-output.json").write_text("{}")
    (folder / "tool.log").write_text("")
    result = make_result(raw_output=str(folder / "autocannon-output.json"))
    write_report(tmp_path, "t", [result], exit_code=0)
    page = (tmp_path / "report.html").read_text()
    assert '<a href="api/autocannon-output.json">autocannon-output.json</a>' in page
    assert '<a href="api/tool.log">tool.log</a>' in page
    assert '<a href="summary.json">summary.json</a>' in page
    assert "| raw output | api/autocannon-output.json |" in (tmp_path / "summary.md").read_text()


def test_capacity_and_regressions_are_rendered_when_given(tmp_path: Path) -> None:
    capacity = {
        "capacityLimits": {
            "maxConcurrentUsers": {
                "value": 200,
                "unit": "users",
                "bound": "measured",
                "source": {"scenario": "stress", "concurrency": 250, "steps": [4]},
                "basis": "last level within the SLA",
            },
            "maxThroughput": {"value": None, "unit": "req/s", "reason": "no stepped scenario"},
        },
        "bottlenecks": [
            {
                "component": "target CPU",
                "limit": 200,
                "unit": "users",
                "scenario": "stress",
                "evidence": ["CPU 98% from 200 users"],
                "recommendation": "add a worker",
            }
        ],
        "recommendations": ["Add a second worker process."],
        "memoryLeak": False,
    }
    change = Change(
        scenario="api",
        endpoint="GET /hierarchy",
        metric="p95",
        unit="ms",
        base=10.0,
        new=30.0,
        change_percent=200.0,
        tolerance_percent=20.0,
        noise="per-second values, one-sided Mann-Whitney p=1e-05",
        verdict="regression",
    )
    comparison = Comparison(base="/ci/runs/20260101-main", new=str(tmp_path), changes=[change])
    write_report(
        tmp_path, "t", [make_result()], exit_code=1, capacity=capacity, comparison=comparison
    )
    page = (tmp_path / "report.html").read_text()
    cells = text_of(page)
    assert (
        "max concurrent users 200 users measured: a higher level broke the SLA stress at 250"
        in (cells)
    )
    assert "max throughput n/a" in cells and "no stepped scenario" in cells
    assert "target CPU 200 users stress CPU 98% from 200 users add a worker" in cells
    assert "Memory leak: no leak found" in cells
    assert "1 regression against the baseline 20260101-main" in cells
    assert "api GET /hierarchy p95 10 ms 30 ms +200.0% 20% regression" in cells
    assert "/ci/runs" not in page  # the baseline's folder name only
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["capacity"]["memoryLeak"] is False
    assert summary["comparison"]["changes"][0]["verdict"] == "regression"
    markdown = (tmp_path / "summary.md").read_text()
    assert "- max concurrent users: **200 users**" in markdown
    assert "- REGRESSION api GET /hierarchy: p95 10.00 ms -> 30.00 ms (+200%)" in markdown


def test_pool_metrics_get_a_panel_and_a_table(tmp_path: Path) -> None:
    pool = PoolMetrics(
        source="pgbouncer",
        server="app@127.0.0.1:6432/app",
        interval=1.0,
        pool_size=5,
        series=[
            PoolSample(t=float(t), utilization_percent=20.0 * t, waiting_clients=max(0, t - 3))
            for t in range(7)
        ],
        summary={"utilizationPercent": PoolFigure(peak=120.0, mean=60.0)},
    )
    result = make_result("db-pool", protocol="postgres", pool=pool)
    assert plots.timeline_panels(result)[-1].__name__ == "_pool_panel"
    (timeline, *_) = figures.scenario_figures(result)
    assert timeline.svg is not None and timeline.reason is None
    write_report(tmp_path, "t", [result], exit_code=0)
    page = (tmp_path / "report.html").read_text()
    assert "<h3>Connection pool</h3>" in page
    assert "utilizationPercent</td><td>peak 120.0, mean 60.0" in page


def test_run_metadata_in_every_report(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    config = repo / "orchestrate.yaml"
    config.write_text("target: {base_url: 'http://127.0.0.1:8000'}\n")
    subprocess.run([*git, "add", "orchestrate.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    argv = ["orchestrate", "run", "-H", "Authorization: Bearer abc.def", "--header=Cookie: s=1"]
    run = collect_run_info([make_result()], config_file=config, argv=argv, cwd=repo)
    out = tmp_path / "out"
    write_report(out, "t", [make_result()], exit_code=0, run_info=run)

    summary = json.loads((out / "summary.json").read_text())["run"]
    from importlib.metadata import version

    assert summary["orchestrateVersion"] == version("orchestrate")
    assert summary["toolVersions"] == {"autocannon": "9.0.0"}
    assert summary["cpuCount"] >= 1 and summary["host"]
    assert summary["configSha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert summary["gitCommit"] == head.stdout.strip() and summary["gitDirty"] is False
    assert "abc.def" not in summary["commandLine"] and "s=1" not in summary["commandLine"]
    assert summary["commandLine"].startswith("orchestrate run -H 'Authorization: ")
    for name in ("report.html", "summary.md", "junit.xml"):
        text = (out / name).read_text()
        assert head.stdout.strip()[:12] in text, name
        assert summary["configSha256"] in text, name


def test_run_metadata_without_git_or_config_says_why(tmp_path: Path) -> None:
    run = collect_run_info([], cwd=tmp_path, argv=["orchestrate", "run"])
    assert run.git_commit is None and "gitCommit" in run.missing
    assert run.config_sha256 is None and "configSha256" in run.missing
    assert (
        mask_argv(["x", "--url", "http://u:pw123@127.0.0.1/"]) == "x --url http://u:***@127.0.0.1/"
    )


def test_secrets_are_masked_in_the_page_and_before_drawing(tmp_path: Path) -> None:
    secret = "s3cr3t-t0ken-value"
    result = make_result(
        scenario=f"login-{secret}",
        target=f"http://user:{secret}@127.0.0.1:8000/",
        status_detail=f"Authorization: Bearer {secret}",
    )
    write_report(tmp_path, f"run {secret}", [result, make_result()], exit_code=0,
                 secrets=(secret,))  # fmt: skip
    page = (tmp_path / "report.html").read_text()
    assert secret not in page and "login-***" in page
    shown = html.redacted(result, (secret,))
    assert secret not in shown.model_dump_json()
    assert shown.histogram == result.histogram  # base64 is left whole: it still decodes
    for src in images(page):
        svg_of(src)  # every picture survived the redaction of the page around it


def test_the_redaction_of_a_long_base64_run_is_exact() -> None:
    from orchestrator.redact import redact_text

    blob = base64.b64encode(bytes(range(256)) * 400).decode()
    text = f"{blob} postgresql://app:pw@127.0.0.1/app {blob}"
    assert redact_text(text, keys=False) == f"{blob} postgresql://app:***@127.0.0.1/app {blob}"
