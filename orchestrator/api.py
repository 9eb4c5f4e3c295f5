"""Use orchestrate from Python, e.g. from a pytest test::

    from orchestrator.api import load_test

    def test_login_holds_its_sla():
        result = load_test("http://127.0.0.1:8000/api/auth/login", connections=10, duration=5,
                           method="POST", body='{"email": "a@b.c", "password": "x"}',
                           headers={"Content-Type": "application/json"})
        assert result.error_rate is not None and result.error_rate < 5
        assert result.response_time.p95 is not None and result.response_time.p95 < 1000

Each call runs the real tool, samples the target found by the URL's port, writes a report
directory (``load-reports/`` by default) and returns the :class:`LoadTestResult`.
A tool that is missing or a target that cannot be reached raises a ``FatalError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.errors import TargetError
from orchestrator.models import LoadTestResult
from orchestrator.pipeline import SingleRun, measure_single


def load_test(
    url: str,
    *,
    tool: str = "autocannon",
    connections: int = 10,
    duration: float = 10.0,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    messages: Sequence[str] = (),
    ramp: float = 0.0,
    rate: float | None = None,
    open_model: bool = False,
    timeout: float = 10.0,
    thresholds: Sequence[str] = (),
    pid: int | None = None,
    sample_interval: float = 1.0,
    name: str = "pytest",
    report_dir: Path = Path("load-reports"),
    show_tool_output: bool = False,
) -> LoadTestResult:
    """Run one load test (the same as ``orchestrate run``) and return its result.

    ``thresholds`` (e.g. ``"p95 < 500ms"``) are judged into ``result.thresholds``;
    assert on them or on the numbers directly.
    """
    request = SingleRun(
        url=url,
        tool=tool,
        connections=connections,
        duration=duration,
        method=method,
        headers=dict(headers or {}),
        body=body,
        messages=list(messages),
        ramp=ramp,
        rate=rate,
        open_model=open_model,
        timeout=timeout,
        thresholds=list(thresholds),
        pid=pid,
        sample_interval=sample_interval,
        name=name,
        report_dir=report_dir,
        quiet=not show_tool_output,
    )
    result, run_dir = measure_single(request)
    if result is None:
        raise TargetError(f"nothing was measured; see {run_dir}")
    return result
