"""The per-endpoint table of a result (like Gatling's per-request table), as text rows."""

from __future__ import annotations

from orchestrator.models import LoadTestResult, ResponseTime
from reports.summary import fmt_int, fmt_ms, fmt_num

ENDPOINT_COLUMNS = (
    "endpoint", "requests", "OK", "KO", "KO %", "req/s", "min", "p50", "p95", "p99", "max",
)  # fmt: skip


def endpoint_rows(result: LoadTestResult) -> list[tuple[str, ...]]:
    """Per endpoint (as Gatling's per-request table), then the whole run as "all"; none
    when the engine measured no per-endpoint numbers or there is one endpoint only (its
    numbers are the run's)."""
    rows: list[tuple[str, ...]] = []
    for e in result.endpoints if len(result.endpoints) > 1 else []:
        label = e.name
        if e.method and e.path and e.name != f"{e.method} {e.path}":
            label += f" ({e.method} {e.path})"
        counts = (e.total_requests, e.successful_requests, e.error_rate, e.throughput)
        rows.append(_endpoint_row(label, *counts, e.response_time))
    if rows:
        r = result
        whole = (r.total_requests, r.successful_requests, r.error_rate, r.throughput)
        rows.append(_endpoint_row("all", *whole, r.response_time))
    return rows


def _endpoint_row(
    label: str,
    total: int | None,
    ok: int | None,
    error_rate: float | None,
    throughput: float | None,
    rt: ResponseTime,
) -> tuple[str, ...]:
    failed = None if total is None or ok is None else total - ok
    latencies = (rt.min, rt.p50, rt.p95, rt.p99, rt.max)
    return (label, fmt_int(total), fmt_int(ok), fmt_int(failed), fmt_num(error_rate, 2),
            fmt_num(throughput, 1), *(fmt_ms(v) for v in latencies))  # fmt: skip


def endpoint_markdown(result: LoadTestResult) -> list[str]:
    """The per-endpoint table in Markdown (no lines when there is none)."""
    rows = endpoint_rows(result)
    if not rows:
        return []
    lines = ["", "Per endpoint:", "", "| " + " | ".join(ENDPOINT_COLUMNS) + " |"]
    lines.append("|---" + "|---:" * (len(ENDPOINT_COLUMNS) - 1) + "|")
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return lines
