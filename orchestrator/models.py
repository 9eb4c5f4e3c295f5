"""The one result model every load tool's output becomes.

Units are fixed and named in each field's description: latencies in milliseconds,
memory in bytes, durations in seconds, rates per second, error rates in percent.
A value the tool did not give is ``None`` and ``missing`` says why; it is never 0.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from orchestrator.conclusions.models import LeakReport
from orchestrator.db_models import DatabaseLimit
from orchestrator.flow_result import FlowStats
from orchestrator.model_base import LatencySource, Model, Status, Transport, WorkloadModel
from orchestrator.pool_models import PoolFigure, PoolMetrics, PoolSample

# Re-exported: callers import every result type from here.
__all__ = [
    "LatencySource",
    "LeakReport",
    "Model",
    "PoolFigure",
    "PoolMetrics",
    "PoolSample",
    "Status",
    "Transport",
    "WorkloadModel",
]

SCHEMA_VERSION = "1"


class ResponseTime(Model):
    """Latency summary in milliseconds."""

    min: float | None = None
    max: float | None = None
    mean: float | None = None
    stdev: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    p999: float | None = None
    source: LatencySource | None = Field(
        default=None,
        description="histogram: read from a histogram of every sample; tool_summary: the "
        "tool's own summary numbers; approximate: estimated (e.g. Artillery sketches).",
    )
    resolution_us: float | None = Field(
        default=None, description="Smallest latency difference the source can tell apart (µs)."
    )


class TimeBucket(Model):
    """One interval (normally one second) of the run."""

    t: float = Field(description="Seconds since the start of the run, at the interval's start.")
    requests: int
    errors: int
    concurrency: int | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    histogram: str | None = Field(
        default=None,
        description="HdrHistogram (V2 compressed, base64) of the interval's latencies in "
        "microseconds, so that windows of seconds merge into exact percentiles (spike "
        "recovery). Only the run's own series carries it, not per-endpoint series, so "
        "result.json grows by about 0.1-2 KB per second of run (more distinct latencies, "
        "more bytes); None where the engine has no per-second histogram (imports of tool "
        "summaries, merged inputs).",
    )


class StepSummary(Model):
    """A constant-load step (autocannon runs ramps as a sequence of steps)."""

    index: int
    concurrency: int
    rate: float | None = Field(default=None, description="Request-rate cap of the step (req/s).")
    start: float = Field(description="Seconds since the start of the run.")
    duration: float
    total_requests: int
    failed_requests: int
    throughput: float | None
    response_time: ResponseTime
    histogram: str | None = Field(
        default=None,
        description="HdrHistogram (V2 compressed, base64) of the step's latencies in "
        "microseconds, so that steps held at one level merge into exact percentiles.",
    )


class EndpointStats(Model):
    """One endpoint (or flow step) of a scenario, every request recorded under it."""

    name: str = Field(description="The endpoint's name in the config, or 'METHOD /path'.")
    method: str | None = None
    path: str | None = None
    total_requests: int
    successful_requests: int
    failed_requests: int
    error_rate: float | None = Field(description="failedRequests / totalRequests, in percent.")
    throughput: float | None = Field(description="Completed requests per second of the run.")
    response_time: ResponseTime
    histogram: str | None = Field(
        default=None, description="HdrHistogram (V2 compressed, base64) of its latencies, in µs."
    )
    status_codes: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(default_factory=dict)
    time_series: list[TimeBucket] = Field(default_factory=list)


class ResourceSample(Model):
    t: float = Field(description="Seconds since the start of the run.")
    rss_bytes: int | None = None
    cpu_percent: float | None = Field(
        default=None, description="Sum over the process tree; 100 = one core fully busy."
    )
    threads: int | None = None
    fds: int | None = None
    processes: int | None = None


class TargetExit(Model):
    t: float = Field(description="Seconds since the start of the run when the target was gone.")
    exit_code: int | None = None


class ResourceUsage(Model):
    """The target's resources while the load ran (its whole process tree)."""

    memory_start: int | None = Field(default=None, description="RSS at start (bytes).")
    memory_end: int | None = Field(default=None, description="RSS at end (bytes).")
    memory_delta: int | None = Field(default=None, description="memoryEnd - memoryStart (bytes).")
    memory_peak: int | None = None
    cpu_percent_mean: float | None = None
    cpu_percent_max: float | None = None
    cpu_utilization_mean: float | None = Field(
        default=None,
        description="cpuPercentMean as a share of the CPU the target may use: its container "
        "limit, else every core of this machine (percent; 100 = all of it).",
    )
    source: Literal["psutil", "docker"] | None = None
    pid: int | None = None
    process_name: str | None = None
    interval: float | None = Field(default=None, description="Sampling interval (s).")
    series: list[ResourceSample] = Field(default_factory=list)
    target_exit: TargetExit | None = None
    # Container targets only (source "docker"): what the engine lets it use and how often
    # the CPU quota held it back. A process target leaves them None.
    memory_limit: int | None = Field(
        default=None, description="Container memory limit (bytes); None: no limit set."
    )
    cpu_limit_percent: float | None = Field(
        default=None,
        description="CPU the container may use (--cpus or its CFS quota); 100 = one core.",
    )
    cpu_periods: int | None = Field(
        default=None, description="CFS quota periods elapsed while sampled (container)."
    )
    cpu_throttled_periods: int | None = Field(
        default=None, description="Of cpuPeriods, those in which the quota ran out."
    )
    cpu_throttled_seconds: float | None = Field(
        default=None, description="Time the quota held the container back (s)."
    )
    missing: dict[str, str] = Field(
        default_factory=dict, description="Fields above left null, each with the reason."
    )


