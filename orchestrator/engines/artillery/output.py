"""Artillery output -> LoadTestResult.

Two sources, read together for runs made by orchestrate:

* ``artillery run --output FILE``: exact counters (users, messages, requests, errors by
  code), aggregate and per-period (10 s) summaries. Its quantiles are sketches
  (``histograms`` is a copy of ``summaries``, no raw data) and its rates are averaged
  across periods and can be NaN, so counters are used and rates are computed here;
* our processor's per-worker files (``artillery-data/*.json``): every round trip / time to
  first byte in µs per second, merged into an exact HdrHistogram
  (``responseTime.source = "histogram"``) and the per-second time series.

A file from a run made elsewhere (``import_file``) has no exact data: latency comes
from Artillery's sketches (``source = "approximate"``) and the result says so in
``missing``. It may also come from Artillery's own ws engine, which measures no latency and
does not know which messages were answered.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from hdrh.histogram import HdrHistogram
from pydantic import BaseModel, ConfigDict

from orchestrator import histogram as hist
from orchestrator.models import (
    LoadTestResult,
    ResponseTime,
    TimeBucket,
    Transport,
    WebSocketStats,
    WorkloadModel,
)
from orchestrator.process import ToolRun
from orchestrator.redact import redact_url
from orchestrator.scenarios import Scenario
from parsers.common import judge, per_second, rate_percent, read_json, validated

TOOL = "artillery"
WS_LATENCY = (
    "artillery (orchestrate processor): WebSocket round trip, from sending a message to "
    "receiving the reply that echoes its id (first-in-first-out without an id), "
    "process.hrtime, recorded raw in µs"
)
HTTP_LATENCY = (
    "artillery: time to first byte (Artillery's http.response_time = "
    "timings.phases.firstByte: from the request being sent to the first response byte, "
    "excluding connect), in whole milliseconds (got's timings use Date.now(); 0 ms is "
    "recorded as 1 µs), recorded for every response by our afterResponse hook"
)
HTTP_LATENCY_SKETCH = (
    "artillery: time to first byte (timings.phases.firstByte, whole milliseconds), "
    "summarised by Artillery's sketches"
)
SKETCH = "Artillery's summaries are approximate sketches (quantiles estimated, not exact)"
ERROR_KINDS = {
    "ECONNREFUSED": "connection_refused",
    "ECONNRESET": "connection_reset",
    "EPIPE": "connection_reset",
    "ETIMEDOUT": "timeout",
    "ESOCKETTIMEDOUT": "timeout",
    "ws_reply_timeout": "timeout",
    "ws_closed": "connection_closed",
    "ENOTFOUND": "dns",
    "EAI_AGAIN": "dns",
}
_CODE_IN_MESSAGE = re.compile(r"\b(E[A-Z]{3,})\b")


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Summary(_Wire):
    min: float | None = None
    max: float | None = None
    count: int | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None


class Period(_Wire):
    counters: dict[str, float] = {}
    summaries: dict[str, Summary] = {}
    firstMetricAt: float | None = None  # noqa: N815 - Artillery's key
    lastMetricAt: float | None = None  # noqa: N815
    period: float | None = None


class Report(_Wire):
    aggregate: Period
    intermediate: list[Period] = []


class Second(_Wire):
    t: int
    requests: int
    errors: int
    concurrency: int
    values: list[tuple[int, int]]


class WorkerData(_Wire):
    version: int
    counters: dict[str, int]
    sessionsMs: list[tuple[int, int]]  # noqa: N815 - our processor's key
    seconds: list[Second]


def load_report(path: Path) -> Report:
    result: Report = validated(Report, read_json(path), path)
    return result


def load_worker_data(data_dir: Path) -> list[WorkerData]:
    out: list[WorkerData] = []
    for file in sorted(data_dir.glob("*.json")) if data_dir.is_dir() else []:
        out.append(validated(WorkerData, read_json(file), file))
    return out


def count(counters: dict[str, float], name: str) -> int:
    value = counters.get(name, 0)
    return 0 if value is None or math.isnan(value) else int(value)


def error_kinds(counters: dict[str, float]) -> dict[str, int]:
    """``errors.*`` by kind; a refused connect that Artillery's ws engine counts twice
    (``errors.ECONNREFUSED`` and ``errors.connect ECONNREFUSED host:port``) counts once."""
    raw = {k[len("errors.") :]: count(counters, k) for k in counters if k.startswith("errors.")}
    out: dict[str, int] = defaultdict(int)
    for key, value in raw.items():
        code = _CODE_IN_MESSAGE.search(key)
        if code and code.group(1) != key and code.group(1) in raw:
            continue  # the same failure, once as its message and once as its code
        kind = ERROR_KINDS.get(code.group(1) if code else key, ERROR_KINDS.get(key, key))
        out[kind] += value
    return {k: v for k, v in out.items() if v}


def summary_response_time(summary: Summary | None) -> ResponseTime:
    """Artillery's sketch summary (ms) as an approximate ResponseTime."""
    if summary is None or not summary.count:
        return ResponseTime()

    def clean(value: float | None) -> float | None:
        return None if value is None or math.isnan(value) else value

    return ResponseTime(
        min=clean(summary.min),
        max=clean(summary.max),
        mean=clean(summary.mean),
        p50=clean(summary.p50),
        p90=clean(summary.p90),
        p95=clean(summary.p95),
        p99=clean(summary.p99),
        p999=clean(summary.p999),
        source="approximate",
    )


