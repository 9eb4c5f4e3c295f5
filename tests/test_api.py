"""The documented way to run a load test from pytest (orchestrator.api.load_test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.api import load_test
from orchestrator.models import Status


@pytest.mark.load
def test_load_test_from_pytest(reference_target: Any, node_tools: Path, tmp_path: Path) -> None:
    result = load_test(
        f"{reference_target.url}/api/auth/login",
        connections=5,
        duration=2,
        method="POST",
        headers={"Content-Type": "application/json"},
        body='{"email": "test@example.com", "password": "TestPassword123!"}',
        thresholds=["errorRate < 5%", "p95 < 0.001ms"],
        report_dir=tmp_path,
    )
    assert result.status is Status.COMPLETED
    assert result.error_rate == 0
    assert result.response_time.p95 is not None and result.response_time.p95 > 0.001
    # The first threshold holds, the impossible second one is reported broken.
    assert [check.passed for check in result.thresholds] == [True, False]
    assert result.resource_usage is not None and result.resource_usage.pid == reference_target.pid
    assert (tmp_path / "latest" / "summary.json").is_file()
