"""End to end: the real `orchestrate` command in a subprocess, real tools, the reference target.

Each test runs `python -m orchestrator ...` with cwd=tmp_path and checks what a user sees:
the exit code, one clear line on stderr for failures, and the report directory.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningTarget

from orchestrator.models import LoadTestResult

FIXTURES = Path(__file__).parent / "fixtures"
# Rich wraps tables to the terminal width; a wide fake terminal keeps each row on one line.
WIDE = {"COLUMNS": "200"}


def orchestrate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        env={**os.environ, **WIDE, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_dirs(report_dir: Path) -> list[Path]:
    """The run directories written (the `latest` link left out)."""
    if not report_dir.exists():
        return []
    return sorted(p for p in report_dir.iterdir() if p.is_dir() and not p.is_symlink())


def only_result(report_dir: Path) -> tuple[Path, LoadTestResult]:
    """The single run directory of a `run` command and its one validated result."""
    (run_dir,) = run_dirs(report_dir)
    (path,) = run_dir.glob("*/result.json")
    return run_dir, LoadTestResult.model_validate_json(path.read_text(encoding="utf-8"))


def assert_one_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def quick_run(url: str, report_dir: Path, *extra: str, seconds: int = 1) -> list[str]:
    """`orchestrate run` with autocannon, 5 users, quiet."""
    options = f"-q --tool autocannon -c 5 -d {seconds}".split()
    return ["run", *options, "--url", url, "--report-dir", str(report_dir), *extra]


def test_help_works_and_cli_import_stays_light(tmp_path: Path) -> None:
    shown = orchestrate("--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    for command in ("run", "suite", "import", "schema", "init", "tools"):
        assert re.search(rf"\b{command}\b", shown.stdout), command
    probe = (
        "import sys\n"
        "import orchestrator.cli\n"
        "from orchestrator.cli import main\n"
        "code = main(['run', '--help'])\n"
        "heavy = sorted(m for m in ('pandas', 'matplotlib', 'scipy') if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy), 'CODE=%d' % code)\n"
    )
    checked = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, **WIDE},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "--connections" in checked.stdout  # `run --help` really ran
    assert checked.stdout.strip().splitlines()[-1] == "HEAVY= CODE=0"


@pytest.mark.load
def test_run_writes_a_valid_result_and_report(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    reports = tmp_path / "reports"
    args = quick_run(f"{reference_target.url}/health", reports, seconds=2)
    args.remove("-q")  # the tool's live output is part of what the user sees
    done = orchestrate(*args, cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    run_dir, result = only_result(reports)
    assert result.status.value == "completed"
    assert result.tool == "autocannon"
    assert result.concurrency == 5
    assert result.total_requests is not None and result.total_requests > 0
    assert result.throughput is not None and result.throughput > 0
    rt = result.response_time
    assert rt.p50 is not None and rt.p95 is not None and rt.p99 is not None
    assert 0 < rt.p50 <= rt.p95 <= rt.p99
    usage = result.resource_usage
    assert usage is not None, result.missing
    # Found by the URL's port: the very process the fixture started.
    assert usage.pid == reference_target.pid
    assert usage.memory_start is not None and usage.memory_start > 0
    assert usage.memory_end is not None and usage.memory_end > 0
    assert usage.series
    for name in ("summary.md", "summary.json", "results.csv"):
        assert (run_dir / name).stat().st_size > 0, name
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["exitCode"] == 0
    assert summary["results"][0]["totalRequests"] == result.total_requests
    csv_rows = (run_dir / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_rows) == 2 and csv_rows[1].startswith("run,autocannon,completed,5,")
    # The console summary table.
    assert "run: completed" in done.stdout
    assert f"{result.total_requests:,} total, 0 failed" in done.stdout
    assert "throughput" in done.stdout and "p95" in done.stdout


@pytest.mark.load
def test_failing_route_exits_3_and_half_failing_target_exits_0(
    tmp_path: Path,
    reference_target: RunningTarget,
    target_factory: Callable[..., RunningTarget],
    node_tools: Path,
) -> None:
    all_fail = tmp_path / "all-fail"
    done = orchestrate(*quick_run(f"{reference_target.url}/api/error", all_fail), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    _, result = only_result(all_fail)
    assert result.status.value == "target_failed"
    assert result.error_rate == 100.0
    assert result.errors.get("non_2xx", 0) == result.total_requests

    flaky = target_factory("--error-rate", "0.5")
    half = tmp_path / "half"
    done = orchestrate(*quick_run(f"{flaky.url}/api/textbooks/hierarchy", half), cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # failures without thresholds are data
    _, result = only_result(half)
    assert result.status.value == "completed"
    assert result.error_rate == pytest.approx(50, abs=5)


@pytest.mark.load
def test_closed_port_is_a_target_failure_without_traceback(
    tmp_path: Path, closed_port: int, node_tools: Path
) -> None:
    reports = tmp_path / "reports"
    done = orchestrate(*quick_run(f"http://127.0.0.1:{closed_port}/health", reports), cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    _, result = only_result(reports)
    assert result.status.value == "target_failed"
    assert result.errors.get("connection_refused", 0) > 0
    assert "resourceUsage" in result.missing  # nothing there to sample, and it says so


@pytest.mark.load
@pytest.mark.parametrize("tool", ["artillery", "k6"])
def test_websocket_to_a_closed_port_fails_every_connection(
    tool: str, tmp_path: Path, closed_port: int, node_tools: Path
) -> None:
    reports = tmp_path / "reports"
    url = f"ws://127.0.0.1:{closed_port}/ws"
    args = ["run", "--tool", tool, "--url", url, "-c", "5", "-d", "2", "-q"]
    done = orchestrate(*args, "--report-dir", str(reports), cwd=tmp_path)
    assert done.returncode == 3, done.stderr  # the tool-or-target failure code
    assert "Traceback" not in done.stderr
    _, result = only_result(reports)  # the result file is written all the same
    assert result.status.value == "target_failed"
    ws = result.websocket
    assert ws is not None and ws.connections_attempted
    assert ws.connections_failed == ws.connections_attempted
    assert result.error_rate == 100


def test_missing_tool_is_one_line_naming_the_install_command(
    tmp_path: Path, reference_target: RunningTarget
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    reports = tmp_path / "reports"
    done = orchestrate(
        *quick_run(f"{reference_target.url}/health", reports),
        cwd=tmp_path,
        env={"ORCHESTRATE_TOOLS_DIR": str(empty)},
    )
    assert done.returncode == 3
    line = assert_one_line(done.stderr)
    assert "orchestrate tools install" in line
    assert run_dirs(reports) == []  # nothing started


@pytest.mark.load
def test_ctrl_c_exits_130_and_keeps_what_was_measured(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    reports = tmp_path / "reports"
    args = quick_run(f"{reference_target.url}/health", reports, seconds=30)
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=tmp_path,
            env={**os.environ, **WIDE},
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            time.sleep(3)
            assert proc.poll() is None, "the 30 s run ended early"
            sent = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
            code = proc.wait(timeout=15)
            stopped_in = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    stderr = (tmp_path / "err.txt").read_text(encoding="utf-8")
    assert code == 130, stderr
    assert stopped_in < 15
    assert "Traceback" not in stderr
    run_dir, result = only_result(reports)
    assert result.status.value == "interrupted"
    assert result.total_requests is not None and result.total_requests > 0
    assert result.duration < 20
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["exitCode"] == 130


@pytest.mark.load
def test_thresholds_decide_the_exit_code_and_show_the_measured_value(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    url = f"{reference_target.url}/health"
    strict = tmp_path / "strict"
    done = orchestrate(*quick_run(url, strict, "--threshold", "p95 < 0.001ms"), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    run_dir, result = only_result(strict)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["exitCode"] == 1
    (check,) = summary["results"][0]["thresholds"]
    assert (check["metric"], check["passed"]) == ("p95", False)
    p95 = result.response_time.p95
    assert p95 is not None
    assert check["measured"] == pytest.approx(p95)
    markdown = (run_dir / "summary.md").read_text(encoding="utf-8")
    # The limit, then the measured value beside it (units may be written out).
    shown = re.search(r"FAIL\s+p95 < 0\.001\b[^(\n]*\(measured ([0-9.,]+)", markdown)
    assert shown is not None, markdown
    assert float(shown.group(1).replace(",", "")) == pytest.approx(p95, rel=0.01)

    loose = tmp_path / "loose"
    done = orchestrate(*quick_run(url, loose, "--threshold", "p95 < 5s"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir, _ = only_result(loose)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert [c["passed"] for c in summary["results"][0]["thresholds"]] == [True]


@pytest.mark.load
def test_result_json_carries_the_threshold_verdicts(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    reports = tmp_path / "reports"
    url = f"{reference_target.url}/health"
    done = orchestrate(*quick_run(url, reports, "--threshold", "p95 < 5s"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _, result = only_result(reports)
    assert [(c.metric, c.passed) for c in result.thresholds] == [("p95", True)]


@pytest.mark.parametrize(
    ("yaml_text", "key_path"),
    [
        ("scenarios:\n  normal:\n    usres: 5\n", "scenarios.normal.usres"),
        ("scenarios:\n  normal:\n    users: lots\n    hold: 2\n", "scenarios.normal.users"),
        ("scenarios:\n  normal:\n    tool: jmeter\n", "scenarios.normal.tool"),
    ],
    ids=["typo", "wrong-type", "unknown-tool"],
)
def test_config_errors_exit_2_naming_the_key_path(
    tmp_path: Path, yaml_text: str, key_path: str
) -> None:
    config = tmp_path / "orchestrate.yaml"
    config.write_text(yaml_text, encoding="utf-8")
    reports = tmp_path / "reports"
    done = orchestrate(
        "suite", "full", "--config", str(config), "--report-dir", str(reports), cwd=tmp_path
    )
    assert done.returncode == 2
    line = assert_one_line(done.stderr)
    assert key_path in line
    assert not reports.exists()  # before anything started


def test_bad_header_exits_2_before_anything_starts(
    tmp_path: Path, reference_target: RunningTarget
) -> None:
    reports = tmp_path / "reports"
    args = quick_run(f"{reference_target.url}/health", reports, "-H", "bad header")
    done = orchestrate(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert "bad header" in assert_one_line(done.stderr)
    assert not reports.exists()


def suite_config(base_url: str) -> dict[str, Any]:
    """Three tiny scenarios, one per tool, against the running reference target."""
    return {
        "target": {"base_url": base_url},
        "scenarios": {
            "two-endpoints": {
                "tool": "autocannon",
                "endpoints": ["health", "textbooks-hierarchy"],
                "users": 5,
                "hold": 2,
                "thresholds": ["errorRate < 1%", "p95 < 2000ms"],
            },
            "k6-health": {
                "tool": "k6",
                "endpoints": ["health"],
                "users": 3,
                "hold": 2,
                "thresholds": ["errorRate < 1%"],
            },
            "chat": {
                "tool": "artillery",
                "protocol": "ws",
                "users": 5,
                "hold": 3,
                "ws": {"loops": 3, "messages": [{"send": {"type": "ping"}, "think": 0.5}]},
                "thresholds": ["errorRate < 1%", "wsMessageRate > 1/s"],
            },
        },
        "suites": {
            "tiny": {
                "scenarios": ["two-endpoints", "k6-health", "chat"],
                "thresholds": ["aggregateThroughput > 1/s"],
            }
        },
    }


@pytest.mark.load
def test_suite_of_three_tools_end_to_end(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    config = tmp_path / "orchestrate.yaml"
    # JSON is YAML: no hand-formatted indentation to get wrong.
    config.write_text(json.dumps(suite_config(reference_target.url)), encoding="utf-8")
    # A relative report dir, as in the default config: each tool runs in its own folder.
    args = ["suite", "tiny", "--config", "orchestrate.yaml", "-q", "--report-dir", "reports"]
    done = orchestrate(*args, cwd=tmp_path, timeout=90)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "suite tiny" in done.stdout
    names = ("two-endpoints", "k6-health", "chat")
    verdicts = done.stdout[done.stdout.index("suite tiny") :]  # after the capacity table
    for name in names:
        row = next((line for line in verdicts.splitlines() if name in line), "")
        assert "PASS" in row, done.stdout
    (run_dir,) = run_dirs(tmp_path / "reports")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["exitCode"] == 0
    assert [(v["scenario"], v["verdict"]) for v in summary["verdicts"]] == [
        (name, "PASS") for name in names
    ]
    assert [c["passed"] for c in summary["suiteThresholds"]] == [True]
    tools = {}
    for name in names:
        result = LoadTestResult.model_validate_json(
            (run_dir / name / "result.json").read_text(encoding="utf-8")
        )
        assert result.status.value == "completed", result.status_detail
        assert result.total_requests is not None and result.total_requests > 0
        assert result.resource_usage is not None  # the target was found by its port
        tools[name] = (result.tool, result.protocol)
    assert tools == {
        "two-endpoints": ("autocannon", "http"),
        "k6-health": ("k6", "http"),
        "chat": ("artillery", "ws"),
    }


def test_schema_and_import_of_saved_outputs(tmp_path: Path) -> None:
    shown = orchestrate("schema", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    schema = json.loads(shown.stdout)
    assert schema["type"] == "object"
    assert {"responseTime", "totalRequests"} <= set(schema["properties"])
    assert "totalRequests" in schema["required"]

    reports = tmp_path / "reports"
    for tool, path in (
        ("autocannon", FIXTURES / "autocannon" / "cli-health.json"),
        ("k6", FIXTURES / "k6" / "http_ok.json.gz"),
    ):
        done = orchestrate(
            "import", "--tool", tool, str(path), "--report-dir", str(reports), cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        (run_dir,) = [d for d in run_dirs(reports) if d.name.endswith(f"import-{tool}")]
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        (imported,) = summary["results"]
        LoadTestResult.model_validate(imported)
        assert imported["tool"] == tool
        assert imported["totalRequests"] > 0

    cut_json = tmp_path / "cut.json"
    text = (FIXTURES / "autocannon" / "cli-health.json").read_text(encoding="utf-8")
    cut_json.write_text(text[: len(text) // 2], encoding="utf-8")
    cut_gz = tmp_path / "cut.json.gz"
    packed = (FIXTURES / "k6" / "http_ok.json.gz").read_bytes()
    cut_gz.write_bytes(packed[: len(packed) // 2])  # the gzip stream ends early
    for tool, path in (("autocannon", cut_json), ("k6", cut_gz)):
        done = orchestrate(
            "import", "--tool", tool, str(path), "--report-dir", str(reports), cwd=tmp_path
        )
        assert done.returncode != 0, f"{tool}: a truncated file was accepted"
        assert path.name in assert_one_line(done.stderr)


def test_tools_doctor_lists_every_tool_and_fails_for_a_missing_one(tmp_path: Path) -> None:
    done = orchestrate("tools", "doctor", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith("│")}
    for tool in ("node", "npm", "autocannon", "artillery", "k6", "pgbench"):
        assert tool in rows, done.stdout
        # pgbench comes from the OS and is optional; the others orchestrate provides.
        assert tool == "pgbench" or " ok " in rows[tool], rows[tool]

    empty = tmp_path / "no-tools"
    empty.mkdir()
    args = ["tools", "doctor", "--tool", "autocannon"]
    done = orchestrate(*args, cwd=tmp_path, env={"ORCHESTRATE_TOOLS_DIR": str(empty)})
    assert done.returncode == 3
    assert "MISSING" in done.stdout
    assert "Traceback" not in done.stderr


def test_init_writes_a_loadable_config_and_does_not_overwrite(tmp_path: Path) -> None:
    from orchestrator.plan import build_suite, load_config

    done = orchestrate("init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "orchestrate.yaml"
    config = load_config(written, env={})
    suite = build_suite("ci", config)
    assert [p.name for p in suite.scenarios] == ["api-smoke", "ws-smoke"]

    written.write_text("# mine\n", encoding="utf-8")
    refused = orchestrate("init", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--force" in assert_one_line(refused.stderr)
    assert written.read_text(encoding="utf-8") == "# mine\n"

    forced = orchestrate("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert written.read_text(encoding="utf-8") != "# mine\n"


@pytest.mark.load
def test_no_secret_reaches_any_file_written(
    tmp_path: Path, reference_target: RunningTarget, node_tools: Path
) -> None:
    """A ${VAR} password and the login token appear in no report, log or saved tool config."""
    password = "TestPassword123!"  # the reference target's seeded user
    config = suite_config(reference_target.url)
    credentials = {"email": "test@example.com", "password": "${LOAD_PW}"}
    config["login"] = {"method": "POST", "path": "/api/auth/login", "body": credentials}
    config["endpoints"] = {
        "health": {"path": "/health"},
        "login": {"method": "POST", "path": "/api/auth/login", "body": credentials},
    }
    for name in ("two-endpoints", "k6-health"):
        config["scenarios"][name]["endpoints"] = ["health", "login"]
        config["scenarios"][name]["hold"] = 1
    (tmp_path / "orchestrate.yaml").write_text(json.dumps(config), encoding="utf-8")
    done = orchestrate(
        "suite",
        "tiny",
        "--config",
        "orchestrate.yaml",
        "-q",
        "--report-dir",
        "reports",
        cwd=tmp_path,
        env={"LOAD_PW": password},
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    written = [p for p in (tmp_path / "reports").rglob("*") if p.is_file()]
    assert any(p.name == "autocannon-plan.json" for p in written)
    assert any(p.name == "artillery.yml" for p in written)
    for path in written:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.decode("utf-8", errors="replace")
        assert password not in text, path
        assert "Bearer eyJ" not in text, path  # the reference target's tokens are JWTs
    assert password not in done.stdout + done.stderr
