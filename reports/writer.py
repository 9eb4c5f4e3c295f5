"""Write the report directory: JSON (machine), Markdown (people), CSV (spreadsheets)."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.models import LoadTestResult, Threshold
from orchestrator.redact import redact_text
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

    Returns the paths written. The HTML comes last and its failure is only a warning:
    the machine-readable files must never be lost to a plotting problem. In a GitHub
    Actions job the Markdown summary is then appended to the job's summary page too.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
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
    written = [
        _write(run_dir / "summary.json", json.dumps(summary, indent=2), secrets),
        _write(run_dir / "summary.md", markdown, secrets),
    ]
    junit = render_junit(
        title, results, skipped, suite_checks, exit_code=exit_code, secrets=secrets
    )
    written.append(_write(run_dir / "junit.xml", junit, secrets))
    csv_path = run_dir / "results.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_FIELDS)
        for row in dumped:
            writer.writerow(["" if (v := lookup(row, f)) is None else v for f in CSV_FIELDS])
    written.append(csv_path)
    try:
        from reports.html import write_html  # imports jinja2; matplotlib only when drawing

        written.append(
            write_html(
                run_dir,
                title,
                results,
                skipped=skipped,
                suite_checks=suite_checks,
                exit_code=exit_code,
                secrets=secrets,
            )
        )
    except Exception as exc:
        LOG.warning("index.html not written: %s: %s", type(exc).__name__, exc)
    step_summary = step_summary_markdown(markdown, exit_code, run_dir)
    append_step_summary(redact_text(step_summary, secrets, keys=False))
    return written


def _write(path: Path, text: str, secrets: tuple[str, ...]) -> Path:
    path.write_text(redact_text(text, secrets, keys=False), encoding="utf-8")
    return path
