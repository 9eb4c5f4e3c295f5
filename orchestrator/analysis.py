"""Findings drawn from what a run measured: capacity limits from its steps, recovery
after a spike.

Only measured numbers go in. Per-second buckets keep p50/p95/p99 only, and percentiles
can be neither merged nor averaged, so a window's p95 here is the highest per-second p95
in it: an upper bound, and named as one in :class:`Recovery`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.models import (
    CapacityLimits,
    LeakReport,
    LoadTestResult,
    Recovery,
    StepSummary,
    TimeBucket,
)
from orchestrator.scenarios import LoadShape, Scenario

# Error rate (percent) above which a step counts as failing when the scenario sets none.
DEFAULT_ERROR_LIMIT = 5.0
# Throughput that rises by no more than this between steps while latency grows: saturated.
SATURATION_GAIN = 0.10
# Recovered: p95 back within this factor of the baseline, errors under this percent.
RECOVERY_FACTOR = 1.5
RECOVERY_ERROR_LIMIT = 1.0
# Seconds the per-second p95 must stay back within the factor to count as recovered.
STABLE_SECONDS = 3
# The leak verdict's own minimum (orchestrator.conclusions.leak), checked before importing it.
MIN_LEAK_SAMPLES = 10
MIN_LEAK_SECONDS = 5.0


def step_error_rate(step: StepSummary) -> float | None:
    if step.total_requests <= 0:
        return None
    return 100.0 * step.failed_requests / step.total_requests


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 100 else f"{value:,.0f} ms"


def _users(result: LoadTestResult) -> str:
    return "users" if result.workload_model == "closed" else "arrivals/s"


def capacity_from_steps(result: LoadTestResult, error_limit: float) -> CapacityLimits | None:
    """Limits from the constant-load steps of ``result``; None if no step carried load.

    ``error_limit`` (percent): a step failing more than this is over the limit.
    """
    steps = [s for s in result.steps if s.concurrency > 0 and s.total_requests > 0]
    if not steps:
        return None
    within = [s.concurrency for s in steps if (step_error_rate(s) or 0.0) <= error_limit]
    throughputs = [s.throughput for s in steps if s.throughput is not None]
    return CapacityLimits(
        max_concurrency=max(within, default=None),
        max_throughput=max(throughputs, default=None),
        bottleneck=_bottleneck(result, steps, error_limit),
    )


def _bottleneck(result: LoadTestResult, steps: list[StepSummary], error_limit: float) -> str:
    users = _users(result)
    failing = next((s for s in steps if (step_error_rate(s) or 0.0) > error_limit), None)
    if failing is not None:
        rate = step_error_rate(failing) or 0.0
        text = (
            f"errors: {rate:.3g}% failed at {failing.concurrency} {users} (limit {error_limit:g}%)"
        )
        if result.generator_saturated:
            text += "; the load tool was saturated too, so latency and throughput measure it"
        return text
    if result.generator_saturated:
        return "generator: the load tool was saturated, so these limits measure the tool"
    latency = _latency_knee(steps, users)
    if latency is not None:
        return latency
    return f"none found up to {max(s.concurrency for s in steps)} {users}"


def _latency_knee(steps: list[StepSummary], users: str) -> str | None:
    """The first step after which throughput stopped rising (> 10%) while p99 grew."""
    rising: list[StepSummary] = []
    for step in steps:
        if step.throughput is None or step.response_time.p99 is None:
            continue
        if not rising or step.concurrency > rising[-1].concurrency:
            rising.append(step)
    if len(rising) < 2:
        return None
    last = rising[-1]
    last_p99 = last.response_time.p99
    assert last_p99 is not None
    for i, knee in enumerate(rising[:-1]):
        assert knee.throughput is not None and knee.response_time.p99 is not None
        later = rising[i + 1 :]
        ceiling = knee.throughput * (1 + SATURATION_GAIN)
        flat = all(s.throughput is not None and s.throughput <= ceiling for s in later)
        if flat and last_p99 > knee.response_time.p99 * (1 + SATURATION_GAIN):
            top = max(s.throughput or 0.0 for s in rising[i:])
            return (
                f"latency: p99 rose from {_ms(knee.response_time.p99)} at {knee.concurrency} "
                f"{users} to {_ms(last_p99)} at {last.concurrency} {users} while throughput "
                f"stayed at about {top:,.0f} req/s (saturated)"
            )
    return None


@dataclass(frozen=True)
class SpikePhases:
    """Seconds since the start of the load at which each phase of a spike begins."""

    ramp_start: float  # the rise to the peak
    peak_end: float  # the drop starts
    drop_end: float  # back at the recovery level: the recovery window
    end: float  # the recovery hold ends
    base: int  # level before the rise
    recovery_level: int


def spike_phases(shape: LoadShape) -> SpikePhases | None:
    """The phases of a shape that rises to its peak, then drops to a lower non-zero level
    and holds there; None for any other shape."""
    segments = shape.segments()
    starts = [sum(d for d, _, _ in segments[:i]) for i in range(len(segments) + 1)]
    rise = next((i for i, (_, low, high) in enumerate(segments) if high == shape.peak > low), None)
    if rise is None:
        return None
    for j in range(rise + 1, len(segments) - 1):
        _, high, low = segments[j]
        hold_duration, hold_from, hold_to = segments[j + 1]
        if high > low > 0 and hold_from == hold_to == low:
            return SpikePhases(
                ramp_start=starts[rise],
                peak_end=starts[j],
                drop_end=starts[j + 1],
                end=starts[j + 1] + hold_duration,
                base=segments[rise][1],
                recovery_level=low,
            )
    return None


def _measured_phases(phases: SpikePhases, steps: Sequence[StepSummary]) -> SpikePhases:
    """The phases on the run's own clock when it ran as steps (each step start costs a
    little time, and a ramp's last step already runs at the level it reaches)."""
    loaded = list(steps)
    rise = next((k for k, s in enumerate(loaded) if s.concurrency > phases.base), None)
    if rise is None:
        return phases
    top = max(range(rise, len(loaded)), key=lambda k: loaded[k].concurrency)
    fall = next(
        (k for k in range(top, len(loaded)) if loaded[k].concurrency < loaded[top].concurrency),
        None,
    )
    if fall is None:
        return phases
    back = next(
        (k for k in range(fall, len(loaded)) if loaded[k].concurrency <= phases.recovery_level),
        None,
    )
    if back is None:
        return phases
    return SpikePhases(
        ramp_start=loaded[rise].start,
        peak_end=loaded[fall].start,
        drop_end=loaded[back].start,
        end=loaded[back].start + loaded[back].duration,
        base=phases.base,
        recovery_level=phases.recovery_level,
    )


