"""SLA gates: thresholds such as ``p95 < 500ms`` judged against measured results.

A threshold names a metric of :class:`LoadTestResult` (or a suite-wide aggregate), a
comparison and a limit in the metric's own unit (ms, percent, bytes, per second). A metric
that was not measured is judged ``passed=None`` with the reason: it is never a pass.

Units: durations ``us``/``ms``/``s`` (bare numbers are ms); memory ``B``/``kB``/``MB``/``GB``
are decimal (1 MB = 1,000,000 bytes, as the seed plan writes "MB"), ``KiB``/``MiB``/``GiB``
binary (bare numbers are bytes); rates ``/s`` (also ``req/s``, ``msg/s``, ``rps``); error and
CPU rates in percent (``%`` optional).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from orchestrator import sla_endpoints
from orchestrator.errors import ConfigError, ExitCode
from orchestrator.models import LoadTestResult, Status, Threshold
from orchestrator.scenarios import Scenario

Op = Literal["<", "<=", ">", ">=", "==", "!="]
Scope = Literal["scenario", "suite"]

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}

# Unit families: suffix (lower case) -> factor to the metric's canonical unit.
_UNITS: dict[str, dict[str, float]] = {
    "percent": {"": 1.0, "%": 1.0},
    "ms": {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001, "µs": 0.001, "μs": 0.001},
    "rate": {"": 1.0, "/s": 1.0, "req/s": 1.0, "msg/s": 1.0, "rps": 1.0},
    "bytes": {
        "": 1.0,
        "b": 1.0,
        "kb": 1e3,
        "mb": 1e6,
        "gb": 1e9,
        "kib": 1024.0,
        "mib": 1024.0**2,
        "gib": 1024.0**3,
    },
    "count": {"": 1.0},
    "bool": {"": 1.0},  # true = 1, false = 0
}


@dataclass(frozen=True)
class Metric:
    path: str  # camelCase path into result.model_dump(by_alias=True), or a suite aggregate
    unit: str  # key of _UNITS
    scope: Scope = "scenario"
    # Latency and rates describe the tool when the load generator ran out of CPU.
    generator_sensitive: bool = False


METRICS: dict[str, Metric] = {
    "errorRate": Metric("errorRate", "percent"),
    **{
        p: Metric(f"responseTime.{p}", "ms", generator_sensitive=True)
        for p in ("min", "mean", "max", "p50", "p90", "p95", "p99", "p999")
    },
    "throughput": Metric("throughput", "rate", generator_sensitive=True),
    "throughputPerEndpoint": Metric("throughput", "rate", generator_sensitive=True),
    "memoryDelta": Metric("resourceUsage.memoryDelta", "bytes"),
    "memoryPeak": Metric("resourceUsage.memoryPeak", "bytes"),
    "cpuPercentMean": Metric("resourceUsage.cpuPercentMean", "percent"),
    "cpuPercentMax": Metric("resourceUsage.cpuPercentMax", "percent"),
    # Of the CPU the target may use (its container limit, else all cores): the seed's
    # "CPU utilisation < 80% at peak load".
    "cpuUtilization": Metric("resourceUsage.cpuUtilizationMean", "percent"),
    "wsMessageRate": Metric("websocket.messageRate", "rate", generator_sensitive=True),
    "wsConnectionsFailed": Metric("websocket.connectionsFailed", "count"),
    "loadNotDelivered": Metric("loadNotDelivered", "count"),
    # The leak verdict (orchestrator.conclusions.leak): gate with `memoryLeak == false`.
    "memoryLeak": Metric("leak.memoryLeak", "bool"),
    "maxDatabaseConnections": Metric("databaseLimit.maxDatabaseConnections", "count"),
    # Suite-wide: see orchestrator.suite_gates for how each is aggregated.
    "aggregateThroughput": Metric("aggregateThroughput", "rate", "suite"),
    "aggregateWsMessageRate": Metric("aggregateWsMessageRate", "rate", "suite"),
    "memoryDeltaPer100Users": Metric("memoryDeltaPer100Users", "bytes", "suite"),
}
_SHOW: dict[str, Callable[[float], str]] = {
    "percent": lambda v: f"{v:,.4g}%",
    "ms": lambda v: f"{v:,.4g} ms",
    "rate": lambda v: f"{v:,.1f}/s",
    "bytes": lambda v: f"{v / 1e6:,.1f} MB",
    "count": lambda v: f"{v:,.0f}",
    "bool": lambda v: "true" if v else "false",
}


def format_metric(metric: str, value: float | None) -> str:
    """A value of ``metric`` with its unit, as reports show it ("n/a" when unmeasured)."""
    if value is None:
        return "n/a"
    metric = metric.split("[", 1)[0]  # p95[login]: a p95
    known = METRICS.get(metric) or METRICS.get(_ALIASES.get(metric, ""))
    return _SHOW[known.unit](value) if known else f"{value:,.4g}"


# Full result paths are accepted as names too ("responseTime.p95" == "p95").
_ALIASES = {
    m.path: name for name, m in METRICS.items() if name not in (m.path, "throughputPerEndpoint")
}

_TEXT = re.compile(
    r"^\s*(?P<metric>[A-Za-z][A-Za-z0-9_.]*)\s*(?:\[(?P<endpoint>[^\]]*)\])?\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<number>true|false|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>\S*)\s*$"
)


def metric_names(scope: Scope | None = None) -> list[str]:
    return [name for name, m in METRICS.items() if scope is None or m.scope == scope]


def _canonical_metric(name: str) -> str:
    name = _ALIASES.get(name, name)
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(metric_names())}")
    return name


def _number(metric: str, text: str) -> float:
    """A limit's number; ``true``/``false`` only for a yes/no metric such as memoryLeak."""
    is_bool = METRICS[metric].unit == "bool"
    if text in ("true", "false"):
        if not is_bool:
            raise ValueError(f"{metric} takes a number, not {text}")
        return 1.0 if text == "true" else 0.0
    if is_bool:
        raise ValueError(f"{metric} is true or false (e.g. '{metric} == false')")
    return float(text)


