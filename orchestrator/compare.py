"""Compare two report directories: is the new run worse than the baseline?

Per scenario, and per endpoint where the engine measured endpoints, the change in p50, p95
and p99 (read from the merged histograms, never from averaged percentiles), throughput,
error rate, the target's peak memory and CPU time per request. A change is a regression
only when it is both past the metric's tolerance and outside the run-to-run noise: the
per-second values of the two runs must differ by a one-sided Mann-Whitney U test
(p < 0.01). With too few seconds to judge the spread, the tolerance alone decides and the
row says so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hdrh.histogram import HdrHistogram
from pydantic import Field

from orchestrator import histogram as hist
from orchestrator.errors import ConfigError
from orchestrator.model_base import Model
from orchestrator.models import EndpointStats, LoadTestResult, TimeBucket

MB = 1_000_000
SIGNIFICANCE = 0.01
MIN_SECONDS = 5
# Samples a percentile needs beyond it to be compared (p99: 1,000 requests).
TAIL_SAMPLES = 10
Direction = Literal["higher_is_worse", "lower_is_worse"]
Verdict = Literal["regression", "improvement", "same", "not comparable"]


@dataclass(frozen=True)
class Rule:
    """How one metric is judged: relative tolerance and an absolute floor under it."""

    metric: str
    unit: str
    direction: Direction
    tolerance_percent: float
    floor: float  # differences smaller than this (in the metric's unit) never count


DEFAULT_RULES: dict[str, Rule] = {
    r.metric: r
    for r in (
        Rule("p50", "ms", "higher_is_worse", 15.0, 1.0),
        Rule("p95", "ms", "higher_is_worse", 20.0, 2.0),
        Rule("p99", "ms", "higher_is_worse", 30.0, 5.0),
        Rule("throughput", "req/s", "lower_is_worse", 10.0, 1.0),
        Rule("errorRate", "%", "higher_is_worse", 0.0, 1.0),
        Rule("memoryPeak", "MB", "higher_is_worse", 20.0, 10.0),
        # CPU per request, not CPU: a target that served more requests used more CPU.
        Rule("cpuPerRequest", "ms", "higher_is_worse", 30.0, 0.05),
    )
}


class Change(Model):
    scenario: str
    endpoint: str | None = Field(default=None, description="None: the whole scenario.")
    metric: str
    unit: str
    base: float | None
    new: float | None
    change_percent: float | None
    tolerance_percent: float
    noise: str = Field(description="How run-to-run noise was judged for this row.")
    verdict: Verdict


class Comparison(Model):
    base: str
    new: str
    changes: list[Change]
    unmatched: list[str] = Field(
        default_factory=list, description="Scenarios present in only one of the runs."
    )

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.verdict == "regression"]


def load_results(run_dir: Path) -> dict[str, LoadTestResult]:
    """The results of a report directory (its summary.json), by scenario name."""
    summary = run_dir / "summary.json"
    if not summary.is_file():
        raise ConfigError(f"{run_dir} is not a report directory (no summary.json)")
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
        results = [LoadTestResult.model_validate(r) for r in data.get("results", [])]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {summary}: {exc}") from None
    return {r.scenario: r for r in results}


def _percentile(histogram: HdrHistogram | None, pct: float) -> float | None:
    if histogram is None or histogram.get_total_count() == 0:
        return None
    return float(histogram.get_value_at_percentile(pct)) / 1000.0


def _decoded(encoded: str | None) -> HdrHistogram | None:
    return hist.decode(encoded) if encoded else None


def _samples(histogram: HdrHistogram | None) -> int:
    return int(histogram.get_total_count()) if histogram is not None else 0


def _full_seconds(series: Sequence[TimeBucket]) -> list[TimeBucket]:
    # The first and last seconds are partial (start-up, drain): not the run's level.
    return list(series[1:-1]) if len(series) > 3 else list(series)


def _beyond_noise(
    base: Sequence[float], new: Sequence[float], higher: bool
) -> tuple[bool | None, str]:
    """Whether ``new``'s per-second values are higher (or lower) than ``base``'s beyond
    chance, and how that was judged; None when there are too few seconds to tell."""
    if len(base) < MIN_SECONDS or len(new) < MIN_SECONDS:
        return None, f"too few seconds to judge the spread ({len(base)} and {len(new)})"
    if len(set(base) | set(new)) == 1:
        return False, "identical per-second values"
    from scipy.stats import mannwhitneyu

    alternative = "greater" if higher else "less"
    p = float(mannwhitneyu(new, base, alternative=alternative).pvalue)
    return p < SIGNIFICANCE, f"per-second values, one-sided Mann-Whitney p={p:.2g}"


def judge(
    rule: Rule,
    base: float | None,
    new: float | None,
    base_seconds: Sequence[float] = (),
    new_seconds: Sequence[float] = (),
) -> tuple[Verdict, float | None, str]:
    """(verdict, change in percent, how noise was judged) of one metric."""
    if base is None or new is None or math.isnan(base) or math.isnan(new):
        return "not comparable", None, "not measured in both runs"
    change = None if base == 0 else 100.0 * (new - base) / abs(base)
    limit = max(rule.floor, abs(base) * rule.tolerance_percent / 100.0)
    if abs(new - base) <= limit:
        return "same", change, "within tolerance"
    significant, how = _beyond_noise(base_seconds, new_seconds, higher=new > base)
    if significant is False:
        return "same", change, f"inside run-to-run noise ({how})"
    worse = (new > base) == (rule.direction == "higher_is_worse")
    return ("regression" if worse else "improvement"), change, how


@dataclass(frozen=True)
class Subject:
    """What is compared: a whole scenario or one of its endpoints."""

    histogram: str | None
    throughput: float | None
    error_rate: float | None
    series: list[TimeBucket]


def _subject(item: LoadTestResult | EndpointStats) -> Subject:
    return Subject(
        item.histogram, item.throughput, item.error_rate, _full_seconds(item.time_series)
    )


def _latency_seconds(series: list[TimeBucket], key: str) -> list[float]:
    return [v for b in series if (v := getattr(b, key)) is not None]


def _cpu_per_request(result: LoadTestResult) -> float | None:
    """The target's CPU time per completed request (ms of one core)."""
    usage = result.resource_usage
    if usage is None or usage.cpu_percent_mean is None or not result.throughput:
        return None
    # cpu% of one core = core-ms per 10 ms; per second: cpu% x 10 core-ms.
    return usage.cpu_percent_mean * 10.0 / result.throughput


