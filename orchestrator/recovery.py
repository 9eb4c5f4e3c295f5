"""Recovery after a spike: how long after the load dropped back the target served like it
did before the spike.

Each phase's p95 is read from one exact merge of its per-second histograms
(``TimeBucket.histogram``). The recovery time is when a sliding window of
:data:`WINDOW_SECONDS` whole seconds, merged the same way, first has p95 within
:data:`RECOVERY_FACTOR` x the baseline's and an error rate within the baseline's plus
:data:`ERROR_BAND` percentage points, and every later window stays so until the recovery
window ends. Without per-second histograms (an imported file, an old result) the same rule
runs on the highest per-second p95 of each window: an upper bound, labelled as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from orchestrator import histogram as hdr
from orchestrator.models import LoadTestResult, Recovery, StepSummary, TimeBucket
from orchestrator.scenarios import LoadShape, Scenario

# Recovered: p95 back within this factor of the baseline's ...
RECOVERY_FACTOR = 1.5
# ... and the error rate within the baseline's plus this many percentage points.
ERROR_BAND = 1.0
# Whole seconds merged into each window the recovery is judged on.
WINDOW_SECONDS = 3
# A phase shorter than this (seconds) is too short to judge.
MIN_PHASE_SECONDS = 3.0


@dataclass(frozen=True)
class SpikePhases:
    """Seconds since the start of the load at which each phase of a spike begins."""

    ramp_start: float  # the rise to the peak
    peak_end: float  # the drop starts
    drop_end: float  # back at the recovery level: the recovery window
    end: float  # the recovery hold ends
    base: int  # level before the rise
    recovery_level: int

    def lengths(self) -> tuple[float, float, float]:
        """Seconds of the baseline, the spike (rise and peak) and the recovery window."""
        return self.ramp_start, self.peak_end - self.ramp_start, self.end - self.drop_end


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


def measured_phases(phases: SpikePhases, steps: Sequence[StepSummary]) -> SpikePhases:
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


def too_short(phases: SpikePhases) -> str | None:
    """Why the phases cannot be judged (one shorter than MIN_PHASE_SECONDS), or None."""
    baseline, spike, recovery = phases.lengths()
    if min(baseline, spike, recovery) >= MIN_PHASE_SECONDS:
        return None
    return (
        f"too short to judge: baseline {baseline:.1f} s, spike {spike:.1f} s, recovery "
        f"window {recovery:.1f} s (each needs at least {MIN_PHASE_SECONDS:g} s)"
    )


class _Windows:
    """p95 of a run of seconds: one exact merge of their histograms, or (without them)
    the highest per-second p95, an upper bound."""

    def __init__(self, buckets: Sequence[TimeBucket]) -> None:
        # Exact only when every second that measured a latency kept its histogram.
        self.exact = all(b.histogram is not None for b in buckets if b.p95 is not None)
        self._decoded: dict[float, HdrHistogram] = {}
        if self.exact:
            self._decoded = {b.t: hdr.decode(b.histogram) for b in buckets if b.histogram}

    def p95(self, buckets: Sequence[TimeBucket]) -> float | None:
        if not self.exact:
            return max((b.p95 for b in buckets if b.p95 is not None), default=None)
        merged = hdr.new_histogram()
        for bucket in buckets:
            found = self._decoded.get(bucket.t)
            if found is not None:
                merged.add(found)
        if merged.get_total_count() == 0:
            return None
        return float(merged.get_value_at_percentile(95.0)) / 1000.0


def _error_rate(buckets: Sequence[TimeBucket]) -> float | None:
    requests = sum(b.requests for b in buckets)
    return 100.0 * sum(b.errors for b in buckets) / requests if requests else None


def _recovered_at(
    window: Sequence[TimeBucket], p95: _Windows, p95_limit: float, error_limit: float
) -> float | None:
    """Start (s) of the first sliding window after which every window is within both
    limits, to the end of the recovery window; None if the last one is not."""
    found: float | None = None
    for i in range(len(window) - WINDOW_SECONDS + 1):
        part = window[i : i + WINDOW_SECONDS]
        latency, errors = p95.p95(part), _error_rate(part)
        good = (
            latency is not None
            and latency <= p95_limit
            and errors is not None
            and errors <= error_limit
        )
        if not good:
            found = None
        elif found is None:
            found = part[0].t
    return found


def _whole_seconds(series: Sequence[TimeBucket], start: float, end: float) -> list[TimeBucket]:
    return [b for b in series if b.t >= start and b.t + 1 <= end]


def recovery_after_spike(
    result: LoadTestResult, scenario: Scenario
) -> tuple[Recovery | None, str | None]:
    """How the target came back after the spike of ``scenario``'s shape, or why that is not
    known; (None, None) when the shape has no spike."""
    planned = spike_phases(scenario.shape)
    if planned is None:
        return None, None
    phases = measured_phases(planned, result.steps) if result.steps else planned
    short = too_short(phases)
    if short is not None:
        return None, short
    series = result.time_series
    # Whole seconds only; the run's first second (connections opening) is no baseline.
    baseline = _whole_seconds(series, 0.0, phases.ramp_start)
    if len(baseline) > WINDOW_SECONDS:
        baseline = [b for b in baseline if b.t >= 1]
    spike = [b for b in series if b.t + 1 > phases.ramp_start and b.t < phases.peak_end]
    window = _whole_seconds(series, phases.drop_end, phases.end)
    p95 = _Windows([*baseline, *spike, *window])
    baseline_p95 = p95.p95(baseline)
    baseline_errors = _error_rate(baseline)
    if baseline_p95 is None or baseline_errors is None or len(window) < WINDOW_SECONDS:
        return None, (
            f"no per-second latency before the spike or under {WINDOW_SECONDS} whole seconds "
            "after the drop (the run may have stopped before the recovery window ended)"
        )
    p95_limit = RECOVERY_FACTOR * baseline_p95
    error_limit = baseline_errors + ERROR_BAND
    at = _recovered_at(window, p95, p95_limit, error_limit)
    lengths = phases.lengths()
    return Recovery(
        method="histograms" if p95.exact else "upper_bound",
        baseline_p95=baseline_p95,
        spike_p95=p95.p95(spike),
        recovered_p95=p95.p95(window[len(window) // 2 :]),
        baseline_error_rate=baseline_errors,
        recovery_error_rate=_error_rate(window),
        recovered=at is not None,
        seconds_to_recover=None if at is None else round(max(0.0, at - phases.drop_end), 3),
        window_seconds=WINDOW_SECONDS,
        baseline_seconds=round(lengths[0], 3),
        spike_seconds=round(lengths[1], 3),
        recovery_seconds=round(lengths[2], 3),
    ), None
