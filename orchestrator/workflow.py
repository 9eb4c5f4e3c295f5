"""The one run pipeline behind ``run``, ``suite`` and the Python API (``import`` shares its
last steps). A single run is a suite of one.

    plan (done by the command: a Job) -> resolve_tools -> new_run_dir -> open_target
    -> log_in_once -> run_scenarios -> judge -> finish (in ``finally:``: write the report,
    then show it) -> Outcome.code, the exit code

Interruption is handled here once: while a job runs, SIGINT, SIGTERM and SIGHUP all raise a
``KeyboardInterrupt`` (:mod:`orchestrator.interrupts`); the tool is stopped by
:mod:`orchestrator.process`, a target we started is stopped when ``open_target`` exits,
and the report is written whatever happened, shielded from a second signal.

Faults of the disk are said once: a report dir that cannot be made is a ConfigError before
anything starts (exit 2); a result or report file the disk refuses after the load is named
in one line at the end, with the numbers still on the console (exit 3).
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from orchestrator import interrupts
from orchestrator.conclude import (
    CAPACITY_FILE,
    PLAN_FILE,
    capacity_report,
    conclude,
    save_plan,
    write_capacity,
)
from orchestrator.engines import known_tools, require_tool
from orchestrator.errors import ConfigError, ExitCode, FatalError, ToolNotFoundError
from orchestrator.execute import ResultNotSavedError, RunSettings, run_scenario
from orchestrator.login import log_in, with_headers
from orchestrator.models import LoadTestResult, Status, Threshold
from orchestrator.plan import PlannedScenario, Suite
from orchestrator.progress import say
from orchestrator.redact import remember_secret
from orchestrator.safe_files import NotWrittenError, Unwritten, describe_unwritten
from orchestrator.safety import check_targets
from orchestrator.target_open import open_target
from orchestrator.targets import (
    LocatedTarget,
    TargetSpec,
    locate_target,
    url_port,
)

if TYPE_CHECKING:
    from orchestrator.compare import Comparison
    from orchestrator.conclusions.models import CapacityReport
    from orchestrator.config import LoginConfig

LOG = logging.getLogger(__name__)

# Run folders of one label started within the same second: <stamp>-<label>-2, -3, ...
MAX_RUN_DIRS_PER_SECOND = 10_000
FAILED = (Status.TOOL_FAILED, Status.TARGET_FAILED)
# How the outcome is shown on the console: one table per result (`run`, `import`), one
# verdict table (`suite`), or nothing (the Python API returns the results instead).
View = Literal["results", "verdicts", "none"]


@dataclass
class Job:
    """Everything a command decided before anything starts."""

    suite: Suite
    title: str  # the report's title
    heading: str  # the verdict table's title
    label: str  # the run directory's name after its timestamp
    base_url: str  # the service: its target process is found (or started) by this URL
    target: TargetSpec
    report_dir: Path
    settings: RunSettings
    view: View = "results"
    login: LoginConfig | None = None
    secrets: tuple[str, ...] = ()
    # Hosts besides loopback that may be loaded (orchestrator.safety).
    allowed_hosts: tuple[str, ...] = ()
    json_output: bool = False  # summary.json on stdout, every table on stderr
    config_file: Path | None = None  # digested into the run's metadata
    baseline: Path | None = None  # a report directory this run must be no worse than


@dataclass
class Outcome:
    """What a job measured and decided; written to ``run_dir`` whatever happened."""

    run_dir: Path
    results: list[LoadTestResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    suite_checks: list[Threshold] = field(default_factory=list)
    code: ExitCode = ExitCode.TOOL_OR_TARGET_FAILED
    secrets: tuple[str, ...] = ()
    capacity: CapacityReport | None = None
    comparison: Comparison | None = None
    # Why the job stopped before or between scenarios (a failed login, a target that would
    # not start): every report says it.
    failure: str | None = None
    config_file: Path | None = None
    # Files of the report the disk refused (full, read-only): said once, exit code 3.
    unwritten: list[Unwritten] = field(default_factory=list)
    # Set once the verdicts are in: the capacity report is drawn from it after they are shown.
    judged: Suite | None = None


def run_job(job: Job) -> Outcome:
    """Run every scenario of the job against its target; the report is always written."""
    check_targets(
        [job.base_url, *(p.scenario.base_url for p in job.suite.scenarios)], job.allowed_hosts
    )
    runnable, skipped = resolve_tools(job.suite.scenarios)
    outcome = Outcome(new_run_dir(job.report_dir, job.label), skipped=skipped, secrets=job.secrets)
    outcome.config_file = job.config_file
    try:
        save_plan(job.suite, outcome.run_dir, job.secrets)
    except OSError as exc:
        outcome.unwritten.append(Unwritten.of(outcome.run_dir / PLAN_FILE, exc))
    with interrupts.interruptible():
        try:
            with open_target(job.target, job.base_url, outcome.run_dir) as (target, reason):
                auth = log_in_once(job, outcome)
                run_scenarios(job, runnable, target, reason, auth, outcome)
            judge(job, outcome)
            if job.baseline is not None:
                compare_with(job.baseline, outcome)
        except KeyboardInterrupt:
            outcome.code = ExitCode.INTERRUPTED
            raise
        except FatalError as exc:
            outcome.failure = str(exc)
            outcome.code = exc.exit_code
            raise
        finally:
            with interrupts.shielded():
                finish(job.title, job.heading, job.view, outcome, job.json_output)
    return outcome


def resolve_tools(
    planned: Sequence[PlannedScenario],
) -> tuple[list[PlannedScenario], dict[str, str]]:
    """Scenarios whose tools work, and why the others are skipped.

    Only a scenario marked optional (``requires``: an engine the OS provides) may be
    skipped; a missing tool for any other scenario stops the job before it starts.
    """
    runnable: list[PlannedScenario] = []
    skipped: dict[str, str] = {}
    for item in planned:
        try:
            require_tool(item.tool, item.scenario)
        except (ToolNotFoundError, ConfigError) as exc:
            if item.requires is None:
                raise
            why = str(exc)
            if item.tool not in known_tools():
                why = f"this version of orchestrate has no {item.tool} adapter yet"
            skipped[item.scenario.name] = (
                f"skipped: {why} (--skip {item.scenario.name} to leave it out)"
            )
            continue
        runnable.append(item)
    return runnable, skipped


def new_run_dir(report_dir: Path, label: str) -> Path:
    """``<report_dir>/<UTC timestamp>-<label>`` (``-2``, ``-3``, ... when taken), plus a
    ``latest`` link to it.

    Race-free: ``mkdir`` either creates the folder or fails, so two runs started in the
    same second, in two processes, get two folders. A report dir that cannot be written
    (a file in the way, a read-only mount, no permission) is a ConfigError: it is known
    before anything starts, so nothing is started.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        if report_dir.exists() and not report_dir.is_dir():
            raise ConfigError(
                f"report dir {report_dir} is a file, not a folder: "
                "remove it or choose another with --report-dir"
            )
        report_dir.mkdir(parents=True, exist_ok=True)
        run_dir = _claim_dir(report_dir, f"{stamp}-{label}")
    except OSError as exc:
        raise ConfigError(
            f"cannot create a report directory in {report_dir}: {exc.strerror or exc} "
            "(choose another with --report-dir)"
        ) from exc
    _point_latest(report_dir, run_dir)
    return run_dir


