"""Write the report directory: JSON (machine), Markdown (people), CSV (spreadsheets).

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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.models import LoadTestResult, Threshold
from orchestrator.redact import redact_text
from orchestrator.safe_files import NotWrittenError, Unwritten, write_atomic
from orchestrator.sla import lookup
from reports.junit import render_junit
from reports.step_summary import append_step_summary, step_summary_markdown
from reports.summary import render_markdown, verdict_rows

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
) -> list[Path]:
    """Write summary.json, summary.md, junit.xml, results.csv, then index.html with plots/.

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
    dumped = [r.model_dump(mode="json", by_alias=True) for r in results]
    summary = {
        "title": title,
        "writtenAt": datetime.now(UTC).isoformat(),
        "exitCode": exit_code,
        "verdicts": [row.__dict__ for row in verdict_rows(results, skipped)],
        "suiteThresholds": [c.model_dump(mode="json", by_alias=True) for c in suite_checks],
        "skipped": skipped,
        "results": dumped,
    }
    markdown = render_markdown(title, results, skipped, suite_checks)
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
            title, results, skipped, suite_checks, exit_code=exit_code, secrets=secrets
        ),
    )
    attempt(run_dir / "results.csv", lambda: render_csv(dumped))
    try:
        written.extend(
            _write_html_whole(
                run_dir,
                title,
                results,
                skipped=skipped,
                suite_checks=suite_checks,
                exit_code=exit_code,
                secrets=secrets,
            )
        )
    except OSError as exc:
        unwritten.append(Unwritten.of(run_dir / "index.html", exc))
    except Exception as exc:
        LOG.warning("index.html not written: %s: %s", type(exc).__name__, exc)
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
    run_dir: Path,
    title: str,
    results: Sequence[LoadTestResult],
    *,
    skipped: dict[str, str],
    suite_checks: Sequence[Threshold],
    exit_code: int | None,
    secrets: tuple[str, ...],
) -> list[Path]:
    """The page and its plots, drawn in a staging folder and moved in only when all fit.

    Its links are relative, so the page can be drawn elsewhere in the run folder; a disk
    error while drawing leaves no half-written page or plot behind.
    """
    from reports.html import write_html  # imports jinja2; matplotlib only when drawing

    staging = run_dir / HTML_STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        write_html(
            staging,
            title,
            results,
            skipped=skipped,
            suite_checks=suite_checks,
            exit_code=exit_code,
            secrets=secrets,
        )
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
