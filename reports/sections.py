"""One scenario's part of report.html, as plain rows: SLA, endpoints, status codes, errors,
the pool, raw files and plots. No HTML here; the template lays the rows out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from orchestrator.models import EndpointStats, LoadTestResult, Status
from orchestrator.sla import format_metric
from reports.endpoint_table import request_cells
from reports.plots import Plot, slug
from reports.summary import check_verdict, fmt_ms, fmt_num, shown_path, summary_rows, units

LOG = logging.getLogger(__name__)

# Shown elsewhere in the section (SLA table, raw files), so left out of the details table.
NOT_IN_DETAILS = {"SLA", "raw output", "scenario"}
CODE_CLASSES = {
    "1": "informational",
    "2": "success",
    "3": "redirect",
    "4": "client error",
    "5": "server error",
}
NO_CODES = {
    "ws": "WebSocket messages have no HTTP status codes; failures are counted by kind below",
    "postgres": "PostgreSQL has no status codes; failures are counted by kind below",
}


@dataclass
class SlaRow:
    check: str
    limit: str
    measured: str
    verdict: str
    share: str  # measured as a share of the limit
    bar: float  # 0..100: width of the bar showing that share (100 = at the limit)
    detail: str


@dataclass
class CountRow:
    key: str
    count: str
    share: str
    kind: str = ""


@dataclass
class Section:
    anchor: str
    scenario: str
    tool: str
    noun: str
    rate: str
    verdict: str
    cause: str | None
    details: list[tuple[str, str]]
    sla: list[SlaRow]
    endpoints: list[dict[str, str]]
    codes: list[CountRow]
    codes_note: str | None
    errors: list[CountRow]
    pool: list[tuple[str, str]]
    files: list[tuple[str, str]]
    files_note: str | None
    steps: list[dict[str, str]]
    missing: list[tuple[str, str]]
    plots: list[Plot] = field(default_factory=list)


def sla_rows(result: LoadTestResult) -> list[SlaRow]:
    rows = []
    for check in result.thresholds:
        share, bar = "", 0.0
        if check.measured is not None and check.limit:
            ratio = 100.0 * check.measured / check.limit
            share, bar = f"{ratio:,.3g}% of limit", max(0.0, min(ratio, 100.0))
        rows.append(
            SlaRow(
                check=f"{check.metric} {check.op} {format_metric(check.metric, check.limit)}",
                limit=format_metric(check.metric, check.limit),
                measured=format_metric(check.metric, check.measured),
                verdict=check_verdict(check),
                share=share,
                bar=bar,
                detail=check.detail or "",
            )
        )
    return rows


def _codes_text(codes: dict[str, int]) -> str:
    return ", ".join(f"{code}: {count:,}" for code, count in sorted(codes.items()))


def endpoint_rows(result: LoadTestResult) -> list[dict[str, str]]:
    """Gatling's per-request table: the whole scenario first, then each endpoint."""
    _, rate = units(result.protocol)

    def row(name: str, item: LoadTestResult | EndpointStats) -> dict[str, str]:
        c = request_cells(item)
        return {
            "name": name,
            **{k: c[k] for k in ("count", "failed", "error %")},
            rate: c["rate"],
            **{k: c[k] for k in ("min", "mean", "p50", "p95", "p99", "max")},
            "status codes": _codes_text(item.status_codes),
        }

    return [row("all", result), *(row(e.name, e) for e in result.endpoints)]


def _share(count: int, total: int | None) -> str:
    return f"{100.0 * count / total:.2f}%" if total else ""


def code_rows(result: LoadTestResult) -> tuple[list[CountRow], str | None]:
    if not result.status_codes:
        why = result.missing.get("statusCodes") or NO_CODES.get(result.protocol)
        return [], why or "the tool reported no status codes"
    total = sum(result.status_codes.values())
    rows = [
        CountRow(code, f"{count:,}", _share(count, total), CODE_CLASSES.get(code[:1], ""))
        for code, count in sorted(result.status_codes.items())
    ]
    return rows, None


def error_rows(result: LoadTestResult) -> list[CountRow]:
    total = result.total_requests
    ordered = sorted(result.errors.items(), key=lambda kv: -kv[1])
    return [CountRow(kind, f"{count:,}", _share(count, total)) for kind, count in ordered]


def pool_rows(result: LoadTestResult) -> list[tuple[str, str]]:
    pool = result.pool
    if pool is None:
        return []
    limits = {
        "max connections": pool.max_connections,
        "reserved connections": pool.reserved_connections,
        "pool size": pool.pool_size,
        "reserve pool": pool.reserve_pool,
        "pool mode": pool.pool_mode,
        "max client connections": pool.max_client_conn,
    }
    rows = [("source", f"{pool.source} {pool.server_version or ''} at {pool.server}".strip())]
    rows += [(label, str(value)) for label, value in limits.items() if value is not None]
    for name, figure in sorted(pool.summary.items()):
        rows.append((name, f"peak {fmt_num(figure.peak, 1)}, mean {fmt_num(figure.mean, 1)}"))
    if pool.wait_per_transaction is not None:
        rows.append(("wait per transaction", fmt_ms(pool.wait_per_transaction * 1000.0)))
    rows += [(f"{key} (not measured)", why) for key, why in sorted(pool.missing.items())]
    return rows


def raw_files(result: LoadTestResult, run_dir: Path) -> tuple[list[tuple[str, str]], str | None]:
    """(name, relative link) of the scenario's own files: they travel with the folder."""
    folder = Path(result.raw_output).parent if result.raw_output else run_dir / result.scenario
    root = run_dir.resolve()
    try:
        folder = folder.resolve()
        inside = folder.is_relative_to(root)
        names = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    except OSError:
        return [], "the scenario's folder is not beside this report"
    if not inside:
        return [], f"raw output is outside the report folder: {Path(result.raw_output or '').name}"
    links = [(p.name, quote(shown_path(str(p), root))) for p in names]
    return links, None


def cause_of(result: LoadTestResult) -> str | None:
    if result.status is Status.COMPLETED:
        return None
    return result.status_detail or f"status {result.status.value}"


def step_rows(result: LoadTestResult) -> list[dict[str, str]]:
    if len(result.steps) < 2:
        return []
    noun, rate = units(result.protocol)
    return [
        {
            "step": str(s.index),
            "load": f"{s.concurrency:,}",
            "seconds": f"{s.duration:.1f}",
            noun: f"{s.total_requests:,}",
            "failed": f"{s.failed_requests:,}",
            "throughput": fmt_num(s.throughput, 1, f" {rate}"),
            "p95": fmt_ms(s.response_time.p95),
            "p99": fmt_ms(s.response_time.p99),
        }
        for s in result.steps
    ]


def build_section(index: int, result: LoadTestResult, verdict: str, run_dir: Path) -> Section:
    noun, rate = units(result.protocol)
    codes, codes_note = code_rows(result)
    files, files_note = raw_files(result, run_dir)
    return Section(
        anchor=f"{index:02d}-{slug(result.scenario)}",
        scenario=result.scenario,
        tool=f"{result.tool} {result.tool_version or ''}".strip(),
        noun=noun,
        rate=rate,
        verdict=verdict,
        cause=cause_of(result),
        details=[(k, v) for k, v in summary_rows(result, run_dir) if k not in NOT_IN_DETAILS],
        sla=sla_rows(result),
        endpoints=endpoint_rows(result),
        codes=codes,
        codes_note=codes_note,
        errors=error_rows(result),
        pool=pool_rows(result),
        files=files,
        files_note=files_note,
        steps=step_rows(result),
        missing=sorted(result.missing.items()),
    )
