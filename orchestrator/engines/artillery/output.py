"""Artillery output -> LoadTestResult.

Two sources, read together for runs made by orchestrate:

* ``artillery run --output FILE``: exact counters (users, messages, requests, errors by
  code), aggregate and per-period (10 s) summaries. Its quantiles are sketches
  (``histograms`` is a copy of ``summaries``, no raw data) and its rates are averaged
  across periods and can be NaN, so counters are used and rates are computed here;
* our processor's per-worker files (``artillery-data/*.json``, read by :mod:`.workers`):
  every round trip / time to first byte in µs, merged into an exact HdrHistogram
  (``responseTime.source = "histogram"``) and the per-second time series.

Both are handed to the one result builder (:mod:`parsers.build`).

A file from a run made elsewhere (``import_file``) has no exact data: latency comes
from Artillery's sketches (``source = "approximate"``) and the result says so in
``missing``. It may also come from Artillery's own ws engine, which measures no latency and
does not know which messages were answered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from orchestrator.engines.artillery.counters import ANSWERED_KINDS, count, error_kinds
from orchestrator.engines.artillery.workers import (
    WorkerData,
    endpoint_tallies,
    load_worker_data,
    merge_workers,
    session_lengths,
    time_series,
    worker_counters,
)
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
from parsers import build
from parsers.common import Wire, read_json, validated

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


class Summary(Wire):
    min: float | None = None
    max: float | None = None
    count: int | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None


class Period(Wire):
    counters: dict[str, float] = Field(default_factory=dict)
    summaries: dict[str, Summary] = Field(default_factory=dict)
    firstMetricAt: float | None = None  # noqa: N815 - Artillery's key
    lastMetricAt: float | None = None  # noqa: N815
    period: float | None = None


class Report(Wire):
    aggregate: Period
    intermediate: list[Period] = Field(default_factory=list)


def load_report(path: Path) -> Report:
    result: Report = validated(Report, read_json(path), path)
    return result


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


def http_counts(counters: dict[str, float]) -> tuple[build.Counts, dict[str, int], dict[str, int]]:
    """(counts, status codes, errors) of an HTTP run; every response has a code."""
    codes = {
        k.rsplit(".", 1)[1]: count(counters, k) for k in counters if k.startswith("http.codes.")
    }
    failed_status = sum(v for k, v in codes.items() if not k.isdigit() or int(k) >= 400)
    errors = error_kinds(counters)
    if failed_status:
        errors["non_2xx"] = failed_status
    no_response = sum(v for k, v in errors.items() if k not in ANSWERED_KINDS)
    completed = sum(codes.values())
    total = max(count(counters, "http.requests"), count(counters, "http.responses") + no_response)
    # A 2xx reply whose capture or expect check failed is answered, but not a success.
    checks = errors.get("capture_failed", 0) + errors.get("expect_failed", 0)
    successful = completed - failed_status - checks
    return build.Counts(total, successful, completed), codes, errors


def ws_stats(
    counters: dict[str, float], sessions: ResponseTime | None
) -> tuple[build.Counts, WebSocketStats]:
    """(counts, stats) of a WebSocket run: a request is a message that expects a reply."""
    if "orchestrate.ws.connections_attempted" in counters:
        attempted = count(counters, "orchestrate.ws.connections_attempted")
        failed = count(counters, "orchestrate.ws.connections_failed")
        opened = count(counters, "orchestrate.ws.connections_open")
        sent = count(counters, "orchestrate.ws.messages_sent")
        received = count(counters, "orchestrate.ws.messages_received")
        replies = count(counters, "orchestrate.ws.replies")
        total = count(counters, "orchestrate.ws.round_trips") + failed
        counts = build.Counts(total, successful=replies, completed=replies)
    else:  # Artillery's own ws engine: a vuser is a connection, a request a message sent
        attempted = count(counters, "vusers.created")
        failed = count(counters, "vusers.failed")
        opened = attempted - failed
        sent = count(counters, "websocket.messages_sent")
        received = count(counters, "websocket.messages_received")
        # It does not know which messages were answered: completed is unknown.
        counts = build.Counts(sent + failed, successful=sent, completed=None)
    stats = WebSocketStats(
        connections_attempted=attempted,
        connections_open=opened,
        connections_failed=failed,
        messages_sent=sent,
        messages_received=received,
        session_length=sessions,
    )
    return counts, stats


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
    known: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> LoadTestResult:
    """``known``: the scenario's endpoints (or messages) by name: their method and path."""
    agg = report.aggregate
    c = agg.counters
    now = datetime.now(UTC)
    started = run.started if run else _epoch(agg.firstMetricAt, now)
    ended = run.ended if run else _epoch(agg.lastMetricAt, now)
    span = ((agg.lastMetricAt or 0) - (agg.firstMetricAt or 0)) / 1000
    duration = span if span > 0 else max(0.0, (ended - started).total_seconds())
    missing: dict[str, str] = {}
    no_sample = build.NO_REPLY if protocol == "ws" else build.NO_RESPONSE

    exact, seconds = merge_workers(workers)
    endpoints: list[build.EndpointTally] = []
    if workers:
        # got's timings (HTTP) come from Date.now(): whole milliseconds.
        resolution = 1.0 if protocol == "ws" else 1000.0
        latency = build.Latency(exact, resolution_us=resolution, no_sample=no_sample)
        first = min([*seconds, (agg.firstMetricAt or math.inf) / 1000], default=0.0)
        series = time_series(seconds, first)
        endpoints = endpoint_tallies(workers, first, known or {}, resolution)
        sessions = session_lengths(workers)
        concurrency: int | None = max((s.concurrency for s in seconds.values()), default=0)
    else:
        name = "orchestrate.ws.rtt" if protocol == "ws" else "http.response_time"
        latency = build.Latency(
            summary=summary_response_time(agg.summaries.get(name)), no_sample=no_sample
        )
        series = period_series(report, agg.firstMetricAt or 0.0)
        missing["histogram"] = f"no exact latency data for this run; {SKETCH}"
        missing["timeSeries.p50"] = f"per-period quantiles left out: {SKETCH}"
        length = agg.summaries.get("vusers.session_length")
        sessions = summary_response_time(length) if length else None
        concurrency = peak
        missing["concurrency"] = "not measured: the number is the shape's peak, if known"
        missing["endpoints"] = f"no exact data for this run; {SKETCH}"

    codes: dict[str, int] = {}
    websocket = None
    if protocol == "ws":
        counts, websocket = ws_stats(c, sessions)
        errors = error_kinds(c)
        measures = WS_LATENCY
        if not workers and "orchestrate.ws.round_trips" not in c:
            measures = "artillery ws engine: no latency measured"
            missing["responseTime"] = "Artillery's ws engine records no message latency"
            missing["successfulRequests"] = "the ws engine does not know which were answered"
        if counts.completed is None:
            missing["throughput"] = "the ws engine does not know which messages were answered"
        if websocket.session_length is None:
            missing["websocket.sessionLength"] = "no session ended normally"
    else:
        counts, codes, errors = http_counts(c)
        measures = HTTP_LATENCY if workers else HTTP_LATENCY_SKETCH
    identity = build.Identity(
        scenario=scenario,
        tool=TOOL,
        tool_version=tool_version,
        protocol=protocol,
        workload_model=model,
        latency_measures=measures,
        target=target,
        concurrency=concurrency,
        raw_output=path,
    )
    return build.result(
        identity,
        counts,
        latency,
        build.Timing(started, ended, round(duration, 3)),
        build.Outcome(run=run),
        build.Details(
            status_codes=codes,
            errors=errors,
            time_series=series,
            websocket=websocket,
            load_not_delivered=count(c, "vusers.skipped"),
        ),
        missing=missing,
        endpoints=endpoints,
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
        known=scenario.request_targets(),
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
    counters, first, last = worker_counters(workers)
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
