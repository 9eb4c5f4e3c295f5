"""k6 output -> LoadTestResult.

The full result comes from k6's raw ``--out json`` stream (every sample, streamed; see
:mod:`.stream`); the ``--summary-export`` file only cross-checks it and gives
k6's own run duration. ``orchestrate import --tool k6 FILE`` accepts either file:
:func:`import_file` tells them apart.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator import histogram as hdr
from orchestrator.engines.k6 import summary as k6_summary
from orchestrator.engines.k6.stream import Tally, read_raw
from orchestrator.engines.k6.tally import NameTally
from orchestrator.errors import ParseError
from orchestrator.flow_result import flow_stats
from orchestrator.models import (
    LoadTestResult,
    TimeBucket,
    Transport,
    WebSocketStats,
    WorkloadModel,
)
from orchestrator.process import ToolRun
from orchestrator.scenarios import Scenario
from parsers import build

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


def _span(tally: Tally) -> range:
    """The run's seconds (epoch), from the first sample to the last."""
    known = set(tally.seconds) | set(tally.concurrency)
    return range(min(known), max(known) + 1) if known else range(0)


def _time_series(
    span: range,
    seconds: dict[int, list[int]],
    percentiles: dict[int, tuple[float, float, float]],
    concurrency: dict[int, int] | None = None,
    histograms: dict[int, str] | None = None,
) -> list[TimeBucket]:
    """One bucket per second of ``span``, empty seconds included; ``histograms``: each
    second's encoded histogram (the run's series only)."""
    buckets: list[TimeBucket] = []
    level: int | None = None
    for sec in span:
        requests, errors = seconds.get(sec, (0, 0))
        # vus is a gauge sampled about once a second: a second without a sample keeps the level.
        level = concurrency.get(sec, level) if concurrency is not None else None
        p50, p95, p99 = percentiles.get(sec, (None, None, None))
        buckets.append(
            TimeBucket(
                t=float(sec - span.start),
                requests=requests,
                errors=errors,
                concurrency=level,
                p50=p50,
                p95=p95,
                p99=p99,
                histogram=histograms.get(sec) if histograms is not None else None,
            )
        )
    return buckets


def _endpoints(
    tally: Tally, span: range, scenario: Scenario | None, is_ws: bool
) -> list[build.EndpointTally]:
    """Each request name's tally (our scripts name each request after its endpoint, each
    WebSocket round trip after its flow message), in the scenario's order."""
    if tally.names_dropped or (is_ws and not tally.names and scenario is None):
        return []  # missing says why
    known = scenario.request_targets() if scenario is not None else {}
    # An endpoint of the scenario that got no request is there too, with its zeros.
    order = list(known) + sorted(set(tally.names) - known.keys())
    out: list[build.EndpointTally] = []
    for name in order:
        named = tally.names.get(name) or NameTally()
        method, path = known.get(name, (named.method, _path_of(name)))
        out.append(
            build.EndpointTally(
                name=name,
                method=method,
                path=path,
                counts=build.Counts(
                    total=named.total,
                    successful=named.successful,
                    completed=named.successful if is_ws else sum(named.status_codes.values()),
                ),
                histogram=named.latency,
                status_codes=dict(sorted(named.status_codes.items())),
                errors=dict(named.errors),
                time_series=_time_series(span, named.seconds, named.percentiles),
            )
        )
    return out


def _path_of(name: str) -> str | None:
    # k6's default name is the request's URL.
    if "://" not in name:
        return None
    parts = urlsplit(name)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _websocket_stats(tally: Tally, ours: bool) -> WebSocketStats:
    counters = tally.counters
    length = tally.session_length
    # Ours: the generated script's counters; else k6's own WebSocket counters.
    sent, received = (
        ("ws_messages_sent", "ws_messages_received")
        if ours
        else ("ws_msgs_sent", "ws_msgs_received")
    )
    return WebSocketStats(
        connections_attempted=counters["ws_sessions"],
        connections_open=counters["ws_opened"] if ours else None,
        connections_failed=tally.connect_failures if ours else None,
        messages_sent=counters[sent],
        messages_received=counters[received],
        session_length=hdr.summarize(length) if length.get_total_count() else None,
    )


