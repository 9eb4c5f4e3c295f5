"""Human-readable views of results: a console table and Markdown, built from one row model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ExitCode
from orchestrator.models import (
    LoadTestResult,
    PoolMetrics,
    ResourceUsage,
    Threshold,
    Transport,
)
from orchestrator.sla import format_metric

MB = 1_000_000
# What one counted unit of work is, by transport: a WebSocket message is not a request.
UNITS: dict[str, tuple[str, str]] = {
    "http": ("requests", "req/s"),
    "ws": ("messages", "msg/s"),
    "postgres": ("transactions", "tx/s"),
}
# The overall verdict of a run, by exit code: (headline word, what it means).
OVERALL: dict[ExitCode, tuple[str, str]] = {
    ExitCode.OK: ("PASS", "every scenario met its SLA"),
    ExitCode.SLA_FAILED: ("FAIL", "an SLA was not met or could not be measured"),
    ExitCode.USAGE: ("ERROR", "bad configuration or usage"),
    ExitCode.TOOL_OR_TARGET_FAILED: (
        "FAIL",
        "a tool or the target failed, or a scenario could not run",
    ),
    ExitCode.INTERRUPTED: ("INTERRUPTED", "stopped before the end"),
}


def overall(exit_code: int) -> tuple[str, str]:
    """(headline word, meaning) of a run's exit code."""
    try:
        return OVERALL[ExitCode(exit_code)]
    except ValueError:
        return "FAIL", f"exit code {exit_code}"


def units(protocol: Transport | str) -> tuple[str, str]:
    """(what is counted, its rate unit): requests and req/s for HTTP, messages for ws..."""
    return UNITS.get(protocol, UNITS["http"])


