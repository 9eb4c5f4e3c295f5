"""The answers before the evidence: a capacity report and a comparison, as rows to show.

The capacity report arrives as JSON-able data (a ``CapacityReport`` dumped with camelCase
keys); it is read generically, so a field it lacks is simply not shown. The comparison is
``orchestrator.compare.Comparison``. Markdown and HTML both render these rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.compare import Change, Comparison

BOUNDS = {
    "measured": "measured: a higher level broke the SLA",
    "lower_bound": "lower bound: every level tried stayed within the SLA",
}
LEAK = {True: "yes: memory grows", False: "no leak found", None: "could not tell"}


def humanize(key: str) -> str:
    """``maxConcurrentUsers`` -> ``max concurrent users``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).lower()
    return words.replace("web socket", "WebSocket")


def fmt_value(value: Any, unit: Any = None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        text = f"{int(value):,}"
    elif isinstance(value, float):
        text = f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}" if unit else text


@dataclass
class CapacityView:
    limits: list[dict[str, str]] = field(default_factory=list)
    bottlenecks: list[dict[str, str]] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    metrics: list[dict[str, str]] = field(default_factory=list)
    memory_leak: str | None = None


def _limit_row(name: str, limit: Any) -> dict[str, str]:
    if not isinstance(limit, Mapping):
        return {"limit": humanize(name), "value": fmt_value(limit)}
    unit = limit.get("unit")
    source = limit.get("source") or {}
    where = str(source.get("scenario", "")) if isinstance(source, Mapping) else str(source)
    if isinstance(source, Mapping) and source.get("concurrency") is not None:
        where += f" at {fmt_value(source['concurrency'])}"
    predicted = limit.get("predicted")
    return {
        "limit": humanize(name),
        "value": fmt_value(limit.get("value"), unit),
        "bound": BOUNDS.get(str(limit.get("bound")), str(limit.get("bound") or "")),
        "source": where,
        "how": str(limit.get("basis") or limit.get("reason") or ""),
        "predicted": ""
        if predicted is None
        else f"USL predicts {fmt_value(predicted, unit)} (estimate)",
    }


def capacity_view(capacity: Mapping[str, Any]) -> CapacityView:
    view = CapacityView()
    limits = capacity.get("capacityLimits") or {}
    if isinstance(limits, Mapping):
        view.limits = [_limit_row(name, limit) for name, limit in limits.items()]
    for item in capacity.get("bottlenecks") or []:
        if not isinstance(item, Mapping):
            view.bottlenecks.append({"component": str(item)})
            continue
        evidence = item.get("evidence") or []
        view.bottlenecks.append(
            {
                "component": str(item.get("component", "")),
                "limit": fmt_value(item.get("limit"), item.get("unit")),
                "scenario": str(item.get("scenario", "")),
                "evidence": "; ".join(map(str, evidence))
                if isinstance(evidence, list)
                else str(evidence),
                "recommendation": str(item.get("recommendation", "")),
            }
        )
    view.recommendations = [str(r) for r in capacity.get("recommendations") or []]
    metrics = capacity.get("performanceMetrics") or {}
    if isinstance(metrics, Mapping):
        for name, row in metrics.items():
            if isinstance(row, Mapping):
                view.metrics.append(
                    {"load": humanize(name)}
                    | {humanize(k): fmt_value(v) for k, v in row.items() if v is not None}
                )
    if "memoryLeak" in capacity:
        view.memory_leak = LEAK.get(capacity["memoryLeak"], str(capacity["memoryLeak"]))
    return view


def capacity_markdown(capacity: Mapping[str, Any]) -> list[str]:
    view = capacity_view(capacity)
    lines = ["## Capacity", ""]
    for row in view.limits:
        how = f" ({row['bound']})" if row.get("bound") else ""
        note = row.get("how") or ""
        lines.append(f"- {row['limit']}: **{row['value']}**{how}" + (f"; {note}" if note else ""))
    if view.memory_leak is not None:
        lines.append(f"- memory leak: {view.memory_leak}")
    for item in view.bottlenecks:
        lines.append(f"- bottleneck: {item['component']} ({item.get('scenario', '')})")
    lines += [f"- recommendation: {text}" for text in view.recommendations]
    return [*lines, ""]


def change_row(change: Change) -> dict[str, str]:
    percent = "" if change.change_percent is None else f"{change.change_percent:+.1f}%"
    return {
        "scenario": change.scenario,
        "endpoint": change.endpoint or "all",
        "metric": change.metric,
        "base": fmt_value(change.base, change.unit),
        "new": fmt_value(change.new, change.unit),
        "change": percent,
        "tolerance": f"{change.tolerance_percent:g}%",
        "verdict": change.verdict,
        "noise": change.noise,
    }


def shown_changes(comparison: Comparison) -> list[Change]:
    """Regressions first, then every other row that moved past its tolerance."""
    moved = [
        c
        for c in comparison.changes
        if c.verdict != "regression" and not (c.verdict == "same" and c.noise == "within tolerance")
    ]
    return [*comparison.regressions, *moved]


def comparison_markdown(comparison: Comparison) -> list[str]:
    from orchestrator.compare import describe

    regressions = comparison.regressions
    head = f"{len(regressions)} regression(s)" if regressions else "no regression"
    lines = [f"## Against the baseline: {head}", "", f"Baseline: `{baseline_name(comparison)}`", ""]
    lines += [f"- REGRESSION {describe(c)}" for c in regressions]
    if comparison.unmatched:
        lines.append(f"- not compared (in one run only): {', '.join(comparison.unmatched)}")
    return [*lines, ""]


def baseline_name(comparison: Comparison) -> str:
    """The baseline report folder's name: its full path belongs to the machine that ran."""
    return comparison.base.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