def _completed(series: list[TimeBucket]) -> list[float]:
    return [float(b.requests - b.errors) for b in series]


@dataclass
class _Rows:
    """Collects the rows of one scenario (or one of its endpoints)."""

    scenario: str
    endpoint: str | None
    rules: dict[str, Rule]
    changes: list[Change]

    def add(
        self,
        metric: str,
        base: float | None,
        new: float | None,
        base_seconds: Sequence[float] = (),
        new_seconds: Sequence[float] = (),
        too_few: str | None = None,
    ) -> None:
        rule = self.rules[metric]
        if too_few is not None:
            verdict, change, how = "not comparable", None, too_few
        else:
            verdict, change, how = judge(rule, base, new, base_seconds, new_seconds)
        self.changes.append(
            Change(
                scenario=self.scenario,
                endpoint=self.endpoint,
                metric=metric,
                unit=rule.unit,
                base=base,
                new=new,
                change_percent=change,
                tolerance_percent=rule.tolerance_percent,
                noise=how,
                verdict=verdict,
            )
        )

    def traffic(self, base: Subject, new: Subject) -> None:
        # Each histogram decoded once for the three percentiles and its sample count.
        base_hist, new_hist = _decoded(base.histogram), _decoded(new.histogram)
        fewest = min(_samples(base_hist), _samples(new_hist))
        for key, pct in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0)):
            # A percentile rests on the samples beyond it: with fewer than TAIL_SAMPLES
            # there, a couple of stalls of a busy machine would decide it.
            needed = math.ceil(TAIL_SAMPLES / (1.0 - pct / 100.0))
            too_few = (
                f"too few requests to judge {key} ({fewest:,}; needs {needed:,})"
                if 0 < fewest < needed
                else None
            )
            self.add(
                key,
                _percentile(base_hist, pct),
                _percentile(new_hist, pct),
                _latency_seconds(base.series, key),
                _latency_seconds(new.series, key),
                too_few,
            )
        self.add(
            "throughput",
            base.throughput,
            new.throughput,
            _completed(base.series),
            _completed(new.series),
        )
        self.add("errorRate", base.error_rate, new.error_rate)

    def resources(self, base: LoadTestResult, new: LoadTestResult) -> None:
        bu, nu = base.resource_usage, new.resource_usage
        self.add(
            "memoryPeak",
            bu.memory_peak / MB if bu and bu.memory_peak is not None else None,
            nu.memory_peak / MB if nu and nu.memory_peak is not None else None,
        )
        self.add("cpuPerRequest", _cpu_per_request(base), _cpu_per_request(new))