def _to_limit(metric: str, number: float, unit: str) -> float:
    family = METRICS[metric].unit
    factors = _UNITS[family]
    factor = factors.get(unit.lower())
    if factor is None:
        allowed = ", ".join(repr(u) for u in factors if u) or "none"
        raise ValueError(f"unknown unit {unit!r} for {metric} (units: {allowed})")
    return number * factor


class ThresholdSpec(BaseModel):
    """One SLA gate; ``limit`` is in the metric's canonical unit (ms, %, bytes, /s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    op: Op
    limit: float
    label: str | None = None
    endpoint: str | None = None  # p95[login]: the gate is about that endpoint's p95

    @model_validator(mode="before")
    @classmethod
    def parse_forms(cls, data: Any) -> Any:
        """Accept ``"p95 < 500ms"`` or a mapping whose limit may carry a unit (``"20MB"``)."""
        if isinstance(data, str):
            match = _TEXT.match(data)
            if match is None:
                raise ValueError(
                    f"cannot read threshold {data!r}: expected '<metric> <op> <number><unit>' "
                    "such as 'p95 < 500ms'"
                )
            metric = _canonical_metric(match["metric"])
            limit = _to_limit(metric, _number(metric, match["number"]), match["unit"])
            endpoint = None if match["endpoint"] is None else match["endpoint"].strip()
            sla_endpoints.check_selector(metric, endpoint)
            return {"metric": metric, "op": match["op"], "limit": limit, "label": data.strip(),
                    "endpoint": endpoint}  # fmt: skip
        if isinstance(data, dict) and isinstance(data.get("metric"), str):
            name, endpoint = sla_endpoints.split_selector(data["metric"])
            endpoint = data.get("endpoint") if endpoint is None else endpoint
            data = {**data, "metric": _canonical_metric(name), "endpoint": endpoint}
            sla_endpoints.check_selector(data["metric"], endpoint)
            limit = data.get("limit")
            if isinstance(limit, str):
                match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(\S*)\s*", limit)
                if match is None:
                    raise ValueError(f"cannot read limit {limit!r}")
                data["limit"] = _to_limit(data["metric"], float(match[1]), match[2])
        return data

    @property
    def scope(self) -> Scope:
        return METRICS[self.metric].scope

    @property
    def name(self) -> str:
        """The metric with its endpoint selector, as results name the check: p95[login]."""
        return self.metric if self.endpoint is None else f"{self.metric}[{self.endpoint}]"

    @property
    def text(self) -> str:
        return self.label or f"{self.name} {self.op} {self.limit:g}"

    def judge(self, measured: float | None, detail: str | None = None) -> Threshold:
        passed = None if measured is None else _COMPARE[self.op](measured, self.limit)
        return Threshold(
            metric=self.name,
            op=self.op,
            limit=self.limit,
            measured=measured,
            passed=passed,
            detail=detail,
        )


def parse_threshold(
    value: str | dict[str, Any] | ThresholdSpec, scope: Scope | None = None
) -> ThresholdSpec:
    """A ThresholdSpec from text or mapping; ConfigError naming what is wrong.

    ``scope="scenario"`` also rejects suite-wide metrics (e.g. for a single run).
    """
    try:
        spec = ThresholdSpec.model_validate(value)
    except ValidationError as exc:
        why = "; ".join(_short(e["msg"]) for e in exc.errors())
        raise ConfigError(f"threshold {value!r}: {why}") from None
    if scope is not None and spec.scope != scope:
        names = ", ".join(metric_names(scope))
        raise ConfigError(
            f"threshold {spec.text!r}: {spec.metric} is not a {scope} metric; "
            f"{scope} metrics: {names}"
        )
    return spec


def _short(message: str) -> str:
    return message.removeprefix("Value error, ")


def lookup(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted camelCase path of a dumped result (None if absent)."""
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _measure(
    result: LoadTestResult, data: dict[str, Any], spec: ThresholdSpec, scenario: Scenario | None
) -> tuple[float | None, str | None]:
    metric = METRICS[spec.metric]
    if spec.endpoint is not None or spec.metric == sla_endpoints.PER_ENDPOINT:
        return sla_endpoints.measure(result, spec, metric.path, scenario, lookup)
    value = lookup(data, metric.path)
    if value is None:
        why = result.missing.get(metric.path) or result.missing.get(metric.path.split(".")[0])
        return None, why or f"{metric.path} was not measured"
    return float(value), None


