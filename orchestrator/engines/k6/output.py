"""k6 output -> LoadTestResult.

The full result comes from k6's raw ``--out json`` stream (every sample, streamed; see
:mod:`.stream`); the ``--summary-export`` file only cross-checks it and gives
k6's own run duration. ``orchestrate import --tool k6 FILE`` accepts either file:
:func:`import_file` tells them apart.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator import histogram as hdr
from orchestrator.engines.k6 import summary as k6_summary
from orchestrator.engines.k6.stream import Tally, read_raw
from orchestrator.errors import ParseError
from orchestrator.models import (
    LoadTestResult,
    ResponseTime,
    Status,
    TimeBucket,
    Transport,
    WebSocketStats,
    WorkloadModel,
)
from orchestrator.process import ToolRun
from orchestrator.redact import redact_url
from orchestrator.scenarios import Scenario
from parsers.common import judge, per_second, rate_percent

LOG = logging.getLogger(__name__)

TOOL = "k6"
HTTP_MEASURES = (
    "k6 http_req_duration = sending + waiting + receiving of each request that got a "
    "response (non-2xx included); DNS, connect and TLS set-up are excluded; attempts that "
    "got no response (refused, timed out) are errors, not latencies"
)
WS_MEASURES = (
    "round trip from sending a WebSocket message to receiving its reply (matched by the "
    "echoed id, else the next message) as seen by the k6 script's event loop, timed with "
    "k6's monotonic run clock (exec.instance.currentTestRunDuration, ~1 µs); the "
    "handshake is excluded"
)
NO_DROPS_CLOSED = "closed model: each k6 VU starts its next iteration when one ends; none drop"


def _stamp_time(stamp: str | None) -> datetime | None:
    return None if stamp is None else datetime.fromisoformat(stamp).astimezone(UTC)


def _time_series(tally: Tally) -> list[TimeBucket]:
    """One bucket per second from the first sample to the last, empty seconds included."""
    known = set(tally.seconds) | set(tally.concurrency)
    if not known:
        return []
    first, last = min(known), max(known)
    buckets: list[TimeBucket] = []
    level: int | None = None
    for sec in range(first, last + 1):
        requests, errors = tally.seconds.get(sec, (0, 0))
        # vus is a gauge sampled about once a second: a second without a sample keeps the level.
        level = tally.concurrency.get(sec, level)
        p50, p95, p99 = tally.percentiles.get(sec, (None, None, None))
        buckets.append(
            TimeBucket(
                t=float(sec - first),
                requests=requests,
                errors=errors,
                concurrency=level,
                p50=p50,
                p95=p95,
                p99=p99,
            )
        )
    return buckets


def _websocket_stats(tally: Tally, duration: float | None, ours: bool) -> WebSocketStats:
    counters = tally.counters
    sent = counters["ws_messages_sent"] if ours else counters["ws_msgs_sent"]
    received = counters["ws_messages_received"] if ours else counters["ws_msgs_received"]
    length = tally.session_length
    return WebSocketStats(
        connections_attempted=counters["ws_sessions"],
        connections_open=counters["ws_opened"] if ours else None,
        connections_failed=tally.connect_failures if ours else None,
        messages_sent=sent,
        messages_received=received,
        message_rate=per_second(sent, duration or 0.0),
        session_length=hdr.summarize(length) if length.get_total_count() else None,
    )


def result_from_tally(
    tally: Tally,
    *,
    scenario_name: str,
    protocol: Transport,
    workload_model: WorkloadModel,
    target: str,
    duration: float | None,
    started: datetime,
    ended: datetime,
    concurrency: int | None,
    run: ToolRun | None,
    raw_path: Path,
    tool_version: str | None = None,
    missing: dict[str, str] | None = None,
) -> LoadTestResult:
    missing = dict(missing or {})
    ours = protocol == "ws" and bool(
        tally.counters["ws_opened"] or tally.counters["ws_replies_expected"] or tally.errors
    )
    resolution = 1.0
    if tally.latency.get_total_count():
        response_time = hdr.summarize(tally.latency, resolution_us=resolution)
        encoded: str | None = hdr.encode(tally.latency)
    else:
        response_time = ResponseTime(source="histogram", resolution_us=resolution)
        missing["responseTime"] = (
            "no reply was received" if protocol == "ws" else "no request got a response"
        )
        encoded = None
    if tally.late_samples:
        missing["timeSeries.p50"] = (
            f"{tally.late_samples} samples arrived too far out of order for their second's "
            "percentiles (they are in the overall histogram)"
        )
    if duration is None:
        missing["throughput"] = "no run duration in k6's output"
    if concurrency is None:
        missing["concurrency"] = "no vus samples in k6's output"
    failed = tally.total - tally.successful
    errors = dict(tally.errors)
    status, detail = judge(tally.total, tally.successful, run, errors)
    if tally.truncated:
        note = f"k6's raw output is cut short ({tally.truncated}); the result holds what was read"
        detail = f"{detail}; {note}" if detail else note
        if status is Status.COMPLETED:
            status = Status.TOOL_FAILED
    elif status is Status.TARGET_FAILED and tally.error_messages:
        detail = f"{detail}; k6: {tally.error_messages.most_common(1)[0][0]}"
    if workload_model == "open":
        not_delivered: int | None = tally.dropped
    else:
        not_delivered = None
        missing.setdefault("loadNotDelivered", NO_DROPS_CLOSED)
    return LoadTestResult(
        scenario=scenario_name,
        tool=TOOL,
        tool_version=tool_version,
        protocol=protocol,
        workload_model=workload_model,
        latency_measures=WS_MEASURES if protocol == "ws" else HTTP_MEASURES,
        target=redact_url(target),
        concurrency=concurrency or 0,
        duration=duration or 0.0,
        total_requests=tally.total,
        successful_requests=tally.successful,
        failed_requests=failed,
        error_rate=rate_percent(failed, tally.total),
        throughput=per_second(tally.total, duration or 0.0),
        response_time=response_time,
        status_codes=dict(sorted(tally.status_codes.items())),
        errors=errors,
        time_series=_time_series(tally),
        histogram=encoded,
        websocket=_websocket_stats(tally, duration, ours) if protocol == "ws" else None,
        load_not_delivered=not_delivered,
        started_at=started,
        ended_at=ended,
        status=status,
        status_detail=detail,
        raw_output=str(raw_path),
        missing=missing,
    )


def _duration(tally: Tally, metrics: k6_summary.Metrics | None) -> float | None:
    """k6's own run duration (summary), else the span of the samples."""
    if metrics is not None:
        found = k6_summary.run_duration(metrics)
        if found:
            return found
    first, last = _stamp_time(tally.first_stamp), _stamp_time(tally.last_stamp)
    if first is None or last is None or last <= first:
        return None
    return (last - first).total_seconds()


