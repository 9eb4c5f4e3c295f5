"""The conclusions' data: holds, knee, USL fit, leak verdict and the capacity report.

camelCase on the wire like every result model. Units are named in each field: latencies in
ms, memory in bytes (slopes in MB/min, decimal MB as the seed plan writes them), rates per
second, error rates in percent. A value nothing measured is ``None`` with a reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.model_base import Model, Transport

HoldLatency = Literal["exact", "upper_bound"]
FitQuality = Literal["good", "poor", "too_few_points", "failed"]
LeakVerdictText = Literal["leak", "no leak", "inconclusive", "too short to judge"]
Bound = Literal["measured", "lower_bound"]


class Hold(Model):
    """One load level held constant: the hold steps (or whole seconds) at it, merged."""

    concurrency: int = Field(description="Users (closed model) or arrivals/s (open model).")
    start: float = Field(description="Seconds since the start of the run.")
    duration: float = Field(description="Seconds of load summed over the merged parts.")
    steps: list[int] = Field(
        default_factory=list, description="Indexes of the merged StepSummary rows (none for "
        "a window of per-second buckets).",
    )  # fmt: skip
    source: Literal["steps", "time_series"]
    total_requests: int
    failed_requests: int
    throughput: float | None = Field(description="Requests per second (failed ones included).")
    goodput: float | None = Field(
        description="Successful requests per second: what knee and ceiling are read from."
    )
    error_rate: float | None = Field(description="Percent.")
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    latency: HoldLatency | None = Field(
        default=None,
        description="exact: read from one histogram of every latency in the hold (or a single "
        "step's own percentile); upper_bound: the highest percentile of the merged parts "
        "(percentiles cannot be merged or averaged).",
    )


class StepRole(Model):
    """Whether a StepSummary row held its level (counts) or was part of a climb (does not)."""

    index: int
    concurrency: int
    role: Literal["hold", "transition"]
    hold_fraction: float = Field(description="Share of the step inside a constant segment.")


class UslFit(Model):
    """Universal Scalability Law X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1))."""

    points: int = Field(description="(concurrency, goodput) points fitted.")
    quality: FitQuality
    reason: str | None = Field(default=None, description="Why the fit is not to be used.")
    sigma: float | None = Field(default=None, description="Contention (serialised share).")
    kappa: float | None = Field(default=None, description="Coherency (crosstalk) cost.")
    lambda_: float | None = Field(
        default=None, alias="lambda", description="Throughput of one user (req/s)."
    )
    r_squared: float | None = None
    peak_concurrency: float | None = Field(
        default=None,
        description="N* = sqrt((1 - sigma) / kappa), where throughput peaks and then falls; "
        "None when kappa is ~0 (no retrograde peak).",
    )
    peak_throughput: float | None = Field(
        default=None,
        description="Predicted X(N*); without a peak, the asymptote lambda / sigma (None "
        "when sigma is ~0 too: linear within the model). An estimate.",
    )
    peak_beyond_measured: bool = Field(
        default=False, description="N* lies past the highest concurrency measured."
    )


class Knee(Model):
    """The first held level after which added users stopped adding successful throughput."""

    found: bool
    concurrency: int | None = Field(default=None, description="Last level that still scaled.")
    goodput: float | None = Field(default=None, description="At the knee (req/s).")
    saturated_at: int | None = Field(default=None, description="The next level held.")
    p95_at_knee: float | None = None
    p95_after: float | None = Field(default=None, description="Highest p95 of later holds.")
    error_rate_after: float | None = Field(
        default=None, description="Highest error rate of later holds (percent)."
    )
    evidence: str


class Ceiling(Model):
    measured: float | None = Field(description="Highest goodput of any hold (req/s).")
    measured_at: int | None = Field(default=None, description="Concurrency of that hold.")
    predicted: float | None = Field(
        default=None, description="The USL's predicted peak when the fit is good (estimate)."
    )
    reason: str | None = None


class Trend(Model):
    """One resource's trend after the warm-up: Theil-Sen slope and Mann-Kendall test."""

    resource: Literal["memory", "threads", "fds"]
    verdict: LeakVerdictText
    samples: int
    seconds: float = Field(description="Span of the judged samples.")
    unit: str = Field(description="Unit of the slope: MB/min, threads/min or fds/min.")
    slope: float | None = None
    slope_low: float | None = Field(default=None, description="95% CI lower bound.")
    slope_high: float | None = Field(default=None, description="95% CI upper bound.")
    kendall_tau: float | None = None
    p_value: float | None = Field(default=None, description="Mann-Kendall (two-sided).")
    floor: float = Field(
        description="Slopes below this (same unit) are not a leak; for memory, the rate that "
        "would use the plan's whole budget (20 MB over 60 min = 0.33 MB/min)."
    )
    projected_growth: float | None = Field(
        default=None,
        description="Projection: slope x projection minutes (MB, threads or fds), not measured.",
    )
    detail: str


