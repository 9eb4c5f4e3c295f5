"""The conclusions of a finished run, drawn from what it saved: every verdict and the capacity
report. The run's own pipeline and ``orchestrate analyze RUN_DIR`` both call :func:`conclude`,
so a saved run directory reproduces its ``capacity-report.json`` byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import sla, suite_gates
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.models import LoadTestResult, Threshold
from orchestrator.plan import Suite
from orchestrator.redact import redact_text
from orchestrator.safe_files import write_atomic

if TYPE_CHECKING:
    from orchestrator.conclusions.models import CapacityReport

PLAN_FILE = "plan.json"
CAPACITY_FILE = "capacity-report.json"
RESULT_FILE = "result.json"


@dataclass
class Conclusions:
    results: list[LoadTestResult]
    skipped: dict[str, str]
    suite_checks: list[Threshold]
    code: ExitCode
    capacity: CapacityReport | None


def save_plan(suite: Suite, run_dir: Path, secrets: tuple[str, ...] = ()) -> Path:
    """What was planned (scenarios, shapes, SLAs): ``analyze`` needs the shapes to tell a
    hold from a climb. Secrets are masked, as in every file orchestrate writes."""
    from orchestrator.engines.base import scenario_secrets

    for planned in suite.scenarios:
        secrets = (*secrets, *scenario_secrets(planned.scenario))
    text = suite.model_dump_json(indent=2)
    return write_atomic(run_dir / PLAN_FILE, redact_text(text, secrets, keys=False))


def conclude(
    suite: Suite,
    results: list[LoadTestResult],
    skipped: dict[str, str],
    *,
    interrupted: bool = False,
    capacity: bool = True,
) -> Conclusions:
    """Suite-wide verdicts, the exit code and (unless ``capacity`` is False: the run's
    pipeline draws it after showing the verdict) the capacity report of ``results``."""
    checks = suite_gates.evaluate_suite(results, suite.suite_thresholds, suite.left_out)
    code = ExitCode.INTERRUPTED if interrupted else sla.suite_exit_code(results, skipped, checks)
    report = capacity_report(suite, results) if capacity else None
    return Conclusions(results, skipped, checks, code, report)


def capacity_report(suite: Suite, results: list[LoadTestResult]) -> CapacityReport | None:
    """The capacity report of ``results`` (None without results)."""
    if not results:
        return None
    # Imported only now, when the load is over; scipy and numpy only for what needs them
    # (a trend long enough to judge, a curve with enough points to fit).
    from orchestrator.conclusions.capacity import build_capacity_report

    scenarios = {p.scenario.name: p.scenario for p in suite.scenarios}
    return build_capacity_report(results, scenarios, suite=suite.name)


def write_capacity(capacity: CapacityReport, run_dir: Path) -> Path:
    return write_atomic(run_dir / CAPACITY_FILE, capacity.to_json())


def load_run(run_dir: Path) -> tuple[Suite, list[LoadTestResult], dict[str, str]]:
    """The plan, the results (each scenario's result.json) and the skipped scenarios."""
    plan = run_dir / PLAN_FILE
    if not plan.is_file():
        raise ConfigError(f"{run_dir} has no {PLAN_FILE}: not a run directory of this version")
    try:
        suite = Suite.model_validate_json(plan.read_text(encoding="utf-8"))
        results = [
            LoadTestResult.model_validate_json(path.read_text(encoding="utf-8"))
            for p in suite.scenarios
            if (path := run_dir / p.scenario.name / RESULT_FILE).is_file()
        ]
        summary = run_dir / "summary.json"
        skipped: dict[str, str] = {}
        if summary.is_file():
            skipped = dict(json.loads(summary.read_text(encoding="utf-8")).get("skipped") or {})
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the run in {run_dir}: {exc}") from None
    return suite, results, skipped


def reanalyse(run_dir: Path) -> Conclusions:
    """Every verdict and the capacity report again, from the saved results alone."""
    suite, results, skipped = load_run(run_dir)
    specs = {p.scenario.name: p for p in suite.scenarios}
    rejudged = []
    for result in results:
        planned = specs[result.scenario]
        checks = sla.evaluate(result, planned.thresholds, planned.scenario)
        rejudged.append(result.model_copy(update={"thresholds": checks}))
    interrupted = any(r.status.value == "interrupted" for r in rejudged)
    return conclude(suite, rejudged, skipped, interrupted=interrupted)
