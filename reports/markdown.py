"""summary.md: the overall verdict first, then per scenario the numbers, then what ran it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.models import LoadTestResult, Threshold
from orchestrator.sla import suite_exit_code
from reports.endpoint_table import endpoint_markdown
from reports.findings import capacity_markdown, comparison_markdown
from reports.run_info import RunInfo, run_rows
from reports.summary import fmt_threshold, overall, summary_rows, verdict_rows

if TYPE_CHECKING:
    from orchestrator.compare import Comparison


def verdict_line(exit_code: int) -> str:
    word, meaning = overall(exit_code)
    return f"**{word}**: {meaning} (exit code {exit_code})"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "/").split())


def render_markdown(
    title: str,
    results: Sequence[LoadTestResult],
    skipped: dict[str, str] | None = None,
    suite_checks: Sequence[Threshold] = (),
    *,
    exit_code: int | None = None,
    failure: str | None = None,
    run: RunInfo | None = None,
    capacity: Mapping[str, Any] | None = None,
    comparison: Comparison | None = None,
    base: Path | None = None,
) -> str:
    """The Markdown summary; ``base`` is the report directory (paths are shown relative)."""
    skipped = skipped or {}
    code = exit_code if exit_code is not None else suite_exit_code(results, skipped, suite_checks)
    lines = [f"# {title}", "", verdict_line(int(code)), ""]
    if failure:
        lines += [f"Cause: {_cell(failure)}", ""]
    if capacity is not None:
        lines += capacity_markdown(capacity)
    if comparison is not None:
        lines += comparison_markdown(comparison)
    verdicts = verdict_rows(results, skipped)
    if len(verdicts) > 1 or suite_checks:
        lines += ["| scenario | tool | verdict | checks |", "|---|---|---|---|"]
        lines += [
            f"| {r.scenario} | {r.tool} | {r.verdict} | {_cell(r.checks)} |" for r in verdicts
        ]
        lines.append("")
        if suite_checks:
            lines += ["## Suite-wide", ""]
            lines += [f"- {fmt_threshold(c)}" for c in suite_checks]
            lines.append("")
    for result in results:
        lines += [f"## {result.scenario}", "", "| | |", "|---|---|"]
        lines += [f"| {label} | {_cell(value)} |" for label, value in summary_rows(result, base)]
        lines += endpoint_markdown(result)
        if result.missing:
            lines += ["", "Not measured:", ""]
            lines += [f"- `{key}`: {why}" for key, why in sorted(result.missing.items())]
        lines.append("")
    if run is not None:
        lines += ["## Run", ""]
        lines += [f"- {label}: `{_cell(value)}`" for label, value in run_rows(run)]
        lines.append("")
    return "\n".join(lines)