def result_from_tally(
    tally: Tally,
    *,
    identity: build.Identity,
    duration: float | None,
    started: datetime,
    ended: datetime,
    run: ToolRun | None,
    missing: dict[str, str] | None = None,
    scenario: Scenario | None = None,
) -> LoadTestResult:
    missing = dict(missing or {})
    is_ws = identity.protocol == "ws"
    identity = replace(identity, concurrency=tally.vus_peak or tally.vus_max_peak)
    if tally.late_samples:
        missing["timeSeries.p50"] = (
            f"{tally.late_samples} samples arrived too far out of order for their second's "
            "percentiles (they are in the overall histogram)"
        )
    if identity.concurrency is None:
        missing["concurrency"] = "no vus samples in k6's output"
    if identity.workload_model == "open":
        not_delivered: int | None = tally.dropped
    else:
        not_delivered = None
        missing.setdefault("loadNotDelivered", NO_DROPS_CLOSED)
    websocket = None
    if is_ws:
        ours = bool(
            tally.counters["ws_opened"] or tally.counters["ws_replies_expected"] or tally.errors
        )
        websocket = _websocket_stats(tally, ours)
    truncated = f"k6's raw output is cut short ({tally.truncated}); the result holds what was read"
    hint = tally.error_messages.most_common(1)[0][0] if tally.error_messages else None
    span = _span(tally)
    if tally.names_dropped:
        missing["endpoints"] = tally.names_dropped
    elif not tally.names and is_ws and scenario is None:
        missing["endpoints"] = "the round trips are not tagged with their message's name"
    return build.result(
        identity,
        # A request that got no response has status "0" and no status code: HTTP requests
        # completed are those with a code; a WebSocket request completes with its reply.
        build.Counts(
            total=tally.total,
            successful=tally.successful,
            completed=tally.successful if is_ws else sum(tally.status_codes.values()),
        ),
        build.Latency(tally.latency, no_sample=build.NO_REPLY if is_ws else build.NO_RESPONSE),
        build.Timing(started, ended, duration),
        build.Outcome(
            run=run,
            cut_short=truncated if tally.truncated else None,
            failure_hint=f"k6: {hint}" if hint and not tally.truncated else None,
        ),
        build.Details(
            status_codes=dict(sorted(tally.status_codes.items())),
            errors=dict(tally.errors),
            time_series=_time_series(
                span, tally.seconds, tally.percentiles, tally.concurrency, tally.histograms
            ),
            websocket=websocket,
            load_not_delivered=not_delivered,
        ),
        missing=missing,
        endpoints=_endpoints(tally, span, scenario, is_ws),
    )


def make_identity(
    name: str,
    protocol: Transport,
    model: WorkloadModel,
    target: str,
    raw: Path,
    tool_version: str | None = None,
) -> build.Identity:
    """Who ran what: the same for a run, an import and a merge of shards."""
    return build.Identity(
        scenario=name,
        tool=TOOL,
        protocol=protocol,
        workload_model=model,
        latency_measures=WS_MEASURES if protocol == "ws" else HTTP_MEASURES,
        target=target,
        raw_output=raw,
        tool_version=tool_version,
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
    tally: Tally | None = None,
) -> LoadTestResult:
    """The result of a run prepared by the k6 adapter; ``tally``: the raw output as read
    while k6 wrote it, when that read was clean and complete (else the file is read now)."""
    if not raw.is_file():
        raise ParseError(str(raw), "open", f"k6 wrote no raw output ({run.describe_failure()})")
    partial = run.interrupted or run.timed_out
    if tally is None or partial:
        tally = read_raw(raw, partial_ok=partial)
    metrics = _read_checked_summary(summary, tally)
    duration = _duration(tally, metrics) or (run.elapsed if tally.total else None)
    target = scenario.ws_url if scenario.protocol == "ws" else scenario.base_url
    identity = make_identity(scenario.name, scenario.protocol, scenario.shape.model, target, raw)
    result = result_from_tally(
        tally,
        identity=replace(identity, tool_version=tool_version),
        duration=duration,
        started=run.started,
        ended=run.ended,
        run=run,
        scenario=scenario,
    )
    if scenario.flow is None:
        return result
    steps = [s.name for s in scenario.flow.steps]
    flow = flow_stats(steps, tally.flow_completed, tally.flow_failed, tally.flow_time)
    return result.model_copy(update={"flow": flow})


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
    protocol: Transport = "ws" if tally.is_ws else "http"
    identity = make_identity(_scenario_name(path), protocol, model, tally.target or "unknown", path)
    return result_from_tally(
        tally,
        identity=identity,
        duration=_duration(tally, metrics),
        started=started,
        ended=_stamp_time(tally.last_stamp) or started,
        run=None,
        missing=missing,
    )


def import_summary(path: Path) -> LoadTestResult:
    """A result from a ``--summary-export`` file alone: k6's summary numbers, no histogram."""
    metrics = k6_summary.read_summary(path)
    missing: dict[str, str] = {
        "errors": "a k6 summary export has no error kinds; import the raw --out json file",
        "statusCodes": "a k6 summary export has no status codes",
        "timeSeries": "a k6 summary export has no time series",
        "endpoints": "a k6 summary export has no per-endpoint numbers; import the raw file",
        "workloadModel": "not in a k6 summary export; assumed closed",
        "startedAt": "not in a k6 summary export; derived from the file's modification time",
    }
    is_ws = "ws_sessions" in metrics
    websocket = None
    if is_ws:
        response_time = k6_summary.trend_time(metrics, "ws_rtt", missing)
        counts = k6_summary.ws_counts(metrics)
        websocket = k6_summary.ws_stats(metrics)
    else:
        response_time = k6_summary.trend_time(metrics, "http_req_duration", missing)
        counts = k6_summary.http_counts(metrics, missing)
    duration = k6_summary.run_duration(metrics)
    ended = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    dropped = k6_summary.number(metrics, "dropped_iterations", "count")
    if dropped is None:
        missing["loadNotDelivered"] = "no dropped_iterations: none dropped, or a closed-model run"
    concurrency = k6_summary.number(metrics, "vus", "max") or k6_summary.number(
        metrics, "vus_max", "max"
    )
    identity = make_identity(
        _scenario_name(path), "ws" if is_ws else "http", "closed", "unknown", path
    )
    return build.result(
        replace(identity, concurrency=int(concurrency) if concurrency else None),
        counts,
        build.Latency(
            summary=response_time, no_sample=build.NO_REPLY if is_ws else build.NO_RESPONSE
        ),
        build.Timing(ended - timedelta(seconds=duration or 0.0), ended, duration),
        build.Outcome(),
        build.Details(
            websocket=websocket, load_not_delivered=None if dropped is None else int(dropped)
        ),
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
