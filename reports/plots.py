"""PNG plots of results: latency, throughput, resources, capacity per step, suite p95.

matplotlib and pandas are imported inside the functions: importing this module (and so
``reports.writer``) must not slow ``orchestrate --help``. Missing data is a gap (NaN),
never a zero; a plot whose data is missing is not drawn and says why instead.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.models import LoadTestResult

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LOG = logging.getLogger(__name__)

# One colour per quantity, the same in every plot.
# fmt: off
COLORS = {
    "p50": "#4c72b0", "p95": "#dd8452", "p99": "#8172b3", "requests": "#55a868",
    "errors": "#c44e52", "concurrency": "#7f7f7f", "rss": "#937860", "cpu": "#da8bc3",
    "generator": "#3a9fbf", "limit": "#c44e52",
}
# fmt: on
SIZE = (9.0, 3.5)  # inches at DPI 100: 900 x 350 px
DPI = 100
MB = 1_000_000
# A trailing bucket shorter than this share of a bucket is too short to be a rate.
MIN_BUCKET_SHARE = 0.25

Draw = Callable[[LoadTestResult, "Figure"], None]


@dataclass(frozen=True)
class Plot:
    title: str
    file: str | None = None  # relative to the report directory
    reason: str | None = None  # why it is not drawn


def why_missing(result: LoadTestResult, keys: Sequence[str], default: str) -> str:
    for key in keys:
        if key in result.missing:
            return f"{key}: {result.missing[key]}"
    return default


def per_second_frame(result: LoadTestResult) -> pd.DataFrame:
    """The time series as rates per second at each bucket's middle; NaN rows break gaps."""
    import pandas as pd

    frame = pd.DataFrame([b.model_dump() for b in result.time_series])
    for column in ("concurrency", "p50", "p95", "p99"):
        frame[column] = frame[column].astype("float64")
    diffs = frame["t"].diff().dropna()
    step = float(diffs.median()) if len(diffs) else 1.0
    ends = frame["t"].shift(-1).fillna(frame["t"] + step).clip(upper=frame["t"] + step)
    width = ends.clip(upper=max(result.duration, float(frame["t"].iloc[-1]))) - frame["t"]
    frame["x"] = frame["t"] + width / 2
    width = width.where(width >= MIN_BUCKET_SHARE * step)
    frame["rps"] = frame["requests"] / width
    frame["eps"] = frame["errors"] / width
    # A missing second is a gap in the lines, not a straight line across it.
    breaks = frame.loc[frame["t"].diff(-1) < -1.5 * step, "x"] + step
    return pd.concat([frame, pd.DataFrame({"x": breaks})]).sort_values("x", ignore_index=True)


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title if len(title) <= 60 else title[:59] + "…", fontsize=11, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(visible=True, alpha=0.3)
    from_zero(ax)


def from_zero(ax: Axes) -> None:
    """Y from 0 (call after plotting) with headroom, so no line hides under the frame."""
    top = ax.get_ylim()[1]
    ax.set_ylim(bottom=0, top=top * 1.1 if top > 0 else 1.0)


def _legend(*axes: Axes) -> None:
    """One legend for all axes, above the plot on the title's line: inside it hides data."""
    handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
    labels = [label for ax in axes for label in ax.get_legend_handles_labels()[1]]
    where: dict[str, Any] = {
        "loc": "lower right",
        "bbox_to_anchor": (1.0, 1.0),
        "borderaxespad": 0.1,
    }
    axes[-1].legend(handles, labels, ncols=len(labels), fontsize=8, frameon=False, **where)


def draw_latency(result: LoadTestResult, fig: Figure) -> None:
    frame = per_second_frame(result)
    ax = fig.subplots()
    for column in ("p50", "p95", "p99"):
        if frame[column].notna().any():
            ax.plot(frame["x"], frame[column], color=COLORS[column], label=column, marker=".")
    _style(ax, f"{result.scenario}: latency per second", "seconds since start", "latency (ms)")
    _legend(ax)


def users_label(result: LoadTestResult) -> str:
    return "users" if result.workload_model == "closed" else "arrivals/s"


