"""The per-endpoint table of a result (like Gatling's per-request table), as text rows."""

from __future__ import annotations

from orchestrator.models import EndpointStats, LoadTestResult
from reports.summary import fmt_int, fmt_ms, fmt_num

ENDPOINT_COLUMNS = (
    "endpoint", "requests", "OK", "KO", "KO %", "req/s", "min", "p50", "p95", "p99", "max",
)  # fmt: skip


def request_cells(item: LoadTestResult | EndpointStats) -> dict[str, str]:
    """One row's figures, as every per-request table shows them (Markdown, console, HTML)."""
    rt = item.response_time
    return {
        "count": fmt_int(item.total_requests),
        "ok": fmt_int(item.successful_requests),
        "failed": fmt_int(item.failed_requests),
        "error %": fmt_num(item.error_rate, 2),
        "rate": fmt_num(item.throughput, 1),
        **{k: fmt_ms(getattr(rt, k)) for k in ("min", "mean", "p50", "p95", "p99", "max")},
    }


def endpoint_rows(result: LoadTestResult) -> list[tuple[str, ...]]:
    """Per endpoint (as Gatling's per-request table), then the whole run as "all"; none
    when the engine measured no per-endpoint numbers or there is one endpoint only (its
    numbers are the run's)."""
    if len(result.endpoints) < 2:
        return []
    rows: list[tuple[str, ...]] = []
    for e in result.endpoints:
        label = e.name
        if e.method and e.path and e.name != f"{e.method} {e.path}":
            label += f" ({e.method} {e.path})"
        rows.append(_row(label, e))
    rows.append(_row("all", result))
    return rows


def _row(label: str, item: LoadTestResult | EndpointStats) -> tuple[str, ...]:
    c = request_cells(item)
    return (label, *(c[k] for k in ("count", "ok", "failed", "error %", "rate")),
            *(c[k] for k in ("min", "p50", "p95", "p99", "max")))  # fmt: skip


def endpoint_markdown(result: LoadTestResult) -> list[str]:
    """The per-endpoint table in Markdown (no lines when there is none)."""
    rows = endpoint_rows(result)
    if not rows:
        return []
    lines = ["", "Per endpoint:", "", "| " + " | ".join(ENDPOINT_COLUMNS) + " |"]
    lines.append("|---" + "|---:" * (len(ENDPOINT_COLUMNS) - 1) + "|")
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return lines
