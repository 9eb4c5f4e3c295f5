"""Which pictures a result gets, each drawn or with the reason it is not.

The entry points for drawing plots anywhere (after the run, in another process): pure
functions from results to :class:`reports.plots.Plot` values holding SVG bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.models import LoadTestResult
from reports import distribution, plots
from reports.plots import Plot, draw_plot

TIMELINE = "Over time: latency, throughput with errors and users, target memory and CPU"
DISTRIBUTION = "Response-time distribution"
CAPACITY = "Capacity per step"
USL = "Capacity against concurrency: held levels, USL fit (estimate), knee and SLA"


def _timeline_reason(result: LoadTestResult) -> str | None:
    usage = result.resource_usage
    sampled = usage is not None and any(
        s.rss_bytes is not None or s.cpu_percent is not None for s in usage.series
    )
    if result.time_series or sampled or (result.pool is not None and result.pool.series):
        return None
    return plots.why_missing(
        result, ["timeSeries", "resourceUsage"], "no per-second samples and no resource samples"
    )


def scenario_figures(
    result: LoadTestResult, analysis: Mapping[str, Any] | None = None
) -> list[Plot]:
    """The timeline, the response-time distribution and (a stepped run) capacity per step;
    with the capacity report's ``analysis`` of the scenario (JSON), capacity against
    concurrency from its holds with the USL fit."""
    figures = []
    why = _timeline_reason(result)
    if why is None:
        figures.append(draw_plot("timeline", TIMELINE, lambda: plots.timeline_svg(result)))
    else:
        figures.append(Plot("timeline", TIMELINE, reason=f"not measured: {why}"))
    if result.histogram:
        figures.append(
            draw_plot("distribution", DISTRIBUTION, lambda: distribution.distribution_svg(result))
        )
    elif distribution.can_draw_summary(result.response_time):
        figures.append(
            draw_plot(
                "distribution",
                DISTRIBUTION + " (the tool's summary percentiles; no histogram)",
                lambda: distribution.summary_curve_svg(result),
            )
        )
    else:
        why = plots.why_missing(result, ["histogram", "responseTime"], "no latency histogram")
        figures.append(Plot("distribution", DISTRIBUTION, reason=f"not measured: {why}"))
    if len(result.steps) >= 2:
        figures.append(draw_plot("capacity", CAPACITY, lambda: _capacity_per_step(result)))
    if len(result.steps) >= 2 and analysis is not None:
        figures.append(_usl_figure(result, analysis))
    return figures


def _capacity_per_step(result: LoadTestResult) -> bytes:
    from reports import usl_plot

    return usl_plot.capacity_svg(result)


def _usl_figure(result: LoadTestResult, analysis: Mapping[str, Any]) -> Plot:
    from reports import usl_plot
    from reports.summary import units

    if not usl_plot.can_draw(analysis):
        return Plot("usl", USL, reason="fewer than two held load levels")
    thresholds = [t.model_dump(mode="json", by_alias=True) for t in result.thresholds]
    users = plots.users_label(result)
    rate = units(result.protocol)[1]
    return draw_plot(
        "usl", USL, lambda: usl_plot.usl_capacity_svg(analysis, thresholds, users, rate)
    )


def suite_figure(results: Sequence[LoadTestResult]) -> Plot | None:
    """Every scenario's latency against its limits; None for a single scenario."""
    if len(results) < 2:
        return None
    return draw_plot(
        "suite-latency",
        "Latency per scenario and its limits",
        lambda: distribution.suite_latency_svg(results),
    )