def draw_throughput(result: LoadTestResult, fig: Figure) -> None:
    frame = per_second_frame(result)
    ax = fig.subplots()
    ax.plot(frame["x"], frame["rps"], color=COLORS["requests"], label="requests/s", marker=".")
    ax.plot(frame["x"], frame["eps"], color=COLORS["errors"], label="errors/s", marker=".")
    _style(ax, f"{result.scenario}: throughput per second", "seconds since start", "per second")
    axes = [ax]
    if frame["concurrency"].notna().any():
        twin = ax.twinx()
        label = f"concurrency ({users_label(result)})"
        style: dict[str, Any] = {
            "color": COLORS["concurrency"],
            "linestyle": "--",
            "drawstyle": "steps-mid",
        }
        twin.plot(frame["x"], frame["concurrency"], label=label, **style)
        twin.set_ylabel(users_label(result))
        twin.set_ylim(bottom=0, top=max(1.0, float(frame["concurrency"].max())) * 1.15)
        axes.append(twin)
    _legend(*axes)


def _samples(points: Sequence[tuple[float, float | None]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(points, columns=["t", "v"]).astype("float64")


def nan_for_none(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _top(samples: pd.DataFrame) -> float:
    top = float(samples["v"].max(skipna=True))
    return 0.0 if math.isnan(top) else top  # all NaN: nothing to fit


def draw_resources(result: LoadTestResult, fig: Figure) -> None:
    usage = result.resource_usage
    assert usage is not None
    ax = fig.subplots()
    rss = _samples([(s.t, None if s.rss_bytes is None else s.rss_bytes / MB) for s in usage.series])
    ax.plot(rss["t"], rss["v"], color=COLORS["rss"], label="target RSS (MB)", marker=".")
    _style(ax, f"{result.scenario}: target resources", "seconds since start", "RSS (MB)")
    # From zero, so that a small change does not look like a leak; headroom keeps it visible.
    ax.set_ylim(bottom=0, top=max(1.0, _top(rss)) * 1.2)
    twin = ax.twinx()
    cpu = _samples([(s.t, s.cpu_percent) for s in usage.series])
    twin.plot(cpu["t"], cpu["v"], color=COLORS["cpu"], label="target CPU %", marker=".")
    tops = [100.0, _top(cpu)]
    if result.generator is not None and result.generator.series:
        gen = _samples([(s.t, s.cpu_percent) for s in result.generator.series])
        twin.plot(gen["t"], gen["v"], color=COLORS["generator"], label="load tool CPU %")
        tops.append(_top(gen))
    twin.set_ylabel("CPU (%; 100 = one core)")
    twin.set_ylim(bottom=0, top=max(tops) * 1.1)
    if usage.target_exit is not None:
        ax.axvline(usage.target_exit.t, color=COLORS["limit"], linestyle=":", label="target exit")
    _legend(ax, twin)


def draw_capacity(result: LoadTestResult, fig: Figure) -> None:
    steps = result.steps
    xs = [s.concurrency for s in steps]
    # A line reads as "more load ->" only when the load only rose; a spike's way back down
    # would fold the line onto itself, so then each step is a numbered point.
    rising = all(a < b for a, b in pairwise(xs))
    line = "-" if rising else "none"
    ax = fig.subplots()
    tput = nan_for_none([s.throughput for s in steps])
    ax.plot(xs, tput, color=COLORS["requests"], marker="o", ls=line, label="throughput (req/s)")
    for x, y, step in zip(xs, tput, steps, strict=True):
        failed = step.failed_requests / step.total_requests if step.total_requests else 0.0
        note = " ".join(
            ([] if rising else [f"#{step.index}"]) + ([f"{failed:.1%} err"] if failed else [])
        )
        if note:
            colour = COLORS["errors"] if failed else "#444444"
            ax.annotate(
                note, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, color=colour
            )
    _style(ax, f"{result.scenario}: capacity per step", users_label(result), "requests/s")
    twin = ax.twinx()
    p99 = nan_for_none([s.response_time.p99 for s in steps])
    twin.plot(xs, p99, color=COLORS["p99"], marker="s", ls=line, label="p99 (ms)")
    twin.set_ylabel("p99 latency (ms)")
    from_zero(twin)
    limits = result.capacity_limits
    # Marked only when a higher step broke the limit: the top step tested is not a limit.
    top = limits.max_concurrency if limits is not None else None
    if top is not None and top < max(xs):
        label = f"last step within the error limit ({top:,})"
        ax.axvline(top, color=COLORS["limit"], linestyle="--", label=label)
    _legend(ax, twin)


def draw_suite_p95(results: Sequence[LoadTestResult], fig: Figure) -> None:
    ax = fig.subplots()
    names = [f"{r.scenario} ({r.tool})" for r in results]
    values = [r.response_time.p95 for r in results]
    positions = range(len(results))
    # NaN draws no bar: an unmeasured p95 is not a zero.
    ax.bar(positions, nan_for_none(values), color=COLORS["p95"], label="p95 (ms)")
    labelled = False
    for i, (result, value) in enumerate(zip(results, values, strict=True)):
        note = "not measured" if value is None else f"{value:,.4g}"
        ax.annotate(note, (i, value or 0.0), ha="center", va="bottom", fontsize=8)
        for check in result.thresholds:
            if check.metric == "p95":
                label = "_nolegend_" if labelled else "p95 limit"
                ax.hlines(check.limit, i - 0.4, i + 0.4, color=COLORS["limit"], label=label)
                labelled = True
    ax.set_xticks(list(positions), names, rotation=15, ha="right", fontsize=8)
    _style(ax, "p95 latency per scenario", "", "p95 (ms)")
    ax.margins(y=0.15)
    _legend(ax)


def save_figure(path: Path, draw: Callable[[Figure], None]) -> None:
    """Draw on a fresh Agg figure (no pyplot: no global state, safe in any thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    fig.savefig(path, format="png", dpi=DPI, pil_kwargs={"optimize": True})


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "result"


def _reason(result: LoadTestResult, kind: str) -> str | None:
    """Why ``kind`` cannot be drawn for this result; None when its data is there."""
    series = result.time_series
    usage = result.resource_usage
    if kind in ("latency", "throughput") and not series:
        return why_missing(result, ["timeSeries"], "the tool gave no per-second samples")
    if kind == "latency" and all(b.p50 is b.p95 is b.p99 is None for b in series):
        keys = ["timeSeries.p50", "timeSeries.p95", "timeSeries.p99", "timeSeries"]
        return why_missing(result, keys, "no per-second percentiles")
    if kind == "resources" and (
        usage is None or all(s.rss_bytes is s.cpu_percent is None for s in usage.series)
    ):
        return why_missing(result, ["resourceUsage"], "the target's resources were not sampled")
    return None


PLOTS: dict[str, tuple[str, Draw]] = {
    "latency": ("Latency over time", draw_latency),
    "throughput": ("Throughput and errors over time", draw_throughput),
    "resources": ("Target resources", draw_resources),
    "capacity": ("Capacity per step", draw_capacity),
}


def plot_result(result: LoadTestResult, run_dir: Path, stem: str) -> list[Plot]:
    """Every plot of one result, drawn into run_dir/plots; a failed plot is logged, skipped."""
    plots = []
    for kind, (title, draw) in PLOTS.items():
        if kind == "capacity" and len(result.steps) < 2:
            continue  # only a stepped run has a capacity curve
        reason = _reason(result, kind)
        if reason is not None:
            plots.append(Plot(title, reason=f"not measured: {reason}"))
            continue
        plots.append(_draw(title, run_dir, f"{stem}-{kind}.png", partial(draw, result)))
    return plots


def plot_suite(results: Sequence[LoadTestResult], run_dir: Path) -> Plot | None:
    if len(results) < 2:
        return None  # one scenario's p95 is in its own section
    return _draw("p95 per scenario", run_dir, "suite-p95.png", partial(draw_suite_p95, results))


def _draw(title: str, run_dir: Path, name: str, draw: Callable[[Figure], None]) -> Plot:
    path = run_dir / "plots" / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_figure(path, draw)
    except OSError:
        raise  # the disk refused it: the writer says so once, for the whole report
    except Exception as exc:
        LOG.warning("plot %s not drawn: %s: %s", name, type(exc).__name__, exc)
        return Plot(title, reason=f"plot failed: {type(exc).__name__}: {exc}")
    return Plot(title, file=f"plots/{name}")
