"""k6's ``--summary-export`` JSON: a cross-check for the raw stream, or a result of its own.

Semantics seen on k6 1.1.0: trends hold avg/min/med/max/p(90)/p(95) (plus whatever
``summaryTrendStats`` asked for); counters hold count/rate; for the rate metric
``http_req_failed`` ``passes`` counts FAILED requests (and ``fails`` the good ones); a
threshold shown ``false`` did NOT fail. There is no run duration, but every counter's
``count / rate`` is k6's own test-run duration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import ParseError
from orchestrator.models import ResponseTime, WebSocketStats
from parsers.build import Counts
from parsers.common import read_json

Metrics = dict[str, dict[str, Any]]

# Our ResponseTime field -> k6 trend stat name.
TREND_FIELDS = {
    "min": "min",
    "max": "max",
    "mean": "avg",
    "p50": "med",
    "p90": "p(90)",
    "p95": "p(95)",
    "p99": "p(99)",
    "p999": "p(99.9)",
}
DURATION_COUNTERS = ("http_reqs", "iterations", "ws_sessions", "data_sent", "data_received")


def read_summary(path: Path) -> Metrics:
    data = read_json(path)
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict) or not all(isinstance(v, dict) for v in metrics.values()):
        raise ParseError(str(path), "metrics", "no 'metrics' object: not a k6 --summary-export")
    return metrics


def number(metrics: Metrics, name: str, stat: str) -> float | None:
    value = metrics.get(name, {}).get(stat)
    return float(value) if isinstance(value, int | float) else None


def run_duration(metrics: Metrics) -> float | None:
    """k6's test-run duration in seconds, recovered from any counter's count / rate."""
    for name in DURATION_COUNTERS:
        count, rate = number(metrics, name, "count"), number(metrics, name, "rate")
        if count and rate:
            return count / rate
    return None


def trend_time(metrics: Metrics, name: str, missing: dict[str, str]) -> ResponseTime:
    """A latency summary (ms) from a k6 trend, saying which statistics it lacks."""
    stats = metrics.get(name, {})
    values = {key: number(metrics, name, stat) for key, stat in TREND_FIELDS.items()}
    for key, stat in TREND_FIELDS.items():
        if values[key] is None:
            missing[f"responseTime.{key}"] = (
                f"k6's summary of {name} has no {stat!r} (add it to summaryTrendStats)"
                if stats
                else f"the summary has no {name} metric"
            )
    missing["responseTime.stdev"] = "k6 summaries give no standard deviation"
    missing["histogram"] = "a k6 summary export has no per-sample data; import the raw --out json"
    return ResponseTime(source="tool_summary", **values)


def http_counts(metrics: Metrics, missing: dict[str, str]) -> Counts:
    """HTTP requests by outcome. ``passes`` of http_req_failed (the rate of failures) are the
    FAILED requests; which of them got a response (a 5xx) the summary does not say."""
    total = int(number(metrics, "http_reqs", "count") or 0)
    passes = number(metrics, "http_req_failed", "passes")
    if passes is None:
        missing["failedRequests"] = "the summary has no http_req_failed metric"
    failed = int(passes or 0)
    if failed:
        missing["throughput"] = (
            "a k6 summary export does not say which failed requests got a response (a 5xx) "
            "and which got none (refused, timed out); import the raw --out json file"
        )
    return Counts(total, successful=total - failed, completed=None if failed else total)


def ws_counts(metrics: Metrics) -> Counts:
    """Round trips (a message and its reply) and failures of our WebSocket script."""
    replies = int(number(metrics, "ws_rtt", "count") or 0)
    failed = int(number(metrics, "ws_failures", "count") or 0)
    return Counts(replies + failed, successful=replies, completed=replies)


def ws_stats(metrics: Metrics) -> WebSocketStats:
    """Connections and messages; ours (the generated script) or k6's own counters."""
    ours = "ws_messages_sent" in metrics
    sent = number(metrics, "ws_messages_sent" if ours else "ws_msgs_sent", "count")
    received = number(metrics, "ws_messages_received" if ours else "ws_msgs_received", "count")
    opened = int(number(metrics, "ws_opened", "count") or 0)
    return WebSocketStats(
        connections_attempted=int(number(metrics, "ws_sessions", "count") or 0),
        connections_open=opened if ours else None,
        messages_sent=None if sent is None else int(sent),
        messages_received=int(received or 0),
    )


def cross_check(metrics: Metrics, total: int, is_ws: bool) -> str | None:
    """A note when the summary disagrees with what the raw stream held."""
    if is_ws:
        return None
    counted = number(metrics, "http_reqs", "count")
    if counted is not None and int(counted) != total:
        return f"k6's summary counts {int(counted)} requests, the raw output {total}"
    return None