def _window_p95(buckets: Sequence[TimeBucket]) -> float | None:
    values = [b.p95 for b in buckets if b.p95 is not None]
    return max(values, default=None)


def _seconds_to_recover(
    buckets: Sequence[TimeBucket], limit: float, drop_end: float
) -> float | None:
    run: list[TimeBucket] = []
    for bucket in buckets:
        good = bucket.p95 is not None and bucket.p95 <= limit
        if good and run and bucket.t == run[-1].t + 1:
            run.append(bucket)
        else:
            run = [bucket] if good else []
        if len(run) >= STABLE_SECONDS:
            return round(max(0.0, run[0].t - drop_end), 3)
    return None


def recovery_after_spike(result: LoadTestResult, scenario: Scenario) -> Recovery | None:
    """How the target came back after the spike of ``scenario``'s shape; None when the
    shape has no spike, or nothing was measured before it or after the drop."""
    planned = spike_phases(scenario.shape)
    if planned is None:
        return None
    phases = _measured_phases(planned, result.steps) if result.steps else planned
    series = result.time_series
    # Whole seconds only; the run's first second (connections opening) is no baseline.
    baseline = [b for b in series if b.t + 1 <= phases.ramp_start]
    if len(baseline) > STABLE_SECONDS:
        baseline = [b for b in baseline if b.t >= 1]
    spike = [b for b in series if b.t + 1 > phases.ramp_start and b.t < phases.peak_end]
    window = [b for b in series if b.t >= phases.drop_end and b.t + 1 <= phases.end]
    baseline_p95 = _window_p95(baseline)
    if baseline_p95 is None or not window:
        return None
    recovered_p95 = _window_p95(window[len(window) // 2 :])
    requests = sum(b.requests for b in window)
    error_rate = 100.0 * sum(b.errors for b in window) / requests if requests else None
    limit = RECOVERY_FACTOR * baseline_p95
    return Recovery(
        baseline_p95=baseline_p95,
        spike_p95=_window_p95(spike),
        recovered_p95=recovered_p95,
        recovery_error_rate=error_rate,
        recovered=recovered_p95 is not None
        and recovered_p95 <= limit
        and error_rate is not None
        and error_rate < RECOVERY_ERROR_LIMIT,
        seconds_to_recover=_seconds_to_recover(window, limit, phases.drop_end),
    )


def attach_findings(
    result: LoadTestResult, scenario: Scenario, error_sla: float | None = None
) -> LoadTestResult:
    """``result`` with its capacity limits (a stepped run) and spike recovery filled in.

    Capacity is the most users served within the scenario's error-rate SLA (``error_sla``,
    percent), else within its stop limit, else 5%.
    """
    update: dict[str, object] = {}
    missing = dict(result.missing)
    leak, why_not = judge_leak(result, scenario.shape)
    if leak is not None:
        update["leak"] = leak
    elif why_not is not None:
        missing["leak"] = why_not
    if len(result.steps) >= 2:
        limit = error_sla or scenario.stop_when_error_rate or DEFAULT_ERROR_LIMIT
        update["capacity_limits"] = capacity_from_steps(result, limit)
    if spike_phases(scenario.shape) is not None:
        recovery = recovery_after_spike(result, scenario)
        if recovery is not None:
            update["recovery"] = recovery
        else:
            missing["recovery"] = (
                "no per-second latency before the spike or after the drop "
                "(the run may have stopped before the recovery window)"
            )
    if missing != result.missing:
        update["missing"] = missing
    return result.model_copy(update=update) if update else result


def judge_leak(
    result: LoadTestResult, shape: LoadShape | None
) -> tuple[LeakReport | None, str | None]:
    """The leak verdict on the target's samples over the longest hold, or why there is none
    (the capacity report judges the same window, from the same function)."""
    usage = result.resource_usage
    if usage is None or not usage.series:
        return None, None  # resourceUsage is already missing, with its reason
    if result.protocol == "postgres":
        # A database server's backends grow as they touch shared buffers: not a leak signal.
        return None, "not judged for a database server (backends map shared buffers)"
    span = usage.series[-1].t - usage.series[0].t
    if len(usage.series) < MIN_LEAK_SAMPLES or span < MIN_LEAK_SECONDS:
        return None, (
            f"too short to judge a trend: {len(usage.series)} samples over {span:.1f} s "
            f"(needs {MIN_LEAK_SAMPLES} over {MIN_LEAK_SECONDS:g} s)"
        )
    # Imported here: scipy costs start-up time that short runs should not pay.
    from orchestrator.conclusions.holds import analyse_holds, longest_hold_window
    from orchestrator.conclusions.leak import leak_report

    window = longest_hold_window(analyse_holds(result, shape).holds)
    return leak_report(usage, window), None
