"""Write the report directory: JSON (machine), Markdown (people), CSV (spreadsheets),
junit.xml (CI) and report.html (the one file to open).

Robust to a full disk or a read-only folder: every file is written whole or not at all
(:func:`orchestrator.safe_files.write_atomic`), the small machine-readable files first and
the HTML with its plots last; a file that cannot be written does not stop the others, and
what is missing is raised once, as :class:`NotWrittenError`, after everything possible was
written. Each scenario's ``result.json`` was written before any of this, as it was measured.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.models import LoadTestResult, Threshold
from orchestrator.redact import redact_text
from orchestrator.safe_files import NotWrittenError, Unwritten, write_atomic
from orchestrator.sla import lookup
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.run_info import RunInfo, collect_run_info
from reports.step_summary import append_step_summary, step_summary_markdown
from reports.summary import verdict_rows

if TYPE_CHECKING:
    from orchestrator.compare import Comparison

LOG = logging.getLogger(__name__)

CSV_FIELDS = (
    "scenario",
    "tool",
    "status",
    "concurrency",
    "duration",
    "totalRequests",
    "failedRequests",
    "errorRate",
    "throughput",
    "responseTime.p50",
    "responseTime.p95",
    "responseTime.p99",
    "responseTime.max",
    "resourceUsage.memoryDelta",
    "generatorSaturated",
)


def write_report(
    run_dir: Path,
    title: str,
    results: Sequence[LoadTestResult],
    *,
    skipped: dict[str, str] | None = None,
    suite_checks: Sequence[Threshold] = (),
    exit_code: int | None = None,
    secrets: tuple[str, ...] = (),
    failure: str | None = None,
    capacity: Mapping[str, Any] | None = None,
    comparison: Comparison | None = None,
    config_file: Path | None = None,
    run_info: RunInfo | None = None,
) -> list[Path]:
    """Write summary.json, summary.md, junit.xml, results.csv, then report.html (with
    index.html redirecting to it and plots/*.svg).

    ``failure``: why the run stopped before or between scenarios (a failed login, a target
    that would not start), shown in every report. ``capacity``: a CapacityReport as JSON data;
    ``comparison``: the run against a baseline. ``config_file`` is digested into the run's
    metadata (``run_info``, collected here when not given).

    Returns the paths written. The HTML comes last and a plotting problem is only a
    warning: the machine-readable files must never be lost to it. A file the disk refuses
    (no space, read-only, no permission) is skipped and the rest still written; then a
    :class:`NotWrittenError` names every file missing. In a GitHub Actions job the Markdown
    summary is appended to the job's summary page too.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NotWrittenError([Unwritten.of(run_dir, exc)], run_dir) from exc
    skipped = skipped or {}
    run = run_info or collect_run_info(results, config_file=config_file, secrets=secrets)
    dumped = [r.model_dump(mode="json", by_alias=True) for r in results]
    summary: dict[str, Any] = {
        "title": title,
        "writtenAt": datetime.now(UTC).isoformat(),
        "exitCode": exit_code,
        "failure": failure,
        "run": run.model_dump(mode="json", by_alias=True),
        "verdicts": [row.__dict__ for row in verdict_rows(results, skipped)],
        "suiteThresholds": [c.model_dump(mode="json", by_alias=True) for c in suite_checks],
        "skipped": skipped,
        "results": dumped,
    }
    if capacity is not None:
        summary["capacity"] = dict(capacity)
    if comparison is not None:
        summary["comparison"] = comparison.model_dump(mode="json", by_alias=True)
    findings: dict[str, Any] = {
        "exit_code": exit_code,
        "failure": failure,
        "capacity": capacity,
        "comparison": comparison,
    }
    markdown = render_markdown(
        title, results, skipped, suite_checks, run=run, base=run_dir, **findings
    )
    written: list[Path] = []
    unwritten: list[Unwritten] = []

    def attempt(path: Path, render: Callable[[], str]) -> None:
        try:
            written.append(write_atomic(path, redact_text(render(), secrets, keys=False)))
        except OSError as exc:
            unwritten.append(Unwritten.of(path, exc))

    attempt(run_dir / "summary.json", lambda: json.dumps(summary, indent=2))
    attempt(run_dir / "summary.md", lambda: markdown)
    attempt(
        run_dir / "junit.xml",
        lambda: render_junit(
            title,
            results,
            skipped,
            suite_checks,
            exit_code=exit_code,
            secrets=secrets,
            hostname=run.host,
            properties=junit_properties(run, failure),
        ),
    )
    attempt(run_dir / "results.csv", lambda: render_csv(dumped))
    try:
        written += _write_html_whole(
            run_dir, title, results, skipped=skipped, suite_checks=suite_checks,
            secrets=secrets, run=run, **findings,
        )  # fmt: skip
    except OSError as exc:
        unwritten.append(Unwritten.of(run_dir / "report.html", exc))
    except Exception as exc:
        LOG.warning("report.html not written: %s: %s", type(exc).__name__, exc)
    step_summary = step_summary_markdown(markdown, exit_code, run_dir)
    append_step_summary(redact_text(step_summary, secrets, keys=False))
    if unwritten:
        raise NotWrittenError(unwritten, run_dir)
    return written


def render_csv(dumped: Sequence[dict[str, object]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for row in dumped:
        writer.writerow(["" if (v := lookup(row, f)) is None else v for f in CSV_FIELDS])
    return out.getvalue()


HTML_STAGING = ".html.tmp"


def _write_html_whole(
    run_dir: Path, title: str, results: Sequence[LoadTestResult], **options: Any
) -> list[Path]:
    """The page and its plots, drawn in a staging folder and moved in only when all fit.

    A disk error while drawing leaves no half-written page or plot behind; the page's
    links are relative to the run folder, wherever it is drawn.
    """
    from reports.html import write_html  # imports jinja2; matplotlib only when drawing

    staging = run_dir / HTML_STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        write_html(run_dir, title, results, out_dir=staging, **options)
        return _move_into(staging, run_dir)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging, ignore_errors=True)


def _move_into(source: Path, dest: Path) -> list[Path]:
    """Rename everything in ``source`` into ``dest`` (renames need no space)."""
    moved: list[Path] = []
    for entry in sorted(source.iterdir()):
        target = dest / entry.name
        if entry.is_dir() and target.is_dir():
            moved.extend(_move_into(entry, target))
        else:
            entry.replace(target)
            moved.append(target)
    return moved


def junit_properties(run: RunInfo, failure: str | None) -> dict[str, str]:
    """The run's metadata as junit.xml properties (the values a CI viewer lists)."""
    values = {
        "orchestrateVersion": run.orchestrate_version,
        "toolVersions": ", ".join(f"{k} {v}" for k, v in run.tool_versions.items()) or None,
        "cpuCount": None if run.cpu_count is None else str(run.cpu_count),
        "commandLine": run.command_line,
        "configSha256": run.config_sha256,
        "gitCommit": run.git_commit,
        "failure": failure,
    }
    return {name: value for name, value in values.items() if value is not None}
