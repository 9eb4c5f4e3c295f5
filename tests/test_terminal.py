"""What a person or a script sees: --version, the PASS/FAIL headline of `run`, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest


def orchestrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    done = orchestrate("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"orchestrate {version('orchestrate')}"


@pytest.mark.load
def test_run_ends_with_a_fail_headline_naming_the_broken_sla(
    reference_target: Any, node_tools: Path, tmp_path: Path
) -> None:
    done = orchestrate(
        "run", "--url", f"{reference_target.url}/health", "-c", "2", "-d", "1", "-q",
        "--threshold", "errorRate < 5%", "--threshold", "p95 < 1us", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    last = [line for line in done.stdout.splitlines() if line.strip()][-1]
    assert last.startswith("FAIL: run: FAIL p95 < 0.001 ms (measured ")


@pytest.mark.load
def test_json_prints_the_summary_alone_on_stdout(
    reference_target: Any, node_tools: Path, tmp_path: Path
) -> None:
    done = orchestrate(
        "run", "--url", f"{reference_target.url}/health", "-c", "2", "-d", "1", "-q", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)  # nothing else on stdout
    saved = json.loads((tmp_path / "load-reports" / "latest" / "summary.json").read_text())
    assert printed == saved
    assert "PASS: run" in done.stderr  # the headline went to stderr with the tables