def merge_workers(workers: list[WorkerData]) -> tuple[HdrHistogram, dict[int, Second]]:
    """Every recorded latency in one histogram, and the per-second records merged."""
    total = hist.new_histogram()
    by_second: dict[int, list[Second]] = defaultdict(list)
    for worker in workers:
        for second in worker.seconds:
            by_second[second.t].append(second)
            hist.add_buckets(total, second.values)
    merged = {
        t: Second(
            t=t,
            requests=sum(s.requests for s in items),
            errors=sum(s.errors for s in items),
            concurrency=sum(s.concurrency for s in items),
            values=[v for s in items for v in s.values],
        )
        for t, items in by_second.items()
    }
    return total, merged


def time_series(seconds: dict[int, Second], start: float) -> list[TimeBucket]:
    buckets: list[TimeBucket] = []
    for t in sorted(seconds):
        second = seconds[t]
        buckets.append(
            hist.time_bucket(
                round(max(0.0, t - start), 3),
                requests=second.requests,
                errors=second.errors,
                concurrency=second.concurrency,
                histogram=hist.from_buckets(second.values),
            )
        )
    return buckets


def period_series(report: Report, start_ms: float) -> list[TimeBucket]:
    """Artillery's own periods (imports): counts only, its quantiles are sketches."""
    buckets: list[TimeBucket] = []
    for period in report.intermediate:
        c = period.counters
        failed = sum(error_kinds(c).values())
        requests = count(c, "http.requests") or count(c, "websocket.messages_sent")
        at = period.firstMetricAt or period.period or start_ms
        buckets.append(
            TimeBucket(
                t=round(max(0.0, (at - start_ms) / 1000), 3), requests=requests, errors=failed
            )
        )
    return buckets


def session_lengths(workers: list[WorkerData]) -> ResponseTime | None:
    pairs = [(ms * 1000, n) for w in workers for ms, n in w.sessionsMs]
    return hist.summarize(hist.from_buckets(pairs), resolution_us=1000.0) if pairs else None


