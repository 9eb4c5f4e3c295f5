"""`orchestrate analyze`: a saved run gives back its verdicts and capacity report, byte for
byte; `orchestrate schema capacity` describes that file; `compare` on the CLI.

A real short stepped suite through the real CLI against the reference target with an
admission limit (the capacity report then has holds, a ceiling and a bottleneck to report).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SUITE_CONFIG = """\
target: {{base_url: "{url}"}}
login: null
endpoints:
  hierarchy: {{method: GET, path: /api/textbooks/hierarchy}}
scenarios:
  steps:
    description: three holds of 2 s
    shape:
      start: 2
      stages:
        - {{duration: 2, target: 2}}
        - {{duration: 0.5, target: 4}}
        - {{duration: 2, target: 4}}
        - {{duration: 0.5, target: 8}}
        - {{duration: 2, target: 8}}
    thresholds: ["errorRate < 5%"]
suites:
  mini:
    scenarios: [steps]
    thresholds: []
"""


def orchestrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, node_tools: Path) -> Path:
    from conftest import start_reference_target

    folder = tmp_path_factory.mktemp("analyze")
    with start_reference_target("--max-in-flight", "6", "--latency-ms", "20") as target:
        (folder / "orchestrate.yaml").write_text(SUITE_CONFIG.format(url=target.url))
        done = orchestrate("suite", "mini", "--report-dir", "out", cwd=folder)
    assert done.returncode in (0, 1), done.stderr
    assert "max concurrent users" in done.stdout  # the capacity table is printed
    return (folder / "out" / "latest").resolve()


@pytest.mark.load
def test_analyze_reproduces_the_capacity_report_byte_for_byte(run_dir: Path) -> None:
    saved = (run_dir / "capacity-report.json").read_bytes()
    (run_dir / "capacity-report.json").unlink()
    again = orchestrate("analyze", str(run_dir), cwd=run_dir)
    assert again.returncode in (0, 1), again.stderr
    assert (run_dir / "capacity-report.json").read_bytes() == saved
    summary = json.loads((run_dir / "summary.json").read_text())
    assert again.returncode == summary["exitCode"]  # the same verdict, re-derived


@pytest.mark.load
def test_the_capacity_report_validates_against_its_schema(run_dir: Path) -> None:
    printed = orchestrate("schema", "capacity", cwd=run_dir)
    assert printed.returncode == 0, printed.stderr
    schema: dict[str, Any] = json.loads(printed.stdout)
    report = json.loads((run_dir / "capacity-report.json").read_text())
    jsonschema.validate(report, schema)
    limits = report["capacityLimits"]
    assert set(limits) == {
        "maxConcurrentUsers",
        "maxWebSocketConnections",
        "maxDatabaseConnections",
        "maxThroughput",
    }
    # Measured where a scenario measured it, null with a reason where none did.
    assert limits["maxThroughput"]["value"] is not None
    assert limits["maxThroughput"]["source"]["scenario"] == "steps"
    assert limits["maxWebSocketConnections"]["value"] is None
    assert limits["maxWebSocketConnections"]["reason"]
    broken = dict(report, capacityLimits={**limits, "maxThroughput": {"value": "lots"}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_analyze_of_a_folder_that_is_no_run_is_one_line(tmp_path: Path) -> None:
    done = orchestrate("analyze", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "plan.json" in done.stderr


@pytest.mark.load
def test_compare_on_the_cli_of_a_run_with_itself_passes(run_dir: Path) -> None:
    done = orchestrate("compare", str(run_dir), str(run_dir), cwd=run_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No regression" in done.stdout
