"""Response-time distribution (read from the HdrHistogram) and every scenario's latency
against its limits. Pure functions, result in, SVG bytes out; matplotlib only when drawing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrator import histogram as hist
from orchestrator.models import LoadTestResult, ResponseTime
from reports.plots import COLORS, LATENCY_METRICS, legend, plain_log_ticks, render_svg, style

if TYPE_CHECKING:
    from hdrh.histogram import HdrHistogram
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BINS = 40
CURVE_POINTS = 160
MAX_ENDPOINT_CURVES = 8
ENDPOINT_COLORS = ("#4c72b0", "#55a868", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
                   "#64b5cd")  # fmt: skip
# Summary percentiles a tool gives, as (percentile, field) for the curve without a histogram.
SUMMARY_POINTS = (
    (50.0, "p50"), (90.0, "p90"), (95.0, "p95"), (99.0, "p99"), (99.9, "p999"),
)  # fmt: skip
PERCENTILE_OF = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def nines(percentile: float) -> float:
    """The x of a percentile on a 'nines' axis: 90% -> 1, 99% -> 2, 99.9% -> 3."""
    return -math.log10(max(1e-9, 1.0 - percentile / 100.0))


def percentile_curve(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """(nines, latency ms) from 0% to the highest percentile the sample count can tell."""
    total = histogram.get_total_count()
    top = math.log10(total) if total > 1 else 1.0
    xs = [top * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
    percentiles = [100.0 * (1.0 - 10.0**-x) for x in xs]
    values = histogram.get_percentile_to_value_dict(percentiles)  # one pass over the counts
    ys = [values[p] / 1000.0 for p in percentiles]
    # The curve ends at the slowest response: 100% cannot sit on a log axis of nines.
    ys[-1] = histogram.get_max_value() / 1000.0
    return xs, ys


def latency_counts(histogram: HdrHistogram) -> tuple[list[float], list[int]]:
    """Every recorded latency (ms) with its count."""
    pairs = [
        (item.value_iterated_to / 1000.0, item.count_at_value_iterated_to)
        for item in histogram.get_recorded_iterator()
    ]
    return [v for v, _ in pairs], [c for _, c in pairs]


def _nines_axis(ax: Axes, top: float) -> None:
    ticks = list(range(math.floor(top) + 1))
    labels = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
    ax.set_xticks(ticks, [labels[i] if i < len(labels) else f"{i} nines" for i in ticks])
    ax.set_xlim(0, max(top, 1.0) * 1.02)
    ax.set_xlabel("percentile (log scale of nines)", fontsize=9)


def _limits(ax: Axes, result: LoadTestResult, top: float) -> None:
    """SLA latency limits where they apply: at their percentile, when on this scale."""
    for check in result.thresholds:
        if check.metric in PERCENTILE_OF and check.limit <= 2.5 * top:
            x = nines(PERCENTILE_OF[check.metric])
            ax.plot([x], [check.limit], marker="v", color=COLORS["limit"], linestyle="none",
                    markersize=8, label=f"{check.metric} limit {check.limit:,.4g} ms")  # fmt: skip


def _histogram_panel(ax: Axes, histogram: HdrHistogram) -> None:
    import numpy as np

    values, counts = latency_counts(histogram)
    low, high = max(min(values), 0.001), max(values)
    if high <= low * 1.01:
        high = low * 1.1
    edges = np.geomspace(low * 0.98, high * 1.02, BINS + 1)
    shares, _ = np.histogram(values, bins=edges, weights=counts)
    shares = 100.0 * shares / max(1, sum(counts))
    ax.bar(edges[:-1], shares, width=np.diff(edges), align="edge", color=COLORS["p50"], alpha=0.8,
           edgecolor="white", linewidth=0.3)  # fmt: skip
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    style(ax, "How long responses took", "share of responses (%)")
    ax.set_xlabel("latency (ms, log scale)", fontsize=9)


def distribution_svg(result: LoadTestResult) -> bytes:
    """Left: the share of responses per latency range; right: latency by percentile, for
    the whole scenario and each endpoint with a histogram. Needs ``result.histogram``."""
    assert result.histogram is not None
    whole = hist.decode(result.histogram)
    endpoints = [e for e in result.endpoints if e.histogram][:MAX_ENDPOINT_CURVES]

    def draw(fig: Figure) -> None:
        left, right = fig.subplots(1, 2, width_ratios=(1, 1.3))
        _histogram_panel(left, whole)
        xs, ys = percentile_curve(whole)
        right.plot(xs, ys, color="#222222", linewidth=2, label="all")
        for color, endpoint in zip(ENDPOINT_COLORS, endpoints, strict=False):
            assert endpoint.histogram is not None
            exs, eys = percentile_curve(hist.decode(endpoint.histogram))
            right.plot(exs, eys, color=color, linewidth=1, label=endpoint.name[:30])
        top = max(ys)
        _limits(right, result, top)
        style(right, "Latency by percentile", "latency (ms)")
        right.set_ylim(bottom=0, top=top * 1.1 or 1.0)
        _nines_axis(right, xs[-1])
        legend(right)

    return render_svg(draw, 3.2)


def summary_curve_svg(result: LoadTestResult) -> bytes:
    """Without a histogram: the tool's own summary percentiles, drawn as points (labelled)."""
    rt = result.response_time
    points = [(p, v) for p, key in SUMMARY_POINTS if (v := getattr(rt, key)) is not None]

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        xs = [nines(p) for p, _ in points]
        ax.plot(xs, [v for _, v in points], color="#222222", marker="o",
                label=f"{rt.source or 'tool'} percentiles (no histogram)")  # fmt: skip
        top = max(v for _, v in points)
        _limits(ax, result, top)
        style(ax, "Latency by percentile (the tool's summary)", "latency (ms)")
        ax.set_ylim(bottom=0, top=top * 1.1 or 1.0)
        _nines_axis(ax, max(xs))
        legend(ax)

    return render_svg(draw, 3.0)