def http_counts(counters: dict[str, float]) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(total, successful, status codes, errors) of an HTTP run."""
    codes = {
        k.rsplit(".", 1)[1]: count(counters, k) for k in counters if k.startswith("http.codes.")
    }
    failed_status = sum(v for k, v in codes.items() if not k.isdigit() or int(k) >= 400)
    errors = error_kinds(counters)
    if failed_status:
        errors["non_2xx"] = failed_status
    no_response = sum(v for k, v in errors.items() if k != "non_2xx")
    total = max(count(counters, "http.requests"), count(counters, "http.responses") + no_response)
    return total, sum(codes.values()) - failed_status, codes, errors


def ws_stats(
    counters: dict[str, float], seconds: float, sessions: ResponseTime | None
) -> tuple[int, int, WebSocketStats]:
    """(total requests, successful, stats) of a WebSocket run: see the engine package."""
    if "orchestrate.ws.connections_attempted" in counters:
        attempted = count(counters, "orchestrate.ws.connections_attempted")
        failed = count(counters, "orchestrate.ws.connections_failed")
        opened = count(counters, "orchestrate.ws.connections_open")
        sent = count(counters, "orchestrate.ws.messages_sent")
        received = count(counters, "orchestrate.ws.messages_received")
        total = count(counters, "orchestrate.ws.round_trips") + failed
        successful = count(counters, "orchestrate.ws.replies")
    else:  # Artillery's own ws engine: a vuser is a connection, a request a message sent
        attempted = count(counters, "vusers.created")
        failed = count(counters, "vusers.failed")
        opened = attempted - failed
        sent = count(counters, "websocket.messages_sent")
        received = count(counters, "websocket.messages_received")
        total, successful = sent + failed, sent
    stats = WebSocketStats(
        connections_attempted=attempted,
        connections_open=opened,
        connections_failed=failed,
        messages_sent=sent,
        messages_received=received,
        message_rate=per_second(sent, seconds),
        session_length=sessions,
    )
    return total, successful, stats


def _epoch(ms: float | None, fallback: datetime) -> datetime:
    return fallback if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def build_result(
    report: Report,
    path: Path,
    workers: list[WorkerData],
    *,
    scenario: str,
    protocol: Transport,
    model: WorkloadModel,
    target: str,
    peak: int | None,
    run: ToolRun | None,
    tool_version: str | None,
) -> LoadTestResult:
    agg = report.aggregate
    c = agg.counters
    now = datetime.now(UTC)
    started = run.started if run else _epoch(agg.firstMetricAt, now)
    ended = run.ended if run else _epoch(agg.lastMetricAt, now)
    span = ((agg.lastMetricAt or 0) - (agg.firstMetricAt or 0)) / 1000
    duration = span if span > 0 else max(0.0, (ended - started).total_seconds())
    missing: dict[str, str] = {}

    exact, seconds = merge_workers(workers)
    if workers:
        # got's timings (HTTP) come from Date.now(): whole milliseconds.
        response = hist.summarize(exact, resolution_us=1.0 if protocol == "ws" else 1000.0)
        encoded = hist.encode(exact) if exact.get_total_count() else None
        first = min([*seconds, (agg.firstMetricAt or math.inf) / 1000], default=0.0)
        series = time_series(seconds, first)
        sessions = session_lengths(workers)
    else:
        name = "orchestrate.ws.rtt" if protocol == "ws" else "http.response_time"
        response = summary_response_time(agg.summaries.get(name))
        encoded, sessions = None, None
        series = period_series(report, agg.firstMetricAt or 0.0)
        missing["histogram"] = f"no exact latency data for this run; {SKETCH}"
        missing["timeSeries.p50"] = f"per-period quantiles left out: {SKETCH}"
        length = agg.summaries.get("vusers.session_length")
        sessions = summary_response_time(length) if length else None

    if protocol == "ws":
        total, successful, websocket = ws_stats(c, duration, sessions)
        codes: dict[str, int] = {}
        errors = error_kinds(c)
        measures = WS_LATENCY
        if not workers and "orchestrate.ws.round_trips" not in c:
            measures = "artillery ws engine: no latency measured"
            missing["responseTime"] = "Artillery's ws engine records no message latency"
            missing["successfulRequests"] = "the ws engine does not know which were answered"
    else:
        total, successful, codes, errors = http_counts(c)
        websocket = None
        measures = HTTP_LATENCY if workers else HTTP_LATENCY_SKETCH
    if response.p50 is None and "responseTime" not in missing:
        missing["responseTime"] = "no request completed, so there is no latency to report"
    if websocket is not None and websocket.session_length is None:
        missing["websocket.sessionLength"] = "no session ended normally"
    if workers:
        concurrency = max((s.concurrency for s in seconds.values()), default=0)
    else:
        concurrency = peak or 0
        missing["concurrency"] = "not measured: the number is the shape's peak, if known"
    status, detail = judge(total, successful, run, errors)
    return LoadTestResult(
        scenario=scenario,
        tool=TOOL,
        tool_version=tool_version,
        protocol=protocol,
        workload_model=model,
        latency_measures=measures,
        target=target,
        concurrency=concurrency,
        duration=round(duration, 3),
        total_requests=total,
        successful_requests=successful,
        failed_requests=total - successful,
        error_rate=rate_percent(total - successful, total),
        throughput=per_second(successful, duration),
        response_time=response,
        status_codes=codes,
        errors=errors,
        time_series=series,
        histogram=encoded,
        websocket=websocket,
        load_not_delivered=count(c, "vusers.skipped"),
        started_at=started,
        ended_at=ended,
        status=status,
        status_detail=detail,
        raw_output=str(path),
        missing=missing,
    )


def parse_output(
    scenario: Scenario,
    output_path: Path,
    data_dir: Path,
    *,
    run: ToolRun | None,
    tool_version: str | None,
) -> LoadTestResult:
    """A run made by orchestrate: Artillery's counters plus our processor's exact data.

    Artillery writes ``--output`` only when it ends normally; after Ctrl-C or a kill the
    processor's own data (flushed every second) still holds what was measured.
    """
    workers = load_worker_data(data_dir)
    # HTTP counts come from Artillery itself, so only WebSocket runs can be salvaged.
    salvaged = (
        scenario.protocol == "ws"
        and not output_path.exists()
        and bool(workers)
        and run is not None
        and not run.ok
    )
    report = report_from_workers(workers) if salvaged else load_report(output_path)
    target = scenario.ws_url if scenario.protocol == "ws" else scenario.base_url
    result = build_result(
        report,
        output_path,
        workers,
        scenario=scenario.name,
        protocol="ws" if scenario.protocol == "ws" else "http",
        model=scenario.shape.model,
        target=redact_url(target),
        peak=scenario.shape.peak,
        run=run,
        tool_version=tool_version,
    )
    if not workers:
        result.missing["histogram"] = f"the processor wrote no data in {data_dir}; {SKETCH}"
    if salvaged:
        result.missing["errors"] = (
            f"Artillery wrote no {output_path.name} (it was stopped): counts and latencies "
            "come from orchestrate's processor, error kinds are not known"
        )
    return result


def report_from_workers(workers: list[WorkerData]) -> Report:
    """Artillery's aggregate rebuilt from our processor's counters (no error kinds)."""
    counters: dict[str, float] = {}
    for worker in workers:
        for name, value in worker.counters.items():
            key = f"orchestrate.{name}"
            counters[key] = counters.get(key, 0) + value
    stamps = [second.t for worker in workers for second in worker.seconds]
    first = min(stamps) * 1000.0 if stamps else None
    last = (max(stamps) + 1) * 1000.0 if stamps else None
    return Report(aggregate=Period(counters=counters, firstMetricAt=first, lastMetricAt=last))


def import_file(
    path: Path, scenario_name: str = "imported", protocol: Transport | None = None
) -> LoadTestResult:
    """An ``artillery run --output`` file from a run made elsewhere (no exact data).

    The protocol is guessed from the counters unless given: WebSocket counters, or no
    ``http.*`` counter at all (a ws run whose every connection was refused has none).
    """
    report = load_report(path)
    c = report.aggregate.counters
    if protocol is None:
        is_ws = any(k.startswith(("websocket.", "orchestrate.ws.")) for k in c) or not any(
            k.startswith("http.") for k in c
        )
        protocol = "ws" if is_ws else "http"
    result = build_result(
        report,
        path,
        [],
        scenario=scenario_name,
        protocol=protocol,
        model="open",
        target="unknown (imported)",
        peak=None,
        run=None,
        tool_version=None,
    )
    result.missing["workloadModel"] = "Artillery schedules arrivals: assumed open"
    result.missing["target"] = "Artillery's output does not name the target"
    return result