class GeneratorUsage(Model):
    """The load tool's own CPU use: high values mean the numbers measured the tool."""

    cpu_percent_mean: float | None = None
    cpu_percent_max: float | None = None
    cpu_capacity_percent: float = Field(
        description="CPU the tool can use: 100 per core it can run on (one per process for "
        "single-threaded Node tools)."
    )
    saturated: bool = False
    series: list[ResourceSample] = Field(default_factory=list)


class ShardSummary(Model):
    """One k6 instance of a sharded run (an execution segment), with its own counts."""

    index: int = Field(description="0-based shard number.")
    segment: str | None = Field(
        default=None, description="k6 --execution-segment, e.g. '1/2:1'; None: not known."
    )
    host: str = Field(description="Where it ran: 'local', an agent's URL, or a merged file.")
    total_requests: int | None
    failed_requests: int | None
    throughput: float | None = Field(description="This shard's requests per second.")
    generator: GeneratorUsage | None = Field(
        default=None, description="This shard's k6 CPU (its series left out)."
    )
    saturated: bool = Field(
        default=False, description="Its k6 ran at the CPU it could use: its numbers may be k6's."
    )
    status: Status
    status_detail: str | None = None
    raw_output: str | None = None


class CapacityLimits(Model):
    max_concurrency: int | None = None
    max_throughput: float | None = None
    bottleneck: str | None = None


RecoveryMethod = Literal["histograms", "upper_bound"]
PHASE_P95 = (
    "In ms: one exact merge of the phase's per-second histograms (method histograms), or "
    "the highest per-second p95 in it, an upper bound (method upper_bound)."
)


class Recovery(Model):
    """How a target came back after a spike (the load rose to a peak, then fell back).

    Judged only when the baseline, the spike and the recovery window each last at least
    3 s; otherwise ``recovery`` is null and ``missing.recovery`` says "too short to judge"
    with the phase lengths (orchestrator.recovery)."""

    method: RecoveryMethod = Field(
        default="upper_bound",
        description="histograms: every p95 read from exact merges of per-second histograms; "
        "upper_bound: the result has no per-second histograms, so each window's p95 is its "
        "highest per-second p95 (percentiles cannot be merged or averaged).",
    )
    baseline_p95: float | None = Field(description="Before the spike's ramp started. " + PHASE_P95)
    spike_p95: float | None = Field(
        description="From the ramp's start to the peak's end. " + PHASE_P95
    )
    recovered_p95: float | None = Field(
        description="The last half of the recovery window (the hold after the drop). " + PHASE_P95
    )
    baseline_error_rate: float | None = Field(
        default=None, description="Failed share of the baseline's requests (percent)."
    )
    recovery_error_rate: float | None = Field(
        default=None, description="Failed share of the whole recovery window's requests (percent)."
    )
    recovered: bool = Field(
        description="Some sliding window of windowSeconds whole seconds after the drop had "
        "p95 <= 1.5 x baselineP95 and error rate <= baselineErrorRate + 1 percentage point, "
        "and every later window to the end of the recovery window did too."
    )
    seconds_to_recover: float | None = Field(
        default=None,
        description="Seconds from the drop's end to the start of the first window from which "
        "the target stayed recovered (see recovered); None if it did not recover.",
    )
    window_seconds: int | None = Field(
        default=None, description="Whole seconds merged into each sliding window."
    )
    baseline_seconds: float | None = Field(
        default=None, description="Length of the baseline phase (s), on the run's clock."
    )
    spike_seconds: float | None = Field(
        default=None, description="Length of the rise and the peak (s)."
    )
    recovery_seconds: float | None = Field(
        default=None, description="Length of the recovery window after the drop (s)."
    )


