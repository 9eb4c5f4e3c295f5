"""The capacity report in words: the rows the console, summary.md and the HTML page show."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.conclusions.models import CapacityReport, Limit

LIMIT_LABELS = (
    ("maxConcurrentUsers", "max concurrent users"),
    ("maxWebSocketConnections", "max WebSocket connections"),
    ("maxDatabaseConnections", "max database connections"),
    ("maxThroughput", "max throughput"),
)


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"


def fmt_limit(limit: Limit) -> str:
    """'120 users (stress, step 3; measured)' or 'not measured: why'."""
    if limit.value is None:
        return f"not measured: {limit.reason or 'no scenario measured it'}"
    text = f"{_num(limit.value)} {limit.unit}"
    if limit.bound == "lower_bound":
        text = f"at least {text}"
    where = []
    if limit.source is not None:
        where.append(limit.source.scenario)
        if limit.source.concurrency is not None:
            where.append(f"at {limit.source.concurrency}")
    if limit.basis:
        where.append(limit.basis)
    if limit.predicted is not None:
        where.append(f"USL predicts {_num(limit.predicted)} (estimate)")
    return text + (f" ({'; '.join(where)})" if where else "")


def leak_text(report: CapacityReport) -> str:
    if report.memory_leak is True:
        leaking = [
            s.scenario for s in report.scenarios if s.leak is not None and s.leak.memory_leak
        ]
        return f"LEAK in {', '.join(leaking)}"
    if report.memory_leak is False:
        return "no leak detected"
    return "not judged (no scenario long enough, or the target was not sampled)"


def capacity_rows(report: CapacityReport) -> list[tuple[str, str]]:
    """(label, text) rows: the limits, the leak verdict, then each bottleneck."""
    limits = report.capacity_limits.model_dump(by_alias=False)
    rows = [
        (label, fmt_limit(getattr(report.capacity_limits, _snake(key))))
        for key, label in LIMIT_LABELS
        if _snake(key) in limits
    ]
    rows.append(("memory leak", leak_text(report)))
    for b in report.bottlenecks:
        at = f" at {_num(b.limit)} {b.unit or ''}".rstrip() if b.limit is not None else ""
        rows.append((f"bottleneck: {b.component}", f"{b.scenario}{at}: {'; '.join(b.evidence)}"))
    return rows


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def render_capacity_markdown(report: CapacityReport) -> str:
    lines = ["## Capacity", "", "| | |", "|---|---|"]
    lines += [f"| {label} | {text} |" for label, text in capacity_rows(report)]
    if report.recommendations:
        lines += ["", "**Recommendations**", ""]
        lines += [f"- {r}" for r in report.recommendations]
    return "\n".join(lines) + "\n"