def _claim_dir(parent: Path, name: str) -> Path:
    for suffix in range(1, MAX_RUN_DIRS_PER_SECOND):
        run_dir = parent / (name if suffix == 1 else f"{name}-{suffix}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue  # taken, by an earlier run or one running now
        return run_dir
    raise ConfigError(f"{parent} has {MAX_RUN_DIRS_PER_SECOND} run folders named {name}")


def _point_latest(report_dir: Path, run_dir: Path) -> None:
    """Point ``latest`` at ``run_dir``: a new link renamed over the old one, so that two
    runs finishing together never see it missing or fail on each other's link."""
    latest = report_dir / "latest"
    if latest.exists() and not latest.is_symlink():
        return  # a real file or folder of the user's: left alone
    link = report_dir / f".latest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        link.symlink_to(run_dir.name)
        link.replace(latest)
    except OSError:
        LOG.debug("could not update %s", latest)
        link.unlink(missing_ok=True)


def log_in_once(job: Job, outcome: Outcome) -> dict[str, str]:
    """The headers that authenticate every request (none without a ``login`` config)."""
    if job.login is None:
        return {}
    token = log_in(job.login, job.base_url)
    remember_secret(token)
    outcome.secrets = (*outcome.secrets, token)
    return job.login.auth_headers(token)


def run_scenarios(
    job: Job,
    runnable: Sequence[PlannedScenario],
    target: LocatedTarget | None,
    reason: str,
    auth: dict[str, str],
    outcome: Outcome,
) -> None:
    """Each scenario in turn (stopping after an interrupted one); results into ``outcome``."""
    scaled = f" at --scale {job.suite.scale:g}" if job.suite.scale != 1 else ""
    service = url_port(job.base_url)
    for index, planned in enumerate(runnable, start=1):
        scenario = with_headers(planned.scenario, auth) if auth else planned.scenario
        if job.view == "verdicts":
            # The shape as it runs (scaled), then the plan's words (at full scale).
            plan = planned.description
            if plan and job.suite.scale != 1:
                plan = f"plan at full scale: {plan}"
            say(
                f"[{index}/{len(runnable)}] {scenario.name} with {planned.tool}: "
                f"{scenario.shape.describe()}{scaled}" + (f". {plan}" if plan else "")
            )
        sampled, why = target, reason
        if url_port(scenario.base_url) != service:
            # Another server (a database scenario's): sample the one at its address.
            sampled, why = locate_target(None, scenario.base_url)
        run = run_scenario
        if scenario.shards > 1 or job.settings.agents:
            from orchestrator.engines.k6.sharding import run_sharded as run
        try:
            result = run(
                scenario,
                planned.tool,
                outcome.run_dir / scenario.name,
                sampled,
                job.settings,
                why,
                planned.thresholds,
            )
        except ResultNotSavedError as exc:
            # Measured but not saved: kept for the console and the summary.
            result = exc.result
            outcome.unwritten.extend(exc.unwritten)
        outcome.results.append(result)
        if result.status in FAILED:
            # Said where it is seen even when the tool's output is hidden: one line.
            detail = " ".join((result.status_detail or "").split())
            say(f"orchestrate: {scenario.name}: {result.status.value}: {detail}")
        if result.status is Status.INTERRUPTED or outcome.unwritten:
            # A disk that refused a result would lose the next scenario's too.
            break


def judge(job: Job, outcome: Outcome) -> None:
    """The suite-wide SLA and the exit code (each result was judged as it was measured);
    ``orchestrate analyze`` draws the same from the saved run. The capacity report follows
    in :func:`finish`, once the verdict is on the console."""
    found = conclude(job.suite, outcome.results, outcome.skipped, capacity=False)
    outcome.suite_checks = found.suite_checks
    outcome.code = found.code
    outcome.capacity = found.capacity
    outcome.judged = job.suite
    if outcome.unwritten:
        outcome.code = ExitCode.TOOL_OR_TARGET_FAILED


def compare_with(baseline: Path, outcome: Outcome) -> None:
    """The run against a baseline report directory: a regression fails the run (exit 1)."""
    from orchestrator.compare import compare_results, describe, load_results

    new = {r.scenario: r for r in outcome.results}
    outcome.comparison = compare_results(
        load_results(baseline), new, str(baseline), str(outcome.run_dir)
    )
    for change in outcome.comparison.regressions:
        say(f"regression against {baseline}: {describe(change)}")
    if outcome.comparison.regressions and outcome.code == ExitCode.OK:
        outcome.code = ExitCode.SLA_FAILED


def finish(
    title: str, heading: str, view: View, outcome: Outcome, json_output: bool = False
) -> None:
    """Show the outcome (see :data:`View`), then write the report directory.

    A single run's verdict is printed as soon as it is known: the capacity report and the
    report files (report.html's plots take the longest) come after it. A suite's verdict
    table follows its capacity report.
    """
    # Imported when the load is over: rich and jinja2 cost start-up time, not load.
    from reports.console import tables_to_stderr
    from reports.writer import write_report

    tables_to_stderr(json_output)
    if view == "results":
        show(view, heading, outcome)
    if outcome.capacity is None and outcome.judged is not None:
        outcome.capacity = capacity_report(outcome.judged, outcome.results)
    if view == "verdicts":
        show(view, heading, outcome)
    unwritten = list(outcome.unwritten)  # result.json files, refused as they were measured
    if outcome.capacity is not None:
        try:
            write_capacity(outcome.capacity, outcome.run_dir)
        except OSError as exc:
            unwritten.append(Unwritten.of(outcome.run_dir / CAPACITY_FILE, exc))
    try:
        write_report(
            outcome.run_dir,
            title,
            outcome.results,
            skipped=outcome.skipped,
            suite_checks=outcome.suite_checks,
            exit_code=int(outcome.code),
            secrets=outcome.secrets,
            failure=outcome.failure,
            capacity=None
            if outcome.capacity is None
            else outcome.capacity.model_dump(mode="json", by_alias=True),
            config_file=outcome.config_file,
            comparison=outcome.comparison,
        )
    except NotWrittenError as exc:
        unwritten += exc.unwritten
    if unwritten:
        # One line for everything the disk refused; what was written is complete.
        say(f"orchestrate: error: {describe_unwritten(unwritten, outcome.run_dir)}")
        if outcome.code is not ExitCode.INTERRUPTED:
            outcome.code = ExitCode.TOOL_OR_TARGET_FAILED
    # A run that measured nothing says only why (one line, from the CLI).
    if view == "verdicts" or (view == "results" and outcome.results):
        say(f"report: {outcome.run_dir}")
    summary = outcome.run_dir / "summary.json"
    if json_output and summary.is_file():
        sys.stdout.write(summary.read_text(encoding="utf-8"))
        sys.stdout.flush()


def show(view: View, heading: str, outcome: Outcome) -> None:
    """The outcome on the console: the verdicts (and capacity) of a suite, or each result
    with its PASS/FAIL headline; then any regression against the baseline."""
    from reports.console import print_capacity, print_headline, print_result, print_verdicts

    if view == "verdicts":
        if outcome.capacity is not None:
            print_capacity(outcome.capacity)
        print_verdicts(outcome.results, outcome.skipped, outcome.suite_checks, heading)
    elif view == "results":
        for result in outcome.results:
            print_result(result)
            print_headline(result)
    if outcome.comparison is not None and outcome.comparison.regressions:
        say(
            f"FAIL: {len(outcome.comparison.regressions)} regression(s) against the baseline "
            f"{outcome.comparison.base}"
        )