class LeakReport(Model):
    verdict: LeakVerdictText
    memory_leak: bool | None = Field(
        description="True: memory leaks; False: no leak; None: could not tell. Gate on it."
    )
    warmup: float = Field(description="Seconds of samples left out at the start.")
    window_start: float = Field(description="Seconds since the start of the run.")
    window_end: float
    projection_minutes: float = Field(description="Minutes the growth is projected over.")
    trends: list[Trend]
    summary: str


class LimitSource(Model):
    scenario: str
    concurrency: int | None = None
    steps: list[int] = Field(default_factory=list, description="StepSummary indexes.")


class Limit(Model):
    """A capacity limit with where it came from, or None with why not."""

    value: float | None
    unit: str
    bound: Bound | None = Field(
        default=None,
        description="measured: a higher level failed the SLA; lower_bound: every level "
        "tried stayed within it, so the limit is higher.",
    )
    source: LimitSource | None = None
    basis: str | None = Field(default=None, description="How the value was chosen.")
    predicted: float | None = Field(default=None, description="USL prediction (estimate).")
    reason: str | None = Field(default=None, description="Why value is None.")


class CapacityLimitsReport(Model):
    max_concurrent_users: Limit
    max_web_socket_connections: Limit
    max_database_connections: Limit
    max_throughput: Limit


class Bottleneck(Model):
    component: str
    limit: float | None = Field(description="Where it binds, in ``unit``.")
    unit: str | None = None
    scenario: str
    evidence: list[str]
    recommendation: str


class LoadMetrics(Model):
    """One scenario's whole-run numbers, for the seed's normal/peak/stress rows."""

    scenario: str | None
    reason: str | None = Field(default=None, description="Why scenario is None.")
    concurrency: int | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    latency_source: str | None = None
    throughput: float | None = None
    error_rate: float | None = None
    generator_saturated: bool | None = None


class PerformanceMetrics(Model):
    normal_load: LoadMetrics
    peak_load: LoadMetrics
    stress_load: LoadMetrics


class ScenarioAnalysis(Model):
    scenario: str
    protocol: Transport
    tool: str
    status: str
    step_roles: list[StepRole] = Field(default_factory=list)
    holds: list[Hold] = Field(default_factory=list)
    usl: UslFit | None = None
    knee: Knee | None = None
    ceiling: Ceiling | None = None
    leak: LeakReport | None = None
    notes: list[str] = Field(default_factory=list)


class CapacityReport(Model):
    """How far the service goes, what breaks first, whether it leaks (the seed's shape)."""

    schema_version: str = "1"
    suite: str | None = None
    timestamp: str | None = Field(description="End of the last run (ISO 8601), not build time.")
    capacity_limits: CapacityLimitsReport
    bottlenecks: list[Bottleneck]
    performance_metrics: PerformanceMetrics
    recommendations: list[str]
    memory_leak: bool | None = Field(
        description="Any scenario's memory leaks (True), none judged leaks and at least one "
        "judged none (False), or nothing could tell (None)."
    )
    scenarios: list[ScenarioAnalysis]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2) + "\n"