def _read_checked_summary(path: Path | None, tally: Tally) -> k6_summary.Metrics | None:
    if path is None:
        return None
    try:
        metrics = k6_summary.read_summary(path)
    except ParseError as exc:
        LOG.warning("ignoring k6 summary: %s", exc)
        return None
    disagreement = k6_summary.cross_check(metrics, tally.total, tally.is_ws)
    if disagreement:
        LOG.warning("%s", disagreement)
    return metrics


def parse_output(
    raw: Path,
    summary: Path | None,
    *,
    scenario: Scenario,
    run: ToolRun,
    tool_version: str | None,
) -> LoadTestResult:
    """The result of a run prepared by the k6 adapter."""
    if not raw.is_file():
        raise ParseError(str(raw), "open", f"k6 wrote no raw output ({run.describe_failure()})")
    partial = run.interrupted or run.timed_out
    tally = read_raw(raw, partial_ok=partial)
    metrics = _read_checked_summary(summary, tally)
    duration = _duration(tally, metrics) or (run.elapsed if tally.total else None)
    target = scenario.ws_url if scenario.protocol == "ws" else scenario.base_url
    return result_from_tally(
        tally,
        scenario_name=scenario.name,
        protocol=scenario.protocol,
        workload_model=scenario.shape.model,
        target=target,
        duration=duration,
        started=run.started,
        ended=run.ended,
        concurrency=tally.vus_peak or tally.vus_max_peak,
        run=run,
        raw_path=raw,
        tool_version=tool_version,
    )


def _scenario_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".json", ".ndjson"):
        name = name.removesuffix(suffix)
    return name or "k6"


