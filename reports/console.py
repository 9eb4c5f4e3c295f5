"""Console output: the result summary, the suite verdict table, the tool doctor table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.models import LoadTestResult, Threshold
from reports.endpoint_table import ENDPOINT_COLUMNS, endpoint_rows
from reports.summary import (
    check_verdict,
    fmt_threshold,
    summary_rows,
    verdict_label,
    verdict_rows,
)

if TYPE_CHECKING:
    from orchestrator.conclusions.models import CapacityReport
    from orchestrator.tools import ToolStatus

STYLE = {
    "PASS": "green",
    "FAIL": "red",
    "SKIPPED": "yellow",
    "NOT MEASURED": "yellow",
    "NOT APPLICABLE": "dim",
}


# Piped into a file or a CI log there is no terminal width to respect: never cut a value.
PIPED_WIDTH = 200


# With --json, stdout carries the JSON alone: tables and headlines go to stderr.
_TO_STDERR = False


def tables_to_stderr(on: bool = True) -> None:
    global _TO_STDERR  # noqa: PLW0603 - one switch for the whole console output
    _TO_STDERR = on


def _console() -> Console:
    console = Console(highlight=False, soft_wrap=False, stderr=_TO_STDERR)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=PIPED_WIDTH, stderr=_TO_STDERR)
    return console


def headline(result: LoadTestResult) -> str:
    """PASS / FAIL / NOT MEASURED / INTERRUPTED and why, in one line."""
    verdict = verdict_label(result)
    checks = result.thresholds
    if result.status.value != "completed":
        why = result.status_detail or result.status.value
        return f"{verdict}: {result.scenario} {result.status.value}: {why}"
    if not checks:
        return f"{verdict}: {result.scenario} completed; no SLA given (--threshold to gate)"
    broken = [fmt_threshold(c) for c in checks if c.passed is not True]
    if not broken:
        held = "its SLA check held" if len(checks) == 1 else f"all {len(checks)} SLA checks held"
        return f"{verdict}: {result.scenario}: {held}"
    return f"{verdict}: {result.scenario}: " + "; ".join(broken)


def print_headline(result: LoadTestResult) -> None:
    text = headline(result)
    style = STYLE.get(text.split(":", 1)[0], "red")
    _console().print(f"[bold {style}]{escape(text)}[/]")


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


def print_capacity(report: CapacityReport) -> None:
    """The capacity report's answers: each limit with where it came from, the leak verdict,
    the bottlenecks with their evidence."""
    from reports.findings import capacity_view

    view = capacity_view(report.model_dump(mode="json", by_alias=True))
    table = _table("capacity", ("", ""), show_header=False)
    table.columns[0].style = "bold"
    for row in view.limits:
        where = "; ".join(p for p in (row["source"], row["how"], row["predicted"]) if p)
        table.add_row(row["limit"], row["value"] + (f" ({where})" if where else ""))
    if view.memory_leak is not None:
        table.add_row("memory leak", view.memory_leak)
    for item in view.bottlenecks:
        table.add_row(
            f"bottleneck: {item['component']}",
            f"{item['scenario']} at {item['limit']}: {item['evidence']}",
        )
    _console().print(table)
