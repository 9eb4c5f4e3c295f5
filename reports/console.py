"""Console output: the result summary, the suite verdict table, the tool doctor table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from orchestrator.models import LoadTestResult, Threshold
from reports.summary import check_verdict, fmt_threshold, summary_rows, verdict_rows

if TYPE_CHECKING:
    from orchestrator.tools import ToolStatus

STYLE = {"PASS": "green", "FAIL": "red", "SKIPPED": "yellow", "NOT MEASURED": "yellow"}


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def print_result(result: LoadTestResult) -> None:
    table = Table(title=f"{result.scenario}: {result.status.value}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for label, value in summary_rows(result):
        table.add_row(label, value)
    _console().print(table)


def print_verdicts(
    results: Sequence[LoadTestResult],
    skipped: dict[str, str],
    suite_checks: Sequence[Threshold],
    title: str,
) -> None:
    table = Table(title=title)
    for column in ("scenario", "tool", "verdict", "measured vs limit"):
        table.add_column(column)
    for row in verdict_rows(results, skipped):
        style = STYLE.get(row.verdict, "red")
        table.add_row(row.scenario, row.tool, f"[{style}]{row.verdict}[/]", row.checks)
    for check in suite_checks:
        verdict = check_verdict(check)
        style = STYLE.get(verdict, "red")
        table.add_row("(suite)", "-", f"[{style}]{verdict}[/]", fmt_threshold(check))
    _console().print(table)


def print_doctor(statuses: Sequence[ToolStatus], needed: Collection[str]) -> None:
    table = Table(title="orchestrate tools")
    for column in ("tool", "status", "version", "path / fix"):
        table.add_column(column)
    for status in statuses:
        mark = (
            "[green]ok[/]"
            if status.ok
            else ("[red]MISSING[/]" if status.name in needed else "[yellow]missing[/]")
        )
        table.add_row(status.name, mark, status.version or "", status.path or status.detail)
    _console().print(table)
