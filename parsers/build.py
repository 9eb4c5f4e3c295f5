"""The one place a :class:`LoadTestResult` is made: engines hand over what they counted.

Every engine's parser (and the runner, for output it could not read) calls :func:`result`
with what its tool measured -- counts, a latency histogram or the tool's own summary,
per-second buckets, steps, status codes, error kinds, WebSocket counters, timing and the
reasons for what its source cannot give. Only this module derives from them:

* ``failedRequests = totalRequests - successfulRequests``;
* ``errorRate = failedRequests / totalRequests * 100`` (None, with a reason, when no
  request was made);
* ``throughput = completed / duration``: **completed requests per second**, the same for
  every engine. A request is *completed* when it got a response, whatever its status: an
  HTTP response of any code (a 500 included), a WebSocket reply, a transaction the database
  ran (committed or ended by an SQL error). A request refused, reset or timed out before
  any response is not completed. None, with a reason, when the source cannot tell;
* the latency summary, read from the histogram of every sample (``source="histogram"``)
  or, when the tool keeps none, the tool's summary as given (``tool_summary`` or
  ``approximate``); no sample means ``responseTime`` is missing, never 0;
* the step summaries and the per-endpoint numbers (``endpoints``: the same rules per step
  and per endpoint, over the run's duration) and ``websocket.messageRate``;
* the status, through :func:`parsers.common.judge` plus what the tool's own output says
  (interrupted, cut short, a verdict made before any load);
* ``missing``: every field left null, with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hdrh.histogram import HdrHistogram

from orchestrator import histogram as hist
from orchestrator.models import (
    EndpointStats,
    LoadTestResult,
    ResponseTime,
    Status,
    StepSummary,
    TimeBucket,
    Transport,
    WebSocketStats,
    WorkloadModel,
)
from orchestrator.process import ToolRun
from orchestrator.redact import redact_url
from orchestrator.scenarios import Scenario
from parsers.common import judge, per_second, rate_percent

NO_RESPONSE = "no request got a response, so there is no latency to report"
NO_REPLY = "no reply was received, so there is no latency to report"
NOT_COMPLETED = "the tool's output does not say how many requests got a response"
NO_DURATION = "the tool's output gives no run duration"
NOTHING_MADE = "no request was made"
TIME_LIMIT = "stopped at the time limit; the result holds what was measured"
RUNNER_INTERRUPTED = "the runner was interrupted; the result holds what was measured"
NO_ENDPOINTS = "the tool's output for this run records no per-endpoint numbers"


@dataclass(frozen=True)
class Identity:
    """What ran, against what, and how its tool measures latency."""

    scenario: str
    tool: str
    protocol: Transport
    workload_model: WorkloadModel
    latency_measures: str
    target: str  # redacted here
    raw_output: Path | str | None
    tool_version: str | None = None
    # Peak connections / virtual users measured; None when the output has none.
    concurrency: int | None = None


@dataclass(frozen=True)
class Counts:
    """Requests (messages, transactions) by outcome, as the tool counted them.

    ``total``: every request made, whatever happened to it. ``successful``: got the
    response the scenario expects (2xx/3xx, a reply, a committed transaction).
    ``completed``: got a response, whatever its status (see the module docstring); None
    when the source cannot tell, with the reason in ``missing["throughput"]``.
    """

    total: int
    successful: int
    completed: int | None


@dataclass(frozen=True)
class Latency:
    """Every sample in a histogram (µs), or, when the tool keeps none, its own summary."""

    histogram: HdrHistogram | None = None
    resolution_us: float = 1.0
    summary: ResponseTime | None = None  # source "tool_summary" or "approximate"
    no_sample: str = NO_RESPONSE  # why there is no latency when nothing was sampled


@dataclass(frozen=True)
class Timing:
    started: datetime
    ended: datetime
    duration: float | None  # seconds of load; None when the output gives none


@dataclass(frozen=True)
class Outcome:
    """What decides the status besides the counts."""

    run: ToolRun | None = None  # the tool's process (None for an imported file)
    # The tool's own output says it was stopped (Ctrl-C, or the runner's time limit).
    interrupted: bool = False
    # Why the output holds less than was planned: a completed run becomes tool_failed.
    cut_short: str | None = None
    # A verdict reached before any load ran (e.g. a failed set-up); replaces judge's.
    status: Status | None = None
    # Shown after the verdict when the target failed (e.g. the tool's most common error).
    failure_hint: str | None = None
    notes: Sequence[str] = ()


@dataclass(frozen=True)
class Step:
    """A constant-load step as counted; becomes a :class:`StepSummary`."""

    index: int
    concurrency: int
    start: float
    duration: float
    counts: Counts
    histogram: HdrHistogram
    resolution_us: float = 1.0
    rate: float | None = None


@dataclass(frozen=True)
class EndpointTally:
    """One endpoint's (or flow step's) requests as counted; becomes an :class:`EndpointStats`.

    Counted like the run's totals (see :class:`Counts`), its latencies in a histogram of
    every sample (µs); per-second buckets, status codes and error kinds are passed through.
    """

    name: str
    counts: Counts
    histogram: HdrHistogram
    resolution_us: float = 1.0
    method: str | None = None
    path: str | None = None
    status_codes: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)
    time_series: Sequence[TimeBucket] = ()


@dataclass(frozen=True)
class Details:
    """Breakdowns passed through as given (the builder derives nothing from them)."""

    status_codes: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)
    time_series: Sequence[TimeBucket] = ()
    websocket: WebSocketStats | None = None  # messageRate is derived here
    load_not_delivered: int | None = None


def result(
    identity: Identity,
    counts: Counts | None,
    latency: Latency,
    timing: Timing,
    outcome: Outcome,
    details: Details | None = None,
    steps: Sequence[Step] = (),
    missing: Mapping[str, str] | None = None,
    endpoints: Sequence[EndpointTally] = (),
) -> LoadTestResult:
    """The result of one run; ``counts=None`` when the tool's output was unreadable.

    ``missing`` holds the engine's reasons for what its source cannot give; the reasons
    derived here are added only where the engine gave none. ``endpoints``: each request
    counted under its endpoint, where the engine records that.
    """
    details = details or Details()
    why = dict(missing or {})
    response_time, encoded = _latency(latency, why)
    duration = timing.duration
    if duration is None:
        why.setdefault("duration", NO_DURATION)
    if identity.concurrency is None:
        why.setdefault("concurrency", "the tool's output does not give it")
    if counts is None:
        total = successful = failed = None
        error_rate = throughput = None
        status, detail = _unreadable_status(outcome)
    else:
        total, successful = counts.total, counts.successful
        failed = total - successful
        error_rate = rate_percent(failed, total)
        if error_rate is None:
            why.setdefault("errorRate", NOTHING_MADE)
        throughput = _throughput(counts.completed, duration, why)
        status, detail = _status(counts, details.errors, outcome)
    if not endpoints:
        why.setdefault("endpoints", NO_ENDPOINTS)
    return LoadTestResult(
        scenario=identity.scenario,
        tool=identity.tool,
        tool_version=identity.tool_version,
        protocol=identity.protocol,
        workload_model=identity.workload_model,
        latency_measures=identity.latency_measures,
        target=redact_url(identity.target),
        concurrency=identity.concurrency or 0,
        duration=duration or 0.0,
        total_requests=total,
        successful_requests=successful,
        failed_requests=failed,
        error_rate=error_rate,
        throughput=throughput,
        response_time=response_time,
        status_codes=dict(details.status_codes),
        errors={k: v for k, v in details.errors.items() if v},
        time_series=list(details.time_series),
        endpoints=[_endpoint(endpoint, duration) for endpoint in endpoints],
        steps=[_step(step) for step in steps],
        histogram=encoded,
        websocket=_websocket(details.websocket, duration),
        load_not_delivered=details.load_not_delivered,
        started_at=timing.started,
        ended_at=timing.ended,
        status=status,
        status_detail=detail,
        raw_output=None if identity.raw_output is None else str(identity.raw_output),
        missing=why,
    )


def unreadable(
    scenario: Scenario, tool: str, run: ToolRun, raw_output: Path, why: str
) -> LoadTestResult:
    """A run whose output could not be read: every measurement unknown, with the reason."""
    unknown = "tool output unreadable: " + why
    identity = Identity(
        scenario=scenario.name,
        tool=tool,
        protocol=scenario.protocol,
        workload_model=scenario.shape.model,
        latency_measures="unknown (no output)",
        target=scenario.base_url,
        raw_output=raw_output,
        concurrency=scenario.shape.peak,
    )
    reason = f"{tool} {run.describe_failure()}; {why}" if not run.ok else why
    return result(
        identity,
        None,
        Latency(no_sample=unknown),
        Timing(run.started, run.ended, run.elapsed),
        Outcome(run=run, notes=[reason]),
        missing=dict.fromkeys(
            ("totalRequests", "errorRate", "throughput", "histogram", "endpoints"), unknown
        ),
    )


def _latency(latency: Latency, missing: dict[str, str]) -> tuple[ResponseTime, str | None]:
    if latency.histogram is not None:
        summary = hist.summarize(latency.histogram, resolution_us=latency.resolution_us)
        sampled = latency.histogram.get_total_count() > 0
        encoded = hist.encode(latency.histogram) if sampled else None
    else:
        summary = latency.summary or ResponseTime()
        sampled = any(v is not None for v in (summary.p50, summary.mean, summary.max))
        encoded = None
        missing.setdefault("histogram", "the tool's output holds no per-sample latencies")
    if not sampled:
        missing.setdefault("responseTime", latency.no_sample)
    return summary, encoded


def _throughput(
    completed: int | None, duration: float | None, missing: dict[str, str]
) -> float | None:
    if completed is None:
        missing.setdefault("throughput", NOT_COMPLETED)
        return None
    if duration is None or duration <= 0:
        missing.setdefault("throughput", NO_DURATION)
        return None
    return per_second(completed, duration)


def _status(
    counts: Counts, errors: Mapping[str, int], outcome: Outcome
) -> tuple[Status, str | None]:
    status, detail = judge(counts.total, counts.successful, outcome.run, dict(errors))
    if outcome.status is not None:
        status, detail = outcome.status, None  # the notes say why
    notes = [detail] if detail else []
    if outcome.interrupted:
        if outcome.run is not None and outcome.run.timed_out:
            notes.append(TIME_LIMIT)
        elif status is not Status.INTERRUPTED:
            status = Status.INTERRUPTED
            notes.append(RUNNER_INTERRUPTED)
    elif outcome.cut_short:
        if status is Status.COMPLETED:
            status = Status.TOOL_FAILED
        notes.append(outcome.cut_short)
    if status is Status.TARGET_FAILED and outcome.failure_hint:
        notes.append(outcome.failure_hint)
    notes.extend(outcome.notes)
    return status, "; ".join(notes) or None


def _unreadable_status(outcome: Outcome) -> tuple[Status, str | None]:
    run = outcome.run
    status = Status.INTERRUPTED if run is not None and run.interrupted else Status.TOOL_FAILED
    return status, "; ".join(outcome.notes) or None


def _step(step: Step) -> StepSummary:
    completed = step.counts.completed
    return StepSummary(
        index=step.index,
        concurrency=step.concurrency,
        rate=step.rate,
        start=step.start,
        duration=step.duration,
        total_requests=step.counts.total,
        failed_requests=step.counts.total - step.counts.successful,
        throughput=None if completed is None else per_second(completed, step.duration),
        response_time=hist.summarize(step.histogram, resolution_us=step.resolution_us),
        histogram=hist.encode(step.histogram) if step.histogram.get_total_count() else None,
    )


def _endpoint(endpoint: EndpointTally, duration: float | None) -> EndpointStats:
    """The same derivations as the run's totals; reasons stay with the totals' ``missing``."""
    ignored: dict[str, str] = {}
    counts = endpoint.counts
    response_time, encoded = _latency(Latency(endpoint.histogram, endpoint.resolution_us), ignored)
    failed = counts.total - counts.successful
    return EndpointStats(
        name=endpoint.name,
        method=endpoint.method,
        path=endpoint.path,
        total_requests=counts.total,
        successful_requests=counts.successful,
        failed_requests=failed,
        error_rate=rate_percent(failed, counts.total),
        throughput=_throughput(counts.completed, duration, ignored),
        response_time=response_time,
        histogram=encoded,
        status_codes=dict(endpoint.status_codes),
        errors={k: v for k, v in endpoint.errors.items() if v},
        time_series=list(endpoint.time_series),
    )


def _websocket(stats: WebSocketStats | None, duration: float | None) -> WebSocketStats | None:
    if stats is None:
        return None
    sent = stats.messages_sent
    rate = None if sent is None or duration is None else per_second(sent, duration)
    return stats.model_copy(update={"message_rate": rate})
