"""Human-readable views of results: a console table and Markdown, built from one row model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.models import LoadTestResult, ResourceUsage, ResponseTime, Threshold
from orchestrator.sla import format_metric

MB = 1_000_000


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


def summary_rows(result: LoadTestResult) -> list[tuple[str, str]]:
    """(label, value) pairs shown for one result, in reading order."""
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
        (
            "requests",
            f"{fmt_int(result.total_requests)} total, {fmt_int(result.failed_requests)} failed",
        ),
        ("error rate", fmt_num(result.error_rate, 3, " %")),
        ("throughput", fmt_num(result.throughput, 1, " req/s")),
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
    rows.extend(("SLA", fmt_threshold(check)) for check in result.thresholds)
    if result.raw_output:
        rows.append(("raw output", result.raw_output))
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
                f"{within}, max throughput {fmt_num(limits.max_throughput, 1, ' req/s')}; "
                f"bottleneck: {limits.bottleneck or 'n/a'}",
            )
        )
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
                "(window p95 = highest per-second p95)",
            )
        )
    return rows


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


@dataclass
class VerdictRow:
    scenario: str
    tool: str
    status: str
    verdict: str
    checks: str


def verdict_rows(results: Sequence[LoadTestResult], skipped: dict[str, str]) -> list[VerdictRow]:
    rows = []
    for result in results:
        checks = result.thresholds
        if result.status.value != "completed":
            verdict = result.status.value.upper().replace("_", " ")
        elif any(c.passed is False for c in checks):
            verdict = "FAIL"
        elif any(c.passed is None for c in checks):
            verdict = "NOT MEASURED"
        else:
            verdict = "PASS"
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


def render_markdown(
    title: str,
    results: Sequence[LoadTestResult],
    skipped: dict[str, str] | None = None,
    suite_checks: Sequence[Threshold] = (),
) -> str:
    lines = [f"# {title}", ""]
    verdicts = verdict_rows(results, skipped or {})
    if len(verdicts) > 1 or suite_checks:
        lines += ["| scenario | tool | verdict | checks |", "|---|---|---|---|"]
        lines += [f"| {r.scenario} | {r.tool} | {r.verdict} | {r.checks} |" for r in verdicts]
        lines.append("")
        if suite_checks:
            lines += ["## Suite-wide", ""]
            lines += [f"- {fmt_threshold(c)}" for c in suite_checks]
            lines.append("")
    for result in results:
        lines += [f"## {result.scenario}", "", "| | |", "|---|---|"]
        lines += [
            f"| {label} | {value.replace('|', '/')} |" for label, value in summary_rows(result)
        ]
        lines += endpoint_markdown(result)
        if result.missing:
            lines += ["", "Not measured:", ""]
            lines += [f"- `{key}`: {why}" for key, why in sorted(result.missing.items())]
        lines.append("")
    return "\n".join(lines)
