"""Only what held its level counts: the hold part of each step, never the climb to it.

Engines without a native ramp (our autocannon runner) run a climb as short constant steps,
and the built-in stress plan alternates climbs and holds: the climb steps start fresh
connections, last a second or two and must not be read as levels the service held. Here each
StepSummary row is matched to the scenario's LoadShape (on the clock of the steps' own
durations, so the start-up cost of each step does not shift the match), marked ``hold`` or
``transition``, and consecutive hold steps at one level are merged into one :class:`Hold`.
Results without steps (k6, Artillery ramps) give holds from their per-second buckets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator import histogram as hist
from orchestrator.conclusions.models import Hold, HoldLatency, StepRole
from orchestrator.models import LoadTestResult, StepSummary, TimeBucket
from orchestrator.scenarios import LoadShape

# A step counts as a hold when at least this share of it lies in a constant segment.
HOLD_SHARE = 0.5
# Seconds at the start of a hold window of per-second buckets left out (connections opening).
SETTLE_SECONDS = 1.0
# A window of per-second buckets found without the shape needs this many seconds after settling.
MIN_WINDOW_SECONDS = 2


@dataclass(frozen=True)
class HoldAnalysis:
    roles: list[StepRole]
    holds: list[Hold]
    notes: list[str]


def constant_segments(shape: LoadShape) -> list[tuple[float, float, int]]:
    """(start, end, level) of every stage that holds its level, in shape seconds."""
    out: list[tuple[float, float, int]] = []
    t = 0.0
    for duration, low, high in shape.segments():
        if low == high:
            out.append((t, t + duration, high))
        t += duration
    return out


def classify_steps(steps: Sequence[StepSummary], shape: LoadShape) -> list[StepRole]:
    """Each step's role: ``hold`` when most of it lies in a constant segment of ``shape`` at
    its own level, else ``transition`` (a climb or a drop).

    Steps are placed on the shape's clock by their cumulative durations: the runner starts
    them one after another, and each start costs time that the shape does not have.
    """
    segments = constant_segments(shape)
    roles: list[StepRole] = []
    clock = 0.0
    for step in sorted(steps, key=lambda s: s.index):
        begin, end = clock, clock + step.duration
        clock = end
        inside = 0.0
        for seg_start, seg_end, level in segments:
            # A rate cap lowers the step's effective concurrency below the planned level.
            if level == step.concurrency or step.rate is not None:
                inside += max(0.0, min(end, seg_end) - max(begin, seg_start))
        share = inside / step.duration if step.duration > 0 else 0.0
        roles.append(
            StepRole(
                index=step.index,
                concurrency=step.concurrency,
                role="hold" if share >= HOLD_SHARE else "transition",
                hold_fraction=min(1.0, share),
            )
        )
    return roles


def _rate(count: int, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def _percent(part: int, total: int) -> float | None:
    return 100.0 * part / total if total > 0 else None


def _latency_of_steps(
    parts: list[StepSummary],
) -> tuple[float | None, float | None, float | None, HoldLatency | None]:
    """p50/p95/p99 of merged steps: exact from their histograms, else the highest part's."""
    if len(parts) == 1:
        rt = parts[0].response_time
        return rt.p50, rt.p95, rt.p99, "exact" if rt.p95 is not None else None
    encoded = [p.histogram for p in parts if p.total_requests > 0]
    if encoded and all(e is not None for e in encoded):
        merged = hist.merge(e for e in encoded if e is not None)
        if merged.get_total_count() > 0:
            # Only the percentiles: one pass (a full summary also scans for mean and stdev).
            us = merged.get_percentile_to_value_dict([50.0, 95.0, 99.0])
            return us[50.0] / 1000.0, us[95.0] / 1000.0, us[99.0] / 1000.0, "exact"

    def top(values: list[float | None]) -> float | None:
        return max((v for v in values if v is not None), default=None)

    p95 = top([p.response_time.p95 for p in parts])
    return (
        top([p.response_time.p50 for p in parts]),
        p95,
        top([p.response_time.p99 for p in parts]),
        "upper_bound" if p95 is not None else None,
    )


def hold_from_steps(parts: list[StepSummary]) -> Hold:
    """One hold from consecutive steps at one level: counts summed, latency merged."""
    total = sum(p.total_requests for p in parts)
    failed = sum(p.failed_requests for p in parts)
    seconds = sum(p.duration for p in parts)
    completed = (
        sum(p.throughput * p.duration for p in parts if p.throughput is not None)
        if all(p.throughput is not None for p in parts)
        else None
    )
    p50, p95, p99, latency = _latency_of_steps(parts)
    return Hold(
        concurrency=parts[0].concurrency,
        start=parts[0].start,
        duration=seconds,
        steps=[p.index for p in parts],
        source="steps",
        total_requests=total,
        failed_requests=failed,
        throughput=None if completed is None or seconds <= 0 else completed / seconds,
        goodput=_rate(total - failed, seconds),
        error_rate=_percent(failed, total),
        p50=p50,
        p95=p95,
        p99=p99,
        latency=latency,
    )