def can_draw_summary(rt: ResponseTime) -> bool:
    return sum(getattr(rt, key) is not None for _, key in SUMMARY_POINTS) >= 2


def suite_latency_svg(results: Sequence[LoadTestResult]) -> bytes:
    """Each scenario's p50, p95 and p99 on one log scale, with its own latency limits.

    A log scale keeps a 3 ms p95 readable beside a 1,000 ms limit (on a linear scale it is
    a sliver); each value is written beside its marker.
    """

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        seen: set[str] = set()
        values: list[float] = []

        def once(label: str) -> str:
            """Each quantity once in the legend, however many rows show it."""
            if label in seen:
                return "_nolegend_"
            seen.add(label)
            return label

        for row, result in enumerate(results):
            rt = result.response_time
            points = [(k, getattr(rt, k)) for k in ("p50", "p95", "p99")]
            known = [(k, v) for k, v in points if v is not None and v > 0]
            if len(known) > 1:
                ax.plot([v for _, v in known], [row] * len(known), color="#bbbbbb", zorder=1)
            for key, value in known:
                ax.plot([value], [row], "o", color=COLORS[key], label=once(key), zorder=2)
                values.append(value)
            if rt.p95:
                ax.annotate(f"p95 {rt.p95:,.4g} ms", (rt.p95, row), xytext=(0, 7),
                            textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
            elif not known:
                ax.annotate("latency not measured", (0.02, row), xycoords=("axes fraction", "data"),
                            va="center", fontsize=8, color="#7a5600")  # fmt: skip
            for check in result.thresholds:
                if check.metric in LATENCY_METRICS and check.limit > 0:
                    ax.plot([check.limit], [row], "|", color=COLORS["limit"], markersize=16,
                            markeredgewidth=2, label=once("latency limit"))  # fmt: skip
                    ax.annotate(f"{check.metric} {check.op} {check.limit:,.4g} ms",
                                (check.limit, row), xytext=(0, -13), textcoords="offset points",
                                ha="center", fontsize=7, color=COLORS["limit"])  # fmt: skip
                    values.append(check.limit)
        ax.set_xscale("log")
        plain_log_ticks(ax.xaxis)
        if values:
            ax.set_xlim(min(values) / 2, max(values) * 2)
        ax.set_yticks(range(len(results)), [f"{r.scenario} ({r.tool})" for r in results])
        ax.set_ylim(len(results) - 0.4, -0.6)
        style(ax, "Latency per scenario and its limits (log scale)", "")
        ax.set_xlabel("latency (ms)", fontsize=9)
        legend(ax)

    return render_svg(draw, 1.0 + 0.55 * len(results))
