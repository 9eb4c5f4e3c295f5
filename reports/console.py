"""Console output: the result summary, the suite verdict table, the tool doctor table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from orchestrator.models import LoadTestResult, Threshold
from reports.summary import (
    ENDPOINT_COLUMNS,
    check_verdict,
    endpoint_rows,
    fmt_threshold,
    summary_rows,
    verdict_rows,
)

if TYPE_CHECKING:
    from orchestrator.tools import ToolStatus

STYLE = {"PASS": "green", "FAIL": "red", "SKIPPED": "yellow", "NOT MEASURED": "yellow"}


# Piped into a file or a CI log there is no terminal width to respect: never cut a value.
PIPED_WIDTH = 200


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=PIPED_WIDTH)
    return console


def _table(title: str, columns: Sequence[str], show_header: bool = True) -> Table:
    """A table whose long values (paths, URLs) fold onto more lines, never end in '…'."""
    table = Table(title=title, show_header=show_header)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def print_result(result: LoadTestResult) -> None:
    table = _table(f"{result.scenario}: {result.status.value}", ("", ""), show_header=False)
    table.columns[0].style = "bold"
    for label, value in summary_rows(result):
        table.add_row(label, value)
    console = _console()
    console.print(table)
    rows = endpoint_rows(result)
    if rows:
        per_endpoint = _table(f"{result.scenario}: per endpoint", ENDPOINT_COLUMNS)
        for column in per_endpoint.columns[1:]:
            column.justify = "right"
        for row in rows:
            per_endpoint.add_row(*row)
        console.print(per_endpoint)


def print_verdicts(
    results: Sequence[LoadTestResult],
    skipped: dict[str, str],
    suite_checks: Sequence[Threshold],
    title: str,
) -> None:
    table = _table(title, ("scenario", "tool", "verdict", "measured vs limit"))
    for row in verdict_rows(results, skipped):
        style = STYLE.get(row.verdict, "red")
        table.add_row(row.scenario, row.tool, f"[{style}]{row.verdict}[/]", row.checks)
    for check in suite_checks:
        verdict = check_verdict(check)
        style = STYLE.get(verdict, "red")
        table.add_row("(suite)", "-", f"[{style}]{verdict}[/]", fmt_threshold(check))
    _console().print(table)


def print_doctor(statuses: Sequence[ToolStatus], needed: Collection[str]) -> None:
    table = _table("orchestrate tools", ("tool", "status", "version", "path / fix"))
    for status in statuses:
        mark = (
            "[green]ok[/]"
            if status.ok
            else ("[red]MISSING[/]" if status.name in needed else "[yellow]missing[/]")
        )
        table.add_row(status.name, mark, status.version or "", status.path or status.detail)
    _console().print(table)
