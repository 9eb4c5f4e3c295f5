"""Does the target leak? A trend verdict on its RSS, threads and open files over time.

After a warm-up (pools filling, caches warming), each resource's samples get a robust slope
(Theil-Sen, with its 95% confidence interval) and a trend test (Mann-Kendall: Kendall's tau
between time and value). The verdict:

- ``leak``: a significant rising trend (p < 0.01), the slope's CI above 0 and the slope above
  a floor: for memory the rate that would use the plan's whole budget (the seed's "< 20 MB
  over 60 minutes": 0.33 MB/min), for threads and open files 1 per minute;
- ``no leak``: the CI's upper bound is below the floor, or there is no trend (p >= 0.05),
  or the trend falls;
- ``inconclusive`` otherwise; ``too short to judge`` below 10 samples or 5 s after warm-up.

Growth over the plan's 60 minutes is the slope times 60: a projection, labelled as one.

Why the memory floor is the budget's rate and not lower: a healthy Python target's RSS still
creeps while its allocator warms up (measured on the reference target: ~0.25 MB/min over the
first 8 s of load, ~0.02 MB/min over 30 s). A short run cannot tell that from a slow leak;
it can tell whether the growth would stay within the budget, which is the question asked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Literal

from orchestrator.conclusions.models import LeakReport, LeakVerdictText, Trend
from orchestrator.models import ResourceSample, ResourceUsage

LOG = logging.getLogger(__name__)

Resource = Literal["memory", "threads", "fds"]
RESOURCES: tuple[Resource, ...] = ("memory", "threads", "fds")

MIN_SAMPLES = 10
MIN_SECONDS = 5.0
LEAK_P = 0.01
TREND_P = 0.05
PROJECTION_MINUTES = 60.0
MB = 1e6  # decimal, as the seed plan and the SLA thresholds write "MB"
# The seed plan's memory budget for its 60-minute endurance run.
MEMORY_BUDGET_BYTES = 20e6
# Per minute, in each resource's unit (memory: set from the budget, see leak_report).
NOISE_FLOOR: dict[Resource, float] = {
    "memory": MEMORY_BUDGET_BYTES / MB / PROJECTION_MINUTES,
    "threads": 1.0,
    "fds": 1.0,
}
UNIT: dict[Resource, str] = {"memory": "MB/min", "threads": "threads/min", "fds": "fds/min"}
# Converts a per-second slope of the raw samples to the unit.
PER_MINUTE: dict[Resource, float] = {"memory": 60.0 / MB, "threads": 60.0, "fds": 60.0}
GROWTH_UNIT: dict[Resource, str] = {"memory": "MB", "threads": "threads", "fds": "open files"}


def default_warmup(window_seconds: float) -> float:
    """10% of the window, but at least min(5 s, 30% of it): a short run keeps most of itself."""
    return max(0.1 * window_seconds, min(5.0, 0.3 * window_seconds))


def _value(sample: ResourceSample, resource: Resource) -> float | None:
    raw = {"memory": sample.rss_bytes, "threads": sample.threads, "fds": sample.fds}[resource]
    return None if raw is None else float(raw)


def _num(value: float, sign: str = "") -> str:
    """3 significant digits, without an exponent for large values."""
    return f"{value:{sign},.0f}" if abs(value) >= 100 else f"{value:{sign}.3g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _verdict(
    slope: float, low: float, high: float, tau: float | None, p: float | None, floor: float
) -> LeakVerdictText:
    rising = tau is not None and p is not None and tau > 0 and p < LEAK_P
    if rising and low > 0 and slope > floor:
        return "leak"
    falling = tau is not None and p is not None and tau < 0 and p < LEAK_P
    no_trend = p is None or p >= TREND_P
    if high < floor or no_trend or falling:
        return "no leak"
    return "inconclusive"


def judge_trend(
    points: Sequence[tuple[float, float]],
    resource: Resource,
    projection_minutes: float = PROJECTION_MINUTES,
    floor: float | None = None,
) -> Trend:
    """The verdict on one resource from (seconds, value) points already past the warm-up;
    ``floor`` (per minute, in the resource's unit) defaults to :data:`NOISE_FLOOR`."""
    floor = NOISE_FLOOR[resource] if floor is None else floor
    unit = UNIT[resource]
    count = len(points)
    span = points[-1][0] - points[0][0] if count >= 2 else 0.0
    if count < MIN_SAMPLES or span < MIN_SECONDS:
        return Trend(
            resource=resource,
            verdict="too short to judge",
            samples=count,
            seconds=span,
            unit=unit,
            floor=floor,
            detail=f"too short to judge: {count} samples over {span:.3g} s (needs "
            f"{MIN_SAMPLES} samples over {MIN_SECONDS:g} s after the warm-up)",
        )
    # Imported only for a series long enough to judge: scipy costs a short run ~1 s.
    import numpy as np
    from scipy.stats import kendalltau, theilslopes

    t = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    scale = PER_MINUTE[resource]
    if float(np.ptp(y)) == 0.0:
        slope = low = high = 0.0
        tau: float | None = None
        p_value: float | None = None
    else:
        fit = theilslopes(y, t, alpha=0.95)
        slope, low, high = fit.slope * scale, fit.low_slope * scale, fit.high_slope * scale
        test = kendalltau(t, y)
        tau, p_value = _finite(float(test.statistic)), _finite(float(test.pvalue))
    verdict = _verdict(slope, low, high, tau, p_value, floor)
    growth = slope * projection_minutes
    trend_text = "flat" if p_value is None else f"Mann-Kendall p={p_value:.2g}"
    return Trend(
        resource=resource,
        verdict=verdict,
        samples=count,
        seconds=span,
        unit=unit,
        slope=slope,
        slope_low=low,
        slope_high=high,
        kendall_tau=tau,
        p_value=p_value,
        floor=floor,
        projected_growth=growth,
        detail=(
            f"{verdict}: {resource} slope {_num(slope)} {unit} (95% CI {_num(low)} to "
            f"{_num(high)}; {trend_text}; {count} samples over {span:,.0f} s); projected "
            f"{_num(growth, '+')} {GROWTH_UNIT[resource]} over {projection_minutes:g} min "
            "(a projection, not measured)"
        ),
    )


def _overall(trends: list[Trend]) -> LeakVerdictText:
    verdicts = [t.verdict for t in trends]
    if "leak" in verdicts:
        return "leak"
    judged = [v for v in verdicts if v != "too short to judge"]
    if not judged:
        return "too short to judge"
    memory = next((t.verdict for t in trends if t.resource == "memory"), None)
    if memory == "no leak" and all(v == "no leak" for v in judged):
        return "no leak"
    return "inconclusive"


def leak_report(
    usage: ResourceUsage | None,
    window: tuple[float, float] | None = None,
    warmup: float | None = None,
    projection_minutes: float = PROJECTION_MINUTES,
    memory_budget: float = MEMORY_BUDGET_BYTES,
) -> LeakReport | None:
    """The leak verdict on the target's samples; None when nothing was sampled.

    ``window``: (start, end) seconds of the run to judge (e.g. the longest constant hold of
    the shape, so that a step up in load is not read as a leak); default the whole series.
    ``warmup``: seconds left out at the window's start (default :func:`default_warmup`).
    ``memory_budget``: bytes the target may grow over ``projection_minutes``; memory growing
    slower than that rate is no leak.
    """
    series = sorted(usage.series, key=lambda s: s.t) if usage is not None else []
    if not series:
        return None
    start, end = window if window is not None else (series[0].t, series[-1].t)
    skip = default_warmup(end - start) if warmup is None else warmup
    kept = [s for s in series if start + skip <= s.t <= end]
    trends: list[Trend] = []
    for resource in RESOURCES:
        points = [(s.t, v) for s in kept if (v := _value(s, resource)) is not None]
        if not points and resource != "memory":
            continue  # not sampled (e.g. a container): nothing to say about it
        floor = memory_budget / MB / projection_minutes if resource == "memory" else None
        trends.append(judge_trend(points, resource, projection_minutes, floor))
    verdict = _overall(trends)
    memory = trends[0]
    memory_leak = {"leak": True, "no leak": False}.get(memory.verdict)
    return LeakReport(
        verdict=verdict,
        memory_leak=memory_leak,
        warmup=skip,
        window_start=start,
        window_end=end,
        projection_minutes=projection_minutes,
        trends=trends,
        summary=f"{verdict} (memory: {memory.detail})",
    )