def import_raw(path: Path, summary: Path | None = None) -> LoadTestResult:
    """A full result from a raw k6 ``--out json`` file (.json or .gz) of any k6 run."""
    tally = read_raw(path)
    metrics = _read_checked_summary(summary, tally)
    missing: dict[str, str] = {}
    if tally.dropped_seen:
        model: WorkloadModel = "open"
    else:
        model = "closed"
        missing["workloadModel"] = "not in k6's output; no dropped_iterations, so assumed closed"
    started = _stamp_time(tally.first_stamp) or datetime.now(UTC)
    duration = _duration(tally, metrics)
    return result_from_tally(
        tally,
        scenario_name=_scenario_name(path),
        protocol="ws" if tally.is_ws else "http",
        workload_model=model,
        target=tally.target or "unknown",
        duration=duration,
        started=started,
        ended=_stamp_time(tally.last_stamp) or started,
        concurrency=tally.vus_peak or tally.vus_max_peak,
        run=None,
        raw_path=path,
        missing=missing,
    )


def import_summary(path: Path) -> LoadTestResult:
    """A result from a ``--summary-export`` file alone: k6's summary numbers, no histogram."""
    metrics = k6_summary.read_summary(path)
    missing: dict[str, str] = {
        "errors": "a k6 summary export has no error kinds; import the raw --out json file",
        "statusCodes": "a k6 summary export has no status codes",
        "timeSeries": "a k6 summary export has no time series",
        "workloadModel": "not in a k6 summary export; assumed closed",
        "startedAt": "not in a k6 summary export; derived from the file's modification time",
    }
    is_ws = "ws_sessions" in metrics
    if is_ws:
        response_time = k6_summary.trend_time(metrics, "ws_rtt", missing)
        successful = int(k6_summary.number(metrics, "ws_rtt", "count") or 0)
        failed = int(k6_summary.number(metrics, "ws_failures", "count") or 0)
        total = successful + failed
    else:
        response_time = k6_summary.trend_time(metrics, "http_req_duration", missing)
        total = int(k6_summary.number(metrics, "http_reqs", "count") or 0)
        failed_or_none = k6_summary.failed_requests(metrics)
        if failed_or_none is None:
            missing["failedRequests"] = "the summary has no http_req_failed metric"
        failed = failed_or_none or 0
        successful = total - failed
    duration = k6_summary.run_duration(metrics)
    ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    dropped = k6_summary.number(metrics, "dropped_iterations", "count")
    if dropped is None:
        missing["loadNotDelivered"] = "no dropped_iterations: none dropped, or a closed-model run"
    concurrency = k6_summary.number(metrics, "vus", "max") or k6_summary.number(
        metrics, "vus_max", "max"
    )
    status, detail = judge(total, successful, None, {"failed": failed})
    websocket = None
    if is_ws:
        ours = "ws_messages_sent" in metrics
        sent = k6_summary.number(metrics, "ws_messages_sent" if ours else "ws_msgs_sent", "count")
        received_name = "ws_messages_received" if ours else "ws_msgs_received"
        websocket = WebSocketStats(
            connections_attempted=int(k6_summary.number(metrics, "ws_sessions", "count") or 0),
            connections_open=int(k6_summary.number(metrics, "ws_opened", "count") or 0)
            if ours
            else None,
            messages_sent=None if sent is None else int(sent),
            messages_received=int(k6_summary.number(metrics, received_name, "count") or 0),
            message_rate=None if sent is None else per_second(int(sent), duration or 0.0),
        )
    return LoadTestResult(
        scenario=_scenario_name(path),
        tool=TOOL,
        protocol="ws" if is_ws else "http",
        workload_model="closed",
        latency_measures=WS_MEASURES if is_ws else HTTP_MEASURES,
        target="unknown",
        concurrency=int(concurrency or 0),
        duration=duration or 0.0,
        total_requests=total,
        successful_requests=successful,
        failed_requests=failed,
        error_rate=rate_percent(failed, total),
        throughput=per_second(total, duration or 0.0),
        response_time=response_time,
        websocket=websocket,
        load_not_delivered=None if dropped is None else int(dropped),
        started_at=ended - timedelta(seconds=duration or 0.0),
        ended_at=ended,
        status=status,
        status_detail=detail,
        raw_output=str(path),
        missing=missing,
    )


def is_raw_output(path: Path) -> bool:
    """A raw ``--out json`` stream (gzip or NDJSON) rather than a summary export."""
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise ParseError(str(path), "open", exc.strerror or str(exc)) from exc
    if head.startswith(b"\x1f\x8b"):
        return True
    stripped = head.lstrip()
    return stripped.startswith((b'{"type":"Metric"', b'{"metric":"'))


def import_file(path: Path) -> LoadTestResult:
    """``orchestrate import --tool k6 FILE``: a raw output or a summary export."""
    return import_raw(path) if is_raw_output(path) else import_summary(path)
