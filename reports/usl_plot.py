"""Capacity against concurrency from the capacity report's holds: goodput and p95 per held
level, the fitted Universal Scalability Law curve (an estimate, labelled so), the knee and
the SLA lines.

A pure function of JSON data (one ``capacity["scenarios"][i]`` analysis, camelCase as
written to capacity-report.json) to SVG bytes; matplotlib and numpy are imported when it
draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from reports import plots
from reports.plots import COLORS, from_zero, nan_for_none, render_svg, style
from reports.summary import units

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from orchestrator.models import LoadTestResult

USL_LABEL = "USL fit (estimate)"
# Points drawn along the fitted curve.
CURVE_POINTS = 200


def usl_holds(analysis: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The held levels that measured throughput, in order of concurrency."""
    holds = [h for h in analysis.get("holds") or [] if h.get("concurrency")]
    return sorted(holds, key=lambda h: h["concurrency"])


def can_draw(analysis: Mapping[str, Any] | None) -> bool:
    """At least two held levels: one level is no curve."""
    return analysis is not None and len({h["concurrency"] for h in usl_holds(analysis)}) >= 2


def _fitted(analysis: Mapping[str, Any], top: float) -> tuple[list[float], list[float]] | None:
    """The fitted curve over 1..``top`` users, or None without a usable fit."""
    from orchestrator.conclusions.models import UslFit
    from orchestrator.conclusions.usl import predict

    raw = analysis.get("usl")
    if not raw or raw.get("quality") != "good":
        return None
    fit = UslFit.model_validate(raw)
    xs = [1.0 + (top - 1.0) * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
    ys = [predict(fit, x) for x in xs]
    if any(y is None for y in ys):
        return None
    return xs, [float(y) for y in ys if y is not None]


def _sla_limit(thresholds: Sequence[Mapping[str, Any]], metric: str) -> float | None:
    for check in thresholds:
        if check.get("metric") in (metric, f"responseTime.{metric}"):
            return float(check["limit"])
    return None


def usl_capacity_svg(
    analysis: Mapping[str, Any],
    thresholds: Sequence[Mapping[str, Any]] = (),
    users: str = "users",
    rate: str = "req/s",
) -> bytes:
    """Goodput and p95 of each held level against its concurrency, the USL curve (when
    the fit is good), the knee and the scenario's p95 / throughput SLA lines."""
    holds = usl_holds(analysis)
    xs = [float(h["concurrency"]) for h in holds]
    goodput = nan_for_none([h.get("goodput") for h in holds])
    p95 = nan_for_none([h.get("p95") for h in holds])
    curve = _fitted(analysis, max(xs) * 1.25)
    usl = analysis.get("usl") or {}
    knee = analysis.get("knee") or {}
    p95_sla = _sla_limit(thresholds, "p95")
    throughput_sla = _sla_limit(thresholds, "throughput")

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        ax.plot(xs, goodput, color=COLORS["requests"], marker="o", ls="-",
                label=f"goodput ({rate}, held levels)")  # fmt: skip
        if curve is not None:
            r2 = usl.get("rSquared")
            ax.plot(*curve, color=COLORS["requests"], ls=":",
                    label=USL_LABEL + (f", R² {r2:.2f}" if r2 is not None else ""))  # fmt: skip
        if throughput_sla is not None:
            ax.axhline(throughput_sla, color=COLORS["limit"], ls="-.", lw=1,
                       label=f"SLA throughput {throughput_sla:,.4g} {rate}")  # fmt: skip
        if knee.get("found") and knee.get("concurrency") is not None:
            ax.axvline(knee["concurrency"], color=COLORS["concurrency"], ls="--",
                       label=f"knee ({knee['concurrency']:,} {users})")  # fmt: skip
        # The title is cut at 60 characters: the curve's label lives in the legend.
        quality = usl.get("quality", "missing")
        title = "Capacity per held level" + ("" if curve else f" (no USL curve: fit {quality})")
        style(ax, title, rate)
        ax.set_xlabel(users)
        ax.set_xlim(0, max(xs) * 1.3)
        from_zero(ax)
        twin = ax.twinx()
        twin.plot(xs, p95, color=COLORS["p95"], marker="s", ls="-", label="p95 (ms)")
        if p95_sla is not None:
            twin.axhline(p95_sla, color=COLORS["limit"], ls="--", lw=1,
                         label=f"SLA p95 {p95_sla:,.4g} ms")  # fmt: skip
        twin.set_ylabel("p95 latency (ms)", fontsize=9)
        from_zero(twin)
        # Below the axes: up to six entries would cover the title on its line.
        handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
        labels = [t for a in (ax, twin) for t in a.get_legend_handles_labels()[1]]
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8,
                   frameon=False)  # fmt: skip

    return render_svg(draw, 4.0)


def capacity_svg(result: LoadTestResult) -> bytes:
    """Throughput and p99 per load step (a stepped run): where more load stops helping."""
    steps = result.steps
    xs = [s.concurrency for s in steps]
    _, rate = units(result.protocol)

    def draw(fig: Figure) -> None:
        # A line reads "more load ->" only when the load only rose; a spike's way back down
        # would fold the line onto itself, so then each step is a numbered point.
        rising = all(a < b for a, b in pairwise(xs))
        line = "-" if rising else "none"
        ax = fig.subplots()
        tput = plots.nan_for_none([s.throughput for s in steps])
        ax.plot(
            xs,
            tput,
            color=plots.COLORS["requests"],
            marker="o",
            ls=line,
            label=f"throughput ({rate})",
        )
        for x, y, step in zip(xs, tput, steps, strict=True):
            failed = step.failed_requests / step.total_requests if step.total_requests else 0.0
            note = " ".join(
                ([] if rising else [f"#{step.index}"]) + ([f"{failed:.1%} err"] if failed else [])
            )
            if note:
                last = x == max(xs)  # written leftwards there, or the frame cuts it off
                ax.annotate(note, (x, y), xytext=(-4 if last else 4, 4), fontsize=7,
                            textcoords="offset points", ha="right" if last else "left",
                            color=plots.COLORS["errors"] if failed else "#444444")  # fmt: skip
        plots.style(ax, "Capacity per step", rate)
        ax.set_xlabel(plots.users_label(result))
        plots.from_zero(ax)
        twin = ax.twinx()
        p99 = plots.nan_for_none([s.response_time.p99 for s in steps])
        twin.plot(xs, p99, color=plots.COLORS["p99"], marker="s", ls=line, label="p99 (ms)")
        twin.set_ylabel("p99 latency (ms)", fontsize=9)
        plots.from_zero(twin)
        limits = result.capacity_limits
        # Marked only when a higher step broke the limit: the top step tested is not a limit.
        top = limits.max_concurrency if limits is not None else None
        if top is not None and top < max(xs):
            ax.axvline(top, color=plots.COLORS["limit"], linestyle="--",
                       label=f"last step within the error limit ({top:,})")  # fmt: skip
        plots.legend(ax, twin)

    return plots.render_svg(draw, 3.3)