def evaluate(
    result: LoadTestResult, specs: Iterable[ThresholdSpec], scenario: Scenario | None = None
) -> list[Threshold]:
    """Judge one scenario's result; measured values stand beside their limits.

    A run that did not complete is never judged a pass: its checks are ``passed=None``
    with the run's status in the detail (the numbers measured so far are still shown).
    """
    data = result.model_dump(by_alias=True, mode="json")
    checks: list[Threshold] = []
    for spec in specs:
        if spec.scope != "scenario":
            raise ConfigError(f"{spec.metric} is a suite-wide metric, not a scenario's")
        measured, detail = _measure(result, data, spec, scenario)
        check = spec.judge(measured, detail)
        if result.status != Status.COMPLETED:
            note = f"run {result.status.value}: not judged"
            check = check.model_copy(update={"passed": None, "detail": _join(note, detail)})
        elif result.generator_saturated and METRICS[spec.metric].generator_sensitive:
            note = "the load generator was CPU-saturated: this may measure the tool"
            check = check.model_copy(update={"detail": _join(detail, note)})
        checks.append(check)
    return checks


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


class Verdict(StrEnum):
    PASSED = "passed"
    SLA_FAILED = "sla_failed"
    NOT_JUDGED = "not_judged"  # a check could not be measured: not a pass
    FAILED = "failed"  # the tool or the target failed, or the scenario could not run
    INTERRUPTED = "interrupted"


def verdict(result: LoadTestResult | None) -> Verdict:
    """One scenario's verdict; ``None`` stands for a scenario that could not run."""
    if result is None:
        return Verdict.FAILED
    if result.status == Status.INTERRUPTED:
        return Verdict.INTERRUPTED
    if result.status != Status.COMPLETED:
        return Verdict.FAILED
    return _verdict_of_checks(result.thresholds)


def _verdict_of_checks(checks: Iterable[Threshold]) -> Verdict:
    passed = [c.passed for c in checks]
    if False in passed:
        return Verdict.SLA_FAILED
    if None in passed:
        return Verdict.NOT_JUDGED
    return Verdict.PASSED


def suite_exit_code(
    results: Sequence[LoadTestResult],
    skipped: Collection[str] = (),
    suite_checks: Iterable[Threshold] = (),
    *,
    interrupted: bool = False,
) -> ExitCode:
    """The suite's exit code from its results (each already judged with ``evaluate``).

    ``skipped``: names of planned scenarios that could not run (e.g. pgbench missing);
    they are never a pass. 130 interrupted > 3 a tool or the target failed, or a scenario
    could not run > 1 an SLA not met (failed, or not measurable) > 0 all passed. An empty
    suite is not a pass.
    """
    verdicts = {verdict(r) for r in results}
    if interrupted or Verdict.INTERRUPTED in verdicts:
        return ExitCode.INTERRUPTED
    if skipped or not results or Verdict.FAILED in verdicts:
        return ExitCode.TOOL_OR_TARGET_FAILED
    verdicts.add(_verdict_of_checks(c for c in suite_checks if c.applicable))
    if verdicts & {Verdict.SLA_FAILED, Verdict.NOT_JUDGED}:
        return ExitCode.SLA_FAILED
    return ExitCode.OK
