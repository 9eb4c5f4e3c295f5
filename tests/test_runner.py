"""The runner end to end: a target that dies mid-run, a tool whose output is unreadable."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import http_scenario

from orchestrator.execute import RESULT_FILE, RunSettings, run_scenario
from orchestrator.models import LoadTestResult, Status
from orchestrator.scenarios import LoadShape, Scenario
from orchestrator.targets import LocatedTarget


def health_scenario(url: str, seconds: float) -> Scenario:
    return http_scenario(url, shape=LoadShape.constant(4, seconds), name="dies")


@pytest.mark.load
def test_a_target_that_exits_mid_run_is_recorded(
    target_factory: Any, node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory()
    located = LocatedTarget("reference target", pid=target.pid, popen=target.process)
    killer = threading.Timer(1.5, lambda: os.killpg(target.pid, signal.SIGKILL))
    killer.start()
    try:
        result = run_scenario(
            health_scenario(target.url, 4.0),
            "autocannon",
            tmp_path,
            located,
            RunSettings(sample_interval=0.2, sink=None),
        )
    finally:
        killer.cancel()
    assert result.status is Status.TARGET_FAILED
    assert f"the target (pid {target.pid}) was killed by SIGKILL" in (result.status_detail or "")
    usage = result.resource_usage
    assert usage is not None and usage.target_exit is not None
    assert 1.0 < usage.target_exit.t < 3.0
    assert usage.target_exit.exit_code == -signal.SIGKILL
    # What was measured before and after the target died is kept.
    assert result.successful_requests and result.successful_requests > 0
    assert result.errors.get("connection_refused", 0) > 0
    saved = LoadTestResult.model_validate_json((tmp_path / RESULT_FILE).read_text())
    assert saved.status is Status.TARGET_FAILED


@pytest.mark.load
def test_unreadable_output_is_a_tool_failed_result_naming_the_file(
    reference_target: Any, node_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.engines import autocannon

    def scribble(scenario: Scenario, invocation: Any, run: Any) -> LoadTestResult:
        invocation.output_path.write_text('{"steps": [', encoding="utf-8")
        return real_parse(scenario, invocation, run)

    real_parse = autocannon.parse
    monkeypatch.setattr(autocannon, "parse", scribble)
    result = run_scenario(
        health_scenario(reference_target.url, 1.0),
        "autocannon",
        tmp_path,
        None,
        RunSettings(sink=None),
        unsampled_reason="not asked to sample",
    )
    assert result.status is Status.TOOL_FAILED
    assert "autocannon-output.json" in (result.status_detail or "")
    assert result.total_requests is None and result.error_rate is None
    assert "totalRequests" in result.missing
    assert result.missing["resourceUsage"] == "not asked to sample"
    assert (tmp_path / RESULT_FILE).is_file()