def holds_from_steps(steps: Sequence[StepSummary], roles: Sequence[StepRole]) -> list[Hold]:
    """Consecutive hold steps at one (non-zero) level merged; transitions and pauses left out."""
    role_of = {r.index: r.role for r in roles}
    groups: list[list[StepSummary]] = []
    previous: StepSummary | None = None
    for step in sorted(steps, key=lambda s: s.index):
        is_hold = role_of.get(step.index) == "hold" and step.concurrency > 0
        if not is_hold:
            previous = None
            continue
        if previous is not None and previous.concurrency == step.concurrency:
            groups[-1].append(step)
        else:
            groups.append([step])
        previous = step
    return [hold_from_steps(g) for g in groups]


def hold_from_buckets(buckets: list[TimeBucket], level: int) -> Hold:
    """One hold from whole seconds: its p95 is the highest per-second p95 (an upper bound)
    unless the window is one second."""
    requests = sum(b.requests for b in buckets)
    errors = sum(b.errors for b in buckets)
    seconds = float(len(buckets))

    def top(values: list[float | None]) -> float | None:
        return max((v for v in values if v is not None), default=None)

    p95 = top([b.p95 for b in buckets])
    exact = len(buckets) == 1
    return Hold(
        concurrency=level,
        start=buckets[0].t,
        duration=seconds,
        source="time_series",
        total_requests=requests,
        failed_requests=errors,
        throughput=_rate(requests, seconds),
        goodput=_rate(requests - errors, seconds),
        error_rate=_percent(errors, requests),
        p50=top([b.p50 for b in buckets]),
        p95=p95,
        p99=top([b.p99 for b in buckets]),
        latency=None if p95 is None else ("exact" if exact else "upper_bound"),
    )


def windows_from_shape(series: Sequence[TimeBucket], shape: LoadShape) -> list[Hold]:
    """Per-second buckets inside each constant non-zero segment, its first second left out;
    a bucket whose measured concurrency differs from the level is left out too."""
    holds: list[Hold] = []
    for seg_start, seg_end, level in constant_segments(shape):
        if level <= 0:
            continue
        inside = [
            b
            for b in series
            if b.t >= seg_start + SETTLE_SECONDS
            and b.t + 1.0 <= seg_end
            and (b.concurrency is None or b.concurrency == level)
        ]
        if inside:
            holds.append(hold_from_buckets(inside, level))
    return holds


def windows_from_concurrency(series: Sequence[TimeBucket]) -> list[Hold]:
    """Without a shape: runs of consecutive seconds at one measured concurrency."""
    runs: list[list[TimeBucket]] = []
    for bucket in sorted(series, key=lambda b: b.t):
        level = bucket.concurrency
        if level is None or level <= 0:
            runs.append([])
            continue
        last = runs[-1][-1] if runs and runs[-1] else None
        if last is not None and last.concurrency == level and bucket.t == last.t + 1.0:
            runs[-1].append(bucket)
        else:
            runs.append([bucket])
    holds: list[Hold] = []
    for run in runs:
        settled = run[int(SETTLE_SECONDS) :]
        if len(settled) >= MIN_WINDOW_SECONDS and settled[0].concurrency is not None:
            holds.append(hold_from_buckets(settled, settled[0].concurrency))
    return holds


def analyse_holds(result: LoadTestResult, shape: LoadShape | None) -> HoldAnalysis:
    """The holds of ``result`` (from its steps, else its per-second buckets) and each step's
    role; ``shape`` is the scenario's load shape (None: every step is taken as a hold)."""
    notes: list[str] = []
    if result.steps:
        if shape is None:
            roles = [
                StepRole(index=s.index, concurrency=s.concurrency, role="hold", hold_fraction=1.0)
                for s in result.steps
            ]
            notes.append("load shape unknown: every step is taken as a hold")
        else:
            roles = classify_steps(result.steps, shape)
            climbs = sum(r.role == "transition" for r in roles)
            if climbs:
                notes.append(
                    f"{climbs} of {len(roles)} steps are transitions (climbs or drops between "
                    "levels) and are left out of holds, knee and fit"
                )
        return HoldAnalysis(roles, holds_from_steps(result.steps, roles), notes)
    if not result.time_series:
        return HoldAnalysis([], [], ["no steps and no per-second buckets: no hold to read"])
    if shape is not None:
        holds = windows_from_shape(result.time_series, shape)
    else:
        holds = windows_from_concurrency(result.time_series)
        notes.append("load shape unknown: holds are runs of seconds at one measured concurrency")
    if holds:
        notes.append(
            "holds from per-second buckets: their p95/p99 are the highest per-second values "
            "(an upper bound; per-second percentiles cannot be merged)"
        )
    else:
        notes.append("no whole second inside a constant level: no hold to read")
    return HoldAnalysis([], holds, notes)


def longest_hold_window(holds: Sequence[Hold]) -> tuple[float, float] | None:
    """(start, end) seconds of the longest hold (the earliest of equals): where a trend in the
    target's resources is judged, so that a step up in load is not read as a leak."""
    longest = max(holds, key=lambda h: (h.duration, -h.start), default=None)
    return None if longest is None else (longest.start, longest.start + longest.duration)
