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

from typing import Any

from orchestrator.commands.run import measure
from orchestrator.errors import TargetError
from orchestrator.models import LoadTestResult
from orchestrator.options import RunOptions

# Where the API's defaults differ from the CLI's: the caller reads the result, not the
# tool's console, and the report is labelled as a test's.
API_DEFAULTS: dict[str, Any] = {"name": "pytest", "quiet": True}


def load_test(url: str, **options: Any) -> LoadTestResult:
    """Run one load test (the same as ``orchestrate run``) and return its result.

    ``options`` are the fields of :class:`orchestrator.options.RunOptions` (``connections``,
    ``duration``, ``method``, ``headers``, ``body``, ``tool``, ``thresholds``, ...), checked
    before anything starts (ConfigError naming the bad one). ``thresholds`` (e.g.
    ``"p95 < 500ms"``) are judged into ``result.thresholds``; assert on them or on the
    numbers directly. ``show_tool_output=True`` (the same as ``quiet=False``) shows the
    tool's console output.
    """
    values = {**API_DEFAULTS, **options, "url": url}
    if "show_tool_output" in values:
        values["quiet"] = not values.pop("show_tool_output")
    outcome = measure(RunOptions.from_values(values), view="none")
    if not outcome.results:
        raise TargetError(f"nothing was measured; see {outcome.run_dir}")
    return outcome.results[0]
