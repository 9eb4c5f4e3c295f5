"""Plots of one result as SVG bytes: a timeline on one shared time axis, capacity per step.

Every function here is pure (result in, SVG bytes out) so plots can be drawn anywhere, any
time after the run; matplotlib is imported inside the functions, never when this
module (or ``reports.writer``) is imported. Missing data is a gap (NaN), never a zero; a
panel whose data is missing says why instead of showing an empty frame.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import re
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from orchestrator.models import LoadTestResult
from reports.summary import units

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOG = logging.getLogger(__name__)

# One colour per quantity, the same in every plot.
# fmt: off
COLORS = {
    "p50": "#4c72b0", "p95": "#dd8452", "p99": "#8172b3", "requests": "#55a868",
    "errors": "#c44e52", "concurrency": "#7f7f7f", "rss": "#937860", "cpu": "#da8bc3",
    "generator": "#3a9fbf", "limit": "#c44e52", "pool": "#4c72b0", "waiting": "#c44e52",
}
# fmt: on
WIDTH = 9.0  # inches; at the SVG's 72 units per inch the page scales it to its column
PANEL = 2.0  # inches per panel of the timeline
MB = 1_000_000
LATENCY_METRICS = ("min", "mean", "p50", "p90", "p95", "p99", "p999", "max")
# A trailing bucket shorter than this share of a bucket is too short to be a rate.
MIN_BUCKET_SHARE = 0.25
# Above this many points a line has no markers: they would hide the line.
MARKERS_UP_TO = 60

Draw = Callable[["Figure"], None]


@dataclass(frozen=True)
class Plot:
    """One picture of the report: SVG bytes, or why there is none."""

    kind: str
    title: str
    svg: bytes | None = None
    reason: str | None = None

    @property
    def data_uri(self) -> str:
        assert self.svg is not None
        return "data:image/svg+xml;base64," + base64.b64encode(self.svg).decode("ascii")


def render_svg(draw: Draw, height: float, width: float = WIDTH) -> bytes:
    """Draw on a fresh figure (no pyplot: no global state, safe in any thread) into SVG.

    Text is drawn as paths: the picture looks the same on a machine without the fonts.
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    with (
        mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "orchestrate"}),
        warnings.catch_warnings(),
    ):
        # A crowded figure falls back to its own layout: fine for a report, not console noise.
        warnings.filterwarnings("ignore", message="constrained_layout not applied")
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasSVG(fig)
        draw(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def draw_plot(kind: str, title: str, svg: Callable[[], bytes]) -> Plot:
    """A Plot, or the reason it failed: one broken picture never costs the others."""
    try:
        return Plot(kind, title, svg=svg())
    except Exception as exc:
        LOG.warning("plot %s not drawn: %s: %s", title, type(exc).__name__, exc)
        return Plot(kind, title, reason=f"plot failed: {type(exc).__name__}: {exc}")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "result"


def why_missing(result: LoadTestResult, keys: Sequence[str], default: str) -> str:
    for key in keys:
        if key in result.missing:
            return f"{key}: {result.missing[key]}"
    return default


Frame = dict[str, list[float]]


def per_second_frame(result: LoadTestResult) -> Frame:
    """The time series as rates per second at each bucket's middle, column by column (NaN
    for what is missing); NaN rows break the lines at gaps. Plain lists: pandas would cost
    the report a fifth of a second to import for a few dozen rows."""
    series = result.time_series
    t = [b.t for b in series]
    diffs = [b - a for a, b in pairwise(t)]
    step = statistics.median(diffs) if diffs else 1.0
    nexts = [*t[1:], t[-1] + step]
    ends = [min(after, start + step) for start, after in zip(t, nexts, strict=True)]
    last = max(result.duration, t[-1])
    widths = [min(end, last) - start for start, end in zip(t, ends, strict=True)]
    frame: Frame = {
        "x": [start + width / 2 for start, width in zip(t, widths, strict=True)],
        "rps": [],
        "eps": [],
    }
    for bucket, width in zip(series, widths, strict=True):
        # A trailing bucket too short to be a rate is no rate.
        rated = width >= MIN_BUCKET_SHARE * step
        frame["rps"].append(bucket.requests / width if rated else math.nan)
        frame["eps"].append(bucket.errors / width if rated else math.nan)
    for column in ("concurrency", "p50", "p95", "p99"):
        frame[column] = nan_for_none([getattr(b, column) for b in series])
    # A missing second is a gap in the lines, not a straight line across it.
    gaps = [i for i, (a, b) in enumerate(pairwise(t)) if b - a > 1.5 * step]
    for i in reversed(gaps):
        for column, values in frame.items():
            values.insert(i + 1, frame["x"][i] + step if column == "x" else math.nan)
    return frame


def known(values: Sequence[float]) -> list[float]:
    """The values that are not NaN."""
    return [v for v in values if not math.isnan(v)]


def nan_for_none(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _marker(count: int) -> str:
    return "." if count <= MARKERS_UP_TO else ""


def from_zero(ax: Axes, top: float | None = None) -> None:
    """Y from 0 (call after plotting) with headroom, so no line hides under the frame."""
    top = ax.get_ylim()[1] if top is None else top
    ax.set_ylim(bottom=0, top=top * 1.1 if top > 0 else 1.0)


def legend(*axes: Axes) -> None:
    """One legend for all axes, above the panel on its title's line: inside it hides data."""
    handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
    labels = [label for ax in axes for label in ax.get_legend_handles_labels()[1]]
    if labels:
        where: dict[str, Any] = {"loc": "lower right", "bbox_to_anchor": (1.0, 1.0)}
        axes[-1].legend(
            handles,
            labels,
            ncols=len(labels),
            fontsize=8,
            frameon=False,
            borderaxespad=0.1,
            **where,
        )


def plain_log_ticks(axis: Any) -> None:
    """Log-scale ticks as plain numbers (0.5, 1, 20, 1,000), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.4g}"))
    axis.set_minor_formatter(FuncFormatter(lambda *_: ""))


def style(ax: Axes, title: str, ylabel: str) -> None:
    ax.set_title(title if len(title) <= 60 else title[:59] + "…", fontsize=10, loc="left")
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(visible=True, alpha=0.3)


def say_missing(ax: Axes, title: str, why: str) -> None:
    """A panel without data says so, on the shared axis, instead of plotting zeros."""
    style(ax, title, "")
    ax.set_yticks([])
    ax.text(0.5, 0.5, f"not measured: {why}", transform=ax.transAxes, ha="center",
            va="center", fontsize=9, color="#7a5600", wrap=True)  # fmt: skip


def users_label(result: LoadTestResult) -> str:
    return "users" if result.workload_model == "closed" else "arrivals/s"


def _latency_panel(result: LoadTestResult, ax: Axes) -> None:
    title = "Latency per second"
    if not result.time_series:
        return say_missing(ax, title, why_missing(result, ["timeSeries"], "no per-second samples"))
    if all(b.p50 is b.p95 is b.p99 is None for b in result.time_series):
        keys = ["timeSeries.p50", "timeSeries.p95", "timeSeries.p99", "timeSeries"]
        return say_missing(ax, title, why_missing(result, keys, "no per-second percentiles"))
    frame = per_second_frame(result)
    for column in ("p50", "p95", "p99"):
        if known(frame[column]):
            ax.plot(frame["x"], frame[column], color=COLORS[column], label=column,
                    marker=_marker(len(frame["x"])))  # fmt: skip
    style(ax, title, "latency (ms)")
    top = max(known(frame["p50"] + frame["p95"] + frame["p99"]))
    # An SLA line far above the data would flatten it: such a limit is named, not drawn.
    off_scale = []
    for check in result.thresholds:
        if check.metric in ("p50", "p95", "p99") and check.op in ("<", "<="):
            if check.limit <= 2.5 * top:
                ax.axhline(check.limit, color=COLORS[check.metric], linestyle="--", linewidth=1,
                           label=f"{check.metric} limit")  # fmt: skip
                top = max(top, check.limit)
            else:
                off_scale.append(f"{check.metric} limit {check.limit:,.4g} ms")
    from_zero(ax, top)
    if off_scale:
        ax.text(0.005, 0.97, "above this scale: " + ", ".join(off_scale), transform=ax.transAxes,
                va="top", fontsize=8, color=COLORS["limit"])  # fmt: skip
    legend(ax)
    return None


def _throughput_panel(result: LoadTestResult, ax: Axes) -> None:
    noun, _ = units(result.protocol)
    title = f"{noun.capitalize()} and errors per second, with active {users_label(result)}"
    if not result.time_series:
        return say_missing(ax, title, why_missing(result, ["timeSeries"], "no per-second samples"))
    frame = per_second_frame(result)
    mark = _marker(len(frame["x"]))
    ax.plot(frame["x"], frame["rps"], color=COLORS["requests"], label=f"{noun}/s", marker=mark)
    ax.plot(frame["x"], frame["eps"], color=COLORS["errors"], label="errors/s", marker=mark)
    style(ax, title, "per second")
    from_zero(ax)
    axes = [ax]
    if known(frame["concurrency"]):
        twin = ax.twinx()
        twin.plot(frame["x"], frame["concurrency"], color=COLORS["concurrency"], linestyle="--",
                  drawstyle="steps-mid", label=users_label(result))  # fmt: skip
        twin.set_ylabel(users_label(result), fontsize=9)
        twin.set_ylim(bottom=0, top=max(1.0, *known(frame["concurrency"])) * 1.15)
        axes.append(twin)
    legend(*axes)
    return None


def _values(points: Sequence[tuple[float, float | None]]) -> tuple[list[float], list[float]]:
    return [t for t, _ in points], nan_for_none([v for _, v in points])


def _top(values: Sequence[float]) -> float:
    return max((v for v in values if not math.isnan(v)), default=0.0)


def _resources_panel(result: LoadTestResult, ax: Axes) -> None:
    title = "Target memory and CPU"
    usage = result.resource_usage
    if usage is None or all(s.rss_bytes is s.cpu_percent is None for s in usage.series):
        why = why_missing(result, ["resourceUsage"], "the target's resources were not sampled")
        return say_missing(ax, title, why)
    series = usage.series
    ts, rss = _values([(s.t, None if s.rss_bytes is None else s.rss_bytes / MB) for s in series])
    ax.plot(ts, rss, color=COLORS["rss"], label="memory (MB)", marker=_marker(len(ts)))
    style(ax, title, "memory (MB)")
    top = _top(rss)
    if usage.memory_limit and usage.memory_limit / MB <= 2.5 * max(top, 1.0):
        ax.axhline(usage.memory_limit / MB, color=COLORS["rss"], linestyle=":",
                   label="memory limit")  # fmt: skip
        top = max(top, usage.memory_limit / MB)
    # From zero, so that a small change does not look like a leak.
    ax.set_ylim(bottom=0, top=max(1.0, top) * 1.2)
    twin = ax.twinx()
    tc, cpu = _values([(s.t, s.cpu_percent) for s in series])
    twin.plot(tc, cpu, color=COLORS["cpu"], label="target CPU %", marker=_marker(len(tc)))
    tops = [100.0, _top(cpu), usage.cpu_limit_percent or 0.0]
    if result.generator is not None and result.generator.series:
        tg, gen = _values([(s.t, s.cpu_percent) for s in result.generator.series])
        twin.plot(tg, gen, color=COLORS["generator"], linestyle="--", label="load tool CPU %",
                  marker=_marker(len(tg)))  # fmt: skip
        tops.append(_top(gen))
    twin.set_ylabel("CPU % (100 = 1 core)", fontsize=9)
    twin.set_ylim(bottom=0, top=max(tops) * 1.1)
    if usage.target_exit is not None:
        ax.axvline(usage.target_exit.t, color=COLORS["limit"], linestyle=":", label="target exit")
    legend(ax, twin)
    return None


def _pool_panel(result: LoadTestResult, ax: Axes) -> None:
    pool = result.pool
    assert pool is not None
    title = f"Connection pool ({pool.source})"
    if not pool.series:
        return say_missing(ax, title, pool.missing.get("series", "no pool samples"))
    ts, used = _values([(s.t, s.utilization_percent) for s in pool.series])
    ax.plot(ts, used, color=COLORS["pool"], label="utilisation %", marker=_marker(len(ts)))
    style(ax, title, "utilisation %")
    ax.set_ylim(bottom=0, top=max(100.0, _top(used)) * 1.1)
    twin = ax.twinx()
    if any(s.waiting_clients is not None for s in pool.series):
        tw, waiting = _values([(s.t, s.waiting_clients) for s in pool.series])
        label = "waiting clients"
    else:  # PostgreSQL queues no clients: what waits there is a backend on a lock
        tw, waiting = _values([(s.t, s.waiting_on_lock) for s in pool.series])
        label = "backends waiting on a lock"
    twin.plot(tw, waiting, color=COLORS["waiting"], linestyle="--", label=label)
    twin.set_ylabel("count", fontsize=9)
    twin.set_ylim(bottom=0, top=max(1.0, _top(waiting)) * 1.15)
    legend(ax, twin)
    return None


Panel = Callable[[LoadTestResult, "Axes"], None]


def time_end(result: LoadTestResult) -> float:
    """The end of the shared time axis: the last second anything was measured."""
    ends = [result.duration]
    if result.time_series:
        ends.append(result.time_series[-1].t + 1.0)
    for series in (
        result.resource_usage.series if result.resource_usage else [],
        result.generator.series if result.generator else [],
        result.pool.series if result.pool else [],
    ):
        ends += [s.t for s in series[-1:]]
    return max(ends) or 1.0


def timeline_panels(result: LoadTestResult) -> list[Panel]:
    panels: list[Panel] = [_latency_panel, _throughput_panel, _resources_panel]
    return [*panels, _pool_panel] if result.pool is not None else panels


def timeline_svg(result: LoadTestResult) -> bytes:
    """Latency, throughput with errors and users, target memory and CPU (and the pool),
    stacked on ONE time axis: a moment reads straight down through every panel."""
    panels = timeline_panels(result)

    def draw(fig: Figure) -> None:
        axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
        for panel, ax in zip(panels, axes, strict=True):
            panel(result, ax)
        axes[-1].set_xlim(0, time_end(result) * 1.02)
        axes[-1].set_xlabel("seconds since start")

    return render_svg(draw, PANEL * len(panels) + 0.4)
