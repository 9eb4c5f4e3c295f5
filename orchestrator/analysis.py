"""Findings drawn from what a run measured: capacity limits from its steps, recovery
after a spike (:mod:`orchestrator.recovery`).

Only measured numbers go in.
"""

from __future__ import annotations

from orchestrator.models import CapacityLimits, LeakReport, LoadTestResult, StepSummary
from orchestrator.recovery import recovery_after_spike
from orchestrator.scenarios import LoadShape, Scenario

# Error rate (percent) above which a step counts as failing when the scenario sets none.
DEFAULT_ERROR_LIMIT = 5.0
# Throughput that rises by no more than this between steps while latency grows: saturated.
SATURATION_GAIN = 0.10
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
    recovery, why_no_recovery = recovery_after_spike(result, scenario)
    if recovery is not None:
        update["recovery"] = recovery
    elif why_no_recovery is not None:
        missing["recovery"] = why_no_recovery
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