def shown_path(path: str, base: Path | None) -> str:
    """``path`` relative to the report directory ``base`` when inside it: a report that is
    moved or mailed must not name the machine's folders."""
    if base is None:
        return path
    try:
        return Path(os.path.relpath(Path(path).resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return path


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 100:
        return f"{value:.2f} ms"
    return f"{value:,.0f} ms"


def fmt_num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def fmt_int(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def fmt_bytes(value: int | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    sign = "+" if signed and value >= 0 else ""
    return f"{sign}{value / MB:,.1f} MB"


def check_verdict(check: Threshold) -> str:
    if not check.applicable:
        return "NOT APPLICABLE"
    return {True: "PASS", False: "FAIL", None: "NOT MEASURED"}[check.passed]


def fmt_threshold(check: Threshold) -> str:
    verdict = check_verdict(check)
    limit = format_metric(check.metric, check.limit)
    measured = format_metric(check.metric, check.measured)
    detail = f"; {check.detail}" if check.detail and check.passed is None else ""
    return f"{verdict} {check.metric} {check.op} {limit} (measured {measured}{detail})"


def _tree_note(usage: ResourceUsage) -> str:
    """RSS summed over a process tree counts shared memory once per process: say so."""
    if usage.source == "docker":  # the cgroup counts each page once; show the limit instead
        return f" of {fmt_bytes(usage.memory_limit)} limit" if usage.memory_limit else ""
    most = max((s.processes or 1 for s in usage.series), default=1)
    if most <= 1:
        return ""
    return f" (RSS summed over up to {most} processes: memory they share counts in each)"


def _quota_note(usage: ResourceUsage) -> str:
    """A container's CPU limit and how often it held the container back."""
    if usage.cpu_limit_percent is None:
        return ""
    note = f" of {fmt_num(usage.cpu_limit_percent)} % limit"
    if usage.cpu_periods:
        note += f", throttled in {usage.cpu_throttled_periods} of {usage.cpu_periods} periods"
    return note


def shard_rows(result: LoadTestResult) -> list[tuple[str, str]]:
    """One row per k6 instance of a sharded run (or merged input), its own counts and CPU."""
    rows = []
    for shard in result.shards:
        where = ", ".join(part for part in (shard.segment, shard.host) if part)
        gen = shard.generator
        cpu = ""
        if gen is not None:
            mean, most = fmt_num(gen.cpu_percent_mean), fmt_num(gen.cpu_percent_max)
            cpu = f", k6 cpu mean {mean} %, max {most} %"
        flag = "  SATURATED: this shard's numbers measured its k6" if shard.saturated else ""
        status = "" if shard.status.value == "completed" else f", {shard.status.value}"
        rows.append(
            (
                f"shard {shard.index} ({where})",
                f"{fmt_int(shard.total_requests)} req, {fmt_int(shard.failed_requests)} failed, "
                f"{fmt_num(shard.throughput, 1, ' req/s')}{cpu}{status}{flag}",
            )
        )
    return rows


def summary_rows(result: LoadTestResult, base: Path | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs shown for one result, in reading order; paths relative to
    ``base`` (the report directory) when given."""
    noun, rate = units(result.protocol)
    rt = result.response_time
    latency_note = "" if rt.source in (None, "histogram") else f" ({rt.source})"
    rows = [
        ("scenario", f"{result.scenario} ({result.tool} {result.tool_version or ''})".strip()),
        (
            "status",
            result.status.value + (f": {result.status_detail}" if result.status_detail else ""),
        ),
        ("target", result.target),
        (
            "load",
            f"{result.concurrency} {'users' if result.workload_model == 'closed' else 'peak rate'}"
            f", {result.duration:.1f} s, {result.workload_model} model",
        ),
        (noun, f"{fmt_int(result.total_requests)} total, {fmt_int(result.failed_requests)} failed"),
        ("error rate", fmt_num(result.error_rate, 3, " %")),
        ("throughput", fmt_num(result.throughput, 1, f" {rate}")),
        (
            "latency" + latency_note,
            f"p50 {fmt_ms(rt.p50)}  p95 {fmt_ms(rt.p95)}  p99 {fmt_ms(rt.p99)}  "
            f"max {fmt_ms(rt.max)}",
        ),
    ]
    rows.extend(finding_rows(result))
    if result.errors:
        rows.append(("errors", ", ".join(f"{k}: {v:,}" for k, v in sorted(result.errors.items()))))
    if result.websocket is not None:
        ws = result.websocket
        rows.append(
            (
                "websocket",
                f"{fmt_int(ws.connections_attempted)} connections ({fmt_int(ws.connections_failed)}"
                f" failed), {fmt_int(ws.messages_sent)} sent / {fmt_int(ws.messages_received)} "
                f"received, {fmt_num(ws.message_rate, 1, ' msg/s')}",
            )
        )
    if result.load_not_delivered:
        rows.append(
            ("not delivered", f"{result.load_not_delivered:,} (the tool could not keep up)")
        )
    usage = result.resource_usage
    if usage is not None:
        rows.append(
            (
                "target memory",
                f"{fmt_bytes(usage.memory_start)} -> {fmt_bytes(usage.memory_end)} "
                f"({fmt_bytes(usage.memory_delta, signed=True)}), "
                f"peak {fmt_bytes(usage.memory_peak)}{_tree_note(usage)}",
            )
        )
        rows.append(
            (
                "target cpu",
                f"mean {fmt_num(usage.cpu_percent_mean)} %, max {fmt_num(usage.cpu_percent_max)} %"
                + _quota_note(usage),
            )
        )
    elif "resourceUsage" in result.missing:
        rows.append(("target resources", "not sampled: " + result.missing["resourceUsage"]))
    if result.generator is not None:
        gen = result.generator
        flag = "  SATURATED: these numbers measured the load generator" if gen.saturated else ""
        rows.append(
            (
                "generator cpu",
                f"mean {fmt_num(gen.cpu_percent_mean)} %, max {fmt_num(gen.cpu_percent_max)} % "
                f"of {gen.cpu_capacity_percent:.0f} %{flag}",
            )
        )
    rows.extend(shard_rows(result))
    rows.extend(("SLA", fmt_threshold(check)) for check in result.thresholds)
    if result.raw_output:
        rows.append(("raw output", shown_path(result.raw_output, base)))
    return rows


def finding_rows(result: LoadTestResult) -> list[tuple[str, str]]:
    """Capacity limits (a stepped run) and recovery (after a spike), when analysed."""
    rows: list[tuple[str, str]] = []
    limits = result.capacity_limits
    if limits is not None:
        users = "users" if result.workload_model == "closed" else "arrivals/s"
        within = (
            f"{limits.max_concurrency:,} {users} within the error limit"
            if limits.max_concurrency is not None
            else f"no step within the error limit ({users})"
        )
        rows.append(
            (
                "capacity limits",
                f"{within}, max throughput "
                f"{fmt_num(limits.max_throughput, 1, ' ' + units(result.protocol)[1])}; "
                f"bottleneck: {limits.bottleneck or 'n/a'}",
            )
        )
    rows.extend(database_rows(result))
    recovery = result.recovery
    if recovery is not None:
        verdict = "recovered" if recovery.recovered else "NOT recovered"
        when = (
            f" {recovery.seconds_to_recover:.1f} s after the drop"
            if recovery.seconds_to_recover is not None
            else ""
        )
        rows.append(
            (
                "recovery",
                f"{verdict}{when}: p95 baseline {fmt_ms(recovery.baseline_p95)}, spike "
                f"{fmt_ms(recovery.spike_p95)}, after {fmt_ms(recovery.recovered_p95)}, "
                f"errors after {fmt_num(recovery.recovery_error_rate, 2, ' %')} "
                + (
                    "(p95 from merged per-second histograms)"
                    if recovery.method == "histograms"
                    else "(upper bound: window p95 = highest per-second p95)"
                ),
            )
        )
    return rows


def _peak(pool: PoolMetrics, figure: str) -> float | None:
    found = pool.summary.get(figure)
    return found.peak if found is not None else None


def _pool_text(pool: PoolMetrics) -> str:
    """Peaks of the pool while the load ran, and the monitor's own connection."""

    def peak(figure: str) -> str:
        return fmt_num(_peak(pool, figure), 0)

    if pool.source == "pgbouncer":
        wait = _peak(pool, "maxWait")
        per_tx = pool.wait_per_transaction
        text = (
            f"PgBouncer {pool.server_version or ''} pool_size {pool.pool_size} "
            f"({pool.pool_mode} mode): server connections peak {peak('totalConnections')}, "
            f"active peak {peak('activeConnections')} "
            f"({fmt_num(_peak(pool, 'utilizationPercent'))} %), waiting clients peak "
            f"{peak('waitingClients')}, longest wait {fmt_ms(None if wait is None else wait * 1e3)}"
            f", wait per transaction {fmt_ms(None if per_tx is None else per_tx * 1e3)}; "
            "the monitor's admin-console connection is left out"
        )
    else:
        free = (
            pool.max_connections - pool.reserved_connections
            if pool.max_connections is not None and pool.reserved_connections is not None
            else None
        )
        text = (
            f"PostgreSQL {pool.server_version or ''}: connections peak "
            f"{peak('totalConnections')} of {fmt_int(free)} free slots "
            f"({fmt_num(_peak(pool, 'utilizationPercent'))} %), active peak "
            f"{peak('activeConnections')}, idle in transaction peak "
            f"{peak('idleInTransaction')}, waiting on locks peak {peak('waitingOnLock')}; "
            f"max_connections {fmt_int(pool.max_connections)} with "
            f"{fmt_int(pool.reserved_connections)} reserved, and {pool.monitor_connections} "
            "taken by the monitor (left out of the figures)"
        )
    if "series" in pool.missing:
        text += f"; {pool.missing['series']}"
    return text


def database_rows(result: LoadTestResult) -> list[tuple[str, str]]:
    """The connection pool while the load ran, and the limit a stepped run found."""
    rows: list[tuple[str, str]] = []
    if result.pool is not None:
        rows.append(("pool", _pool_text(result.pool)))
    limit = result.database_limit
    if limit is not None:
        held = (
            f"{limit.max_database_connections} clients held"
            if limit.max_database_connections is not None
            else "no step held"
        )
        bound = " (a lower bound: no step failed)" if limit.first_failing is None else ""
        rows.append(("database limit", f"{held}{bound}; {limit.evidence}"))
    return rows


@dataclass
class VerdictRow:
    scenario: str
    tool: str
    status: str
    verdict: str
    checks: str


def verdict_label(result: LoadTestResult) -> str:
    """PASS, FAIL, NOT MEASURED, or the run's status (TOOL FAILED, INTERRUPTED, ...)."""
    checks = result.thresholds
    if result.status.value != "completed":
        return result.status.value.upper().replace("_", " ")
    if any(c.passed is False for c in checks):
        return "FAIL"
    if any(c.passed is None for c in checks):
        return "NOT MEASURED"
    return "PASS"


def verdict_rows(results: Sequence[LoadTestResult], skipped: dict[str, str]) -> list[VerdictRow]:
    rows = []
    for result in results:
        checks = result.thresholds
        verdict = verdict_label(result)
        rows.append(
            VerdictRow(
                result.scenario,
                result.tool,
                result.status.value,
                verdict,
                "; ".join(fmt_threshold(c) for c in checks) or "no thresholds",
            )
        )
    rows.extend(VerdictRow(name, "-", "skipped", "SKIPPED", why) for name, why in skipped.items())
    return rows
