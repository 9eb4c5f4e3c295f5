"""Per-flow numbers of a result: iterations completed and failed, how long an iteration
took (percentiles from a histogram of every completed one) and where iterations fail.

Each engine's script counts an iteration when it ends: completed (every step answered,
captured and checked) or failed at a step, with the failure's kind (``non_2xx``,
``capture_failed``, ``expect_failed``, or the transport error). Engines hand their counts
and histogram to :func:`flow_stats`, which alone turns them into :class:`FlowStats`. A
failed capture's kind comes as ``capture_failed:<rule>`` (``capture_failed:json sessionId``):
the rule that found nothing becomes the failure's ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import Field

from orchestrator.model_base import Model

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram


class IterationTime(Model):
    """Duration of an iteration in milliseconds, every number read from the histogram."""

    min: float | None = None
    max: float | None = None
    mean: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None


class FlowFailure(Model):
    step: str = Field(description="The step where these iterations ended.")
    kind: str = Field(description="Why: non_2xx, capture_failed, expect_failed, timeout, ...")
    iterations: int
    detail: str | None = Field(
        default=None, description="For capture_failed: the rule that found nothing in the reply."
    )


class FlowStats(Model):
    steps: list[str] = Field(description="The flow's steps, in order.")
    iterations: int = Field(description="Iterations that ended (completed + failed).")
    iterations_completed: int
    iterations_failed: int
    iteration_time: IterationTime = Field(
        description="Duration of completed iterations (think times included), in ms."
    )
    histogram: str | None = Field(
        default=None, description="HdrHistogram (V2, base64) of completed iterations, in µs."
    )
    failures: list[FlowFailure] = Field(
        default_factory=list, description="Where iterations failed, most first."
    )


def flow_stats(
    steps: list[str],
    completed: int,
    failed: Mapping[tuple[str, str], int],
    histogram: HdrHistogram | None,
) -> FlowStats:
    """The flow's numbers from an engine's counts; ``failed``: (step, kind) -> iterations."""
    counted = histogram is not None and histogram.get_total_count() > 0
    merged: dict[tuple[str, str, str | None], int] = {}
    for (step, reported), n in failed.items():
        kind, _, rule = reported.partition(":")
        key = (step, kind, f"{rule} not found in the reply" if rule else None)
        merged[key] = merged.get(key, 0) + n
    failures = [
        FlowFailure(step=step, kind=kind, detail=detail, iterations=n)
        for (step, kind, detail), n in sorted(merged.items(), key=lambda item: -item[1])
        if n > 0
    ]
    total_failed = sum(f.iterations for f in failures)
    return FlowStats(
        steps=steps,
        iterations=completed + total_failed,
        iterations_completed=completed,
        iterations_failed=total_failed,
        iteration_time=_summary(histogram) if counted and histogram else IterationTime(),
        histogram=histogram.encode().decode("ascii") if counted and histogram else None,
        failures=failures,
    )


def _summary(histogram: HdrHistogram) -> IterationTime:
    # hdrh directly: orchestrator.histogram imports the result models, which import this.
    def ms(value_us: float) -> float:
        return round(value_us / 1000.0, 3)

    percentile = histogram.get_value_at_percentile
    return IterationTime(
        min=ms(histogram.get_min_value()),
        max=ms(histogram.get_max_value()),
        mean=ms(histogram.get_mean_value()),
        p50=ms(percentile(50)),
        p90=ms(percentile(90)),
        p95=ms(percentile(95)),
        p99=ms(percentile(99)),
    )