class WebSocketStats(Model):
    connections_attempted: int | None = None
    connections_open: int | None = None
    connections_failed: int | None = None
    messages_sent: int | None = None
    messages_received: int | None = None
    message_rate: float | None = Field(default=None, description="Messages sent per second.")
    session_length: ResponseTime | None = Field(
        default=None, description="How long sessions lasted (ms)."
    )


class Threshold(Model):
    """One SLA check with its measured value, so a report shows both."""

    metric: str
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    limit: float
    measured: float | None
    passed: bool | None = Field(description="None when the metric could not be measured.")
    detail: str | None = None
    applicable: bool = Field(
        default=True, description="False: a suite gate whose scenarios were all left out."
    )


class LoadTestResult(Model):
    schema_version: str = SCHEMA_VERSION
    scenario: str
    tool: str
    tool_version: str | None = None
    protocol: Transport
    workload_model: WorkloadModel
    latency_measures: str = Field(description="What the tool's latency clock measures.")
    target: str = Field(description="Target URL (credentials redacted).")
    concurrency: int = Field(description="Peak concurrent connections / virtual users.")
    duration: float = Field(description="Measured seconds of load.")
    total_requests: int | None = Field(description="None when the tool's output was unreadable.")
    successful_requests: int | None
    failed_requests: int | None
    error_rate: float | None = Field(description="failedRequests / totalRequests, in percent.")
    throughput: float | None = Field(
        description="Completed requests per second, the same for every tool: a request is "
        "completed when it got a response, whatever its status (an HTTP response of any code, "
        "a WebSocket reply, a transaction the database ran); one refused, reset or timed out "
        "before any response is not. None when the tool's output cannot tell."
    )
    response_time: ResponseTime
    resource_usage: ResourceUsage | None = None
    capacity_limits: CapacityLimits | None = Field(
        default=None, description="From the steps of a stepped run (see orchestrator.analysis)."
    )
    database_limit: DatabaseLimit | None = Field(
        default=None, description="A stepped database run (db-exhaustion): its limit and why."
    )
    recovery: Recovery | None = Field(
        default=None, description="After a spike: filled when the shape rises and falls back."
    )
    status_codes: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] = Field(
        default_factory=dict,
        description="Failures by kind: connection_refused, connection_reset, timeout, non_2xx, ...",
    )
    time_series: list[TimeBucket] = Field(default_factory=list)
    endpoints: list[EndpointStats] = Field(
        default_factory=list, description="Per endpoint, where the engine records each request's."
    )
    steps: list[StepSummary] = Field(default_factory=list)
    histogram: str | None = Field(
        default=None,
        description="HdrHistogram (V2 compressed, base64) of every latency, in microseconds.",
    )
    histogram_unit: Literal["us"] = "us"
    websocket: WebSocketStats | None = None
    load_not_delivered: int | None = Field(
        default=None,
        description="Iterations/users the tool could not start (k6 dropped_iterations, "
        "Artillery vusers.skipped).",
    )
    generator: GeneratorUsage | None = None
    pool: PoolMetrics | None = Field(
        default=None, description="Database connection pool while the load ran."
    )
    generator_saturated: bool = False
    leak: LeakReport | None = Field(
        default=None,
        description="Trend verdict on the target's memory, threads and open files "
        "(orchestrator.conclusions.leak); gate on leak.memoryLeak.",
    )
    shards: list[ShardSummary] = Field(
        default_factory=list,
        description="A sharded run's k6 instances; the result's numbers merge them exactly.",
    )
    flow: FlowStats | None = Field(
        default=None, description="A user journey's iterations (its steps are the endpoints)."
    )
    started_at: datetime
    ended_at: datetime
    status: Status
    status_detail: str | None = None
    raw_output: str | None = Field(default=None, description="Path of the tool's raw output.")
    thresholds: list[Threshold] = Field(default_factory=list)
    missing: dict[str, str] = Field(
        default_factory=dict,
        description="Fields left null, each with the reason (e.g. 'responseTime.p95').",
    )

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