def compare_runs(base_dir: Path, new_dir: Path, rules: dict[str, Rule] | None = None) -> Comparison:
    """Two report directories."""
    return compare_results(
        load_results(base_dir), load_results(new_dir), str(base_dir), str(new_dir), rules
    )


def compare_results(
    base: dict[str, LoadTestResult],
    new: dict[str, LoadTestResult],
    base_label: str,
    new_label: str,
    rules: dict[str, Rule] | None = None,
) -> Comparison:
    """Two runs' results by scenario name (a run in progress compares before it is written)."""
    rules = rules or DEFAULT_RULES
    changes: list[Change] = []
    for name in sorted(base.keys() & new.keys()):
        b, n = base[name], new[name]
        whole = _Rows(name, None, rules, changes)
        whole.traffic(_subject(b), _subject(n))
        whole.resources(b, n)
        new_endpoints = {e.name: e for e in n.endpoints}
        # A scenario's one endpoint is the whole scenario: its rows would repeat the above.
        for endpoint in b.endpoints if len(b.endpoints) > 1 else []:
            if endpoint.name in new_endpoints:
                rows = _Rows(name, endpoint.name, rules, changes)
                rows.traffic(_subject(endpoint), _subject(new_endpoints[endpoint.name]))
    unmatched = sorted(base.keys() ^ new.keys())
    return Comparison(base=base_label, new=new_label, changes=changes, unmatched=unmatched)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f} {unit}" if unit in {"ms", "%"} else f"{value:,.1f} {unit}"


def describe(change: Change) -> str:
    where = change.scenario + (f" {change.endpoint}" if change.endpoint else "")
    delta = "" if change.change_percent is None else f" ({change.change_percent:+.0f}%)"
    return (
        f"{where}: {change.metric} {_fmt(change.base, change.unit)} -> "
        f"{_fmt(change.new, change.unit)}{delta}, tolerance {change.tolerance_percent:g}%"
    )


def render_markdown(comparison: Comparison) -> str:
    """A pull-request comment: the verdict first, then every row that moved."""
    regressions = comparison.regressions
    head = (
        f"**{len(regressions)} regression(s)** against the baseline"
        if regressions
        else "**No regression** against the baseline"
    )
    lines = [f"## orchestrate compare: {head}", ""]
    lines += [f"- :red_circle: {describe(c)}" for c in regressions]
    lines += ["", "| scenario | endpoint | metric | base | new | change | verdict | noise |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in comparison.changes:
        if c.verdict == "same" and c.noise == "within tolerance":
            continue
        change = "-" if c.change_percent is None else f"{c.change_percent:+.1f}%"
        lines.append(
            f"| {c.scenario} | {c.endpoint or 'all'} | {c.metric} | {_fmt(c.base, c.unit)} | "
            f"{_fmt(c.new, c.unit)} | {change} | {c.verdict} | {c.noise} |"
        )
    if comparison.unmatched:
        lines += ["", f"Only in one run (not compared): {', '.join(comparison.unmatched)}"]
    return "\n".join(lines) + "\n"
