"""The capacity report: how far the service goes, what breaks first, whether it leaks.

:func:`build_capacity_report` reads only saved results (and the scenarios they ran), so the
same results give the same report, byte for byte: scenarios are taken in name order, lists
keep a fixed order, floats are rounded to 6 significant digits, and the timestamp is the end
of the last run, not the time the report was built.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.conclusions.bottlenecks import find_bottlenecks, unit_of
from orchestrator.conclusions.holds import analyse_holds, longest_hold_window
from orchestrator.conclusions.knee import find_ceiling, find_knee
from orchestrator.conclusions.leak import leak_report
from orchestrator.conclusions.models import (
    Bottleneck,
    CapacityLimitsReport,
    CapacityReport,
    Hold,
    Limit,
    LimitSource,
    LoadMetrics,
    PerformanceMetrics,
    ScenarioAnalysis,
)
from orchestrator.conclusions.usl import fit_usl
from orchestrator.models import LoadTestResult, Status
from orchestrator.scenarios import Scenario

DEFAULT_ERROR_LIMIT = 5.0  # percent, when a scenario gates on no error rate
SIGNIFICANT_DIGITS = 6
DEFAULT_ROLES: dict[str, str] = {"normalLoad": "normal", "peakLoad": "peak", "stressLoad": "stress"}
LATENCY_GATES = ("p50", "p95", "p99")
PROTOCOL_NAMES = {"http": "HTTP", "ws": "WebSocket", "postgres": "database"}


def _limits_of(result: LoadTestResult, default_error: float) -> tuple[float, dict[str, float]]:
    """The scenario's own SLA: its error-rate limit and its latency limits (ms)."""
    error = min(
        (t.limit for t in result.thresholds if t.metric == "errorRate" and t.op in ("<", "<=")),
        default=default_error,
    )
    latency: dict[str, float] = {}
    for check in result.thresholds:
        if check.metric in LATENCY_GATES and check.op in ("<", "<="):
            latency[check.metric] = min(check.limit, latency.get(check.metric, math.inf))
    return error, latency


def _within_sla(hold: Hold, error: float, latency: Mapping[str, float]) -> bool:
    if hold.error_rate is None or hold.error_rate > error:
        return False
    for metric, limit in latency.items():
        value = getattr(hold, metric)
        if value is not None and value >= limit:
            return False
    return True


def _sla_text(error: float, latency: Mapping[str, float]) -> str:
    gates = [f"error rate <= {error:g}%"] + [f"{m} < {v:g} ms" for m, v in sorted(latency.items())]
    return " and ".join(gates)


def analyse_scenario(
    result: LoadTestResult,
    scenario: Scenario | None,
    error_limit: float = DEFAULT_ERROR_LIMIT,
    target_cores: int | None = None,
) -> tuple[ScenarioAnalysis, list[Bottleneck]]:
    """Holds, USL fit and knee (a run held at two or more levels), ceiling, leak verdict and
    bottlenecks of one scenario's result."""
    shape = scenario.shape if scenario is not None else None
    found = analyse_holds(result, shape)
    notes = list(found.notes)
    holds = found.holds
    levels = {h.concurrency for h in holds if h.goodput is not None}
    usl = knee = None
    if len(levels) >= 2:
        usl = fit_usl([(h.concurrency, h.goodput) for h in holds if h.goodput is not None])
        knee = find_knee(holds, unit_of(result), _limits_of(result, error_limit)[0])
        if usl.quality != "good":
            notes.append(f"USL fit not used ({usl.reason}): capacity is read from the holds")
    ceiling = find_ceiling(holds, usl) if holds else None
    window = longest_hold_window(holds)
    leak = None
    if result.protocol == "postgres":
        # Backends count the shared buffers they touch in their RSS, so it grows as they
        # warm up: the database server's memory says nothing about the service leaking.
        notes.append(
            "the database server's memory is not judged for leaks (its backends' RSS grows "
            "as they touch shared buffers)"
        )
    else:
        # The run judged it already, over the same window (orchestrator.analysis).
        leak = result.leak or leak_report(result.resource_usage, window)
        if leak is None:
            why = result.missing.get("resourceUsage", "the target was not sampled")
            notes.append(f"no leak verdict: {why}")
    if result.status is not Status.COMPLETED:
        notes.append(f"run {result.status.value}: numbers are what was measured before it ended")
    error, _ = _limits_of(result, error_limit)
    bottlenecks = find_bottlenecks(
        result, holds, knee, leak, ceiling.measured if ceiling else None, error, target_cores
    )
    analysis = ScenarioAnalysis(
        scenario=result.scenario,
        protocol=result.protocol,
        tool=result.tool,
        status=result.status.value,
        step_roles=found.roles,
        holds=holds,
        usl=usl,
        knee=knee,
        ceiling=ceiling,
        leak=leak,
        notes=notes,
    )
    return analysis, bottlenecks


def _max_level(
    pairs: Sequence[tuple[LoadTestResult, ScenarioAnalysis]], protocol: str, error_limit: float
) -> Limit:
    """The highest level any scenario of ``protocol`` held within its own SLA."""
    name = PROTOCOL_NAMES[protocol]
    ran = [(r, a) for r, a in pairs if r.protocol == protocol]
    unit = (
        unit_of(ran[0][0])
        if ran
        else {"ws": "connections", "postgres": "clients"}.get(protocol, "users")
    )
    if not ran:
        return Limit(value=None, unit=unit, reason=f"no {name} scenario ran")
    stepped = _database_limit(ran) if protocol == "postgres" else None
    if stepped is not None:
        return stepped
    best: tuple[int, str, Limit] | None = None
    for result, analysis in ran:
        error, latency = _limits_of(result, error_limit)
        good = [h for h in analysis.holds if _within_sla(h, error, latency)]
        if not good:
            continue
        hold = max(good, key=lambda h: (h.concurrency, -h.start))
        higher_failed = any(
            h.concurrency > hold.concurrency and not _within_sla(h, error, latency)
            for h in analysis.holds
        )
        bound_note = "" if higher_failed else "; every level tried stayed within it"
        latency_note = (
            " (per-second p95 is an upper bound)" if hold.latency == "upper_bound" else ""
        )
        limit = Limit(
            value=float(hold.concurrency),
            unit=unit_of(result),
            bound="measured" if higher_failed else "lower_bound",
            source=LimitSource(
                scenario=result.scenario, concurrency=hold.concurrency, steps=hold.steps
            ),
            basis=f"highest level held with {_sla_text(error, latency)}{latency_note}{bound_note}",
        )
        if best is None or (hold.concurrency, result.scenario) > (best[0], best[1]):
            best = (hold.concurrency, result.scenario, limit)
    if best is None:
        return Limit(
            value=None,
            unit=unit,
            reason=f"no level of any {name} scenario was held within its SLA",
        )
    return best[2]


def _database_limit(ran: Sequence[tuple[LoadTestResult, ScenarioAnalysis]]) -> Limit | None:
    """The limit an exhaustion run found (its own judge: refused connections, errors, pool
    waits, p95), which knows more than the holds' error rate; None when no run has one."""
    found = [(r, r.database_limit) for r, _ in ran if r.database_limit is not None]
    if not found:
        return None
    result, limit = max(found, key=lambda f: (f[1].max_database_connections or -1, f[0].scenario))
    failed = limit.first_failing is not None
    return Limit(
        value=None
        if limit.max_database_connections is None
        else float(limit.max_database_connections),
        unit="clients",
        bound="measured" if failed else "lower_bound",
        source=LimitSource(scenario=result.scenario, concurrency=limit.max_database_connections),
        basis=limit.evidence
        if failed
        else f"{limit.evidence}; every step up to {limit.tested_up_to} clients held",
        reason=None if limit.max_database_connections is not None else limit.evidence,
    )


def _max_throughput(pairs: Sequence[tuple[LoadTestResult, ScenarioAnalysis]]) -> Limit:
    http = [(r, a) for r, a in pairs if r.protocol == "http" and a.ceiling is not None]
    measured = [(r, a) for r, a in http if a.ceiling is not None and a.ceiling.measured is not None]
    if not measured:
        reason = "no HTTP scenario ran" if not http else "no HTTP hold measured goodput"
        return Limit(value=None, unit="req/s", reason=reason)
    result, analysis = max(
        measured, key=lambda p: (p[1].ceiling.measured if p[1].ceiling else 0.0, p[0].scenario)
    )
    ceiling = analysis.ceiling
    assert ceiling is not None
    hold = next((h for h in analysis.holds if h.concurrency == ceiling.measured_at), None)
    knee_found = analysis.knee is not None and analysis.knee.found
    basis = "highest goodput (successful req/s) of any hold"
    if result.generator_saturated:
        basis += "; the load generator was saturated, so this is the tool's limit"
    elif not knee_found:
        basis += "; throughput had not levelled off, so the limit is higher"
    return Limit(
        value=ceiling.measured,
        unit="req/s",
        bound="measured" if knee_found and not result.generator_saturated else "lower_bound",
        source=LimitSource(
            scenario=result.scenario,
            concurrency=ceiling.measured_at,
            steps=hold.steps if hold is not None else [],
        ),
        basis=basis,
        predicted=ceiling.predicted,
    )


def load_metrics(result: LoadTestResult | None, role: str, name: str) -> LoadMetrics:
    if result is None:
        return LoadMetrics(scenario=None, reason=f"no scenario {name!r} ran (the {role} role)")
    rt = result.response_time
    return LoadMetrics(
        scenario=result.scenario,
        concurrency=result.concurrency,
        p50=rt.p50,
        p95=rt.p95,
        p99=rt.p99,
        latency_source=rt.source,
        throughput=result.throughput,
        error_rate=result.error_rate,
        generator_saturated=result.generator_saturated,
    )


def _recommendations(
    analyses: Sequence[ScenarioAnalysis],
    bottlenecks: Sequence[Bottleneck],
    limits: CapacityLimitsReport,
) -> list[str]:
    out = [b.recommendation for b in bottlenecks]
    for analysis in analyses:
        if analysis.usl is not None and analysis.usl.quality != "good":
            out.append(
                f"{analysis.scenario}: no usable scalability model ({analysis.usl.reason}); "
                "hold more levels (at least 4, past the knee) for one"
            )
        leak = analysis.leak
        if leak is not None and leak.verdict == "inconclusive":
            out.append(
                f"{analysis.scenario}: the leak verdict is inconclusive; run it longer at a "
                "constant load to tell"
            )
    verdicts = {a.leak.verdict for a in analyses if a.leak is not None}
    if verdicts and not verdicts & {"leak", "no leak", "inconclusive"}:
        out.append(
            "no scenario held a constant load long enough to judge a leak: run the endurance "
            "scenario (or any scenario holding one level for a minute or more)"
        )
    users = limits.max_concurrent_users
    if users.bound == "lower_bound" and users.source is not None:
        out.append(
            f"maxConcurrentUsers is a lower bound: every level up to {users.value:g} stayed "
            "within the SLA; step the stress plan higher to find the limit"
        )
    return list(dict.fromkeys(out))


def _round(value: Any) -> Any:
    """Floats to SIGNIFICANT_DIGITS significant digits (NaN/inf to None), recursively."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def build_capacity_report(
    results: Sequence[LoadTestResult],
    scenarios: Mapping[str, Scenario] | None = None,
    *,
    suite: str | None = None,
    roles: Mapping[str, str] | None = None,
    error_limit: float = DEFAULT_ERROR_LIMIT,
    target_cores: int | None = None,
) -> CapacityReport:
    """The capacity report of a suite's ``results``.

    ``scenarios``: the scenarios that ran, by name (their load shapes tell holds from
    climbs; without them every step counts as a hold). ``roles``: which scenario fills
    normalLoad / peakLoad / stressLoad (default: the ones named normal, peak, stress).
    ``error_limit``: percent, for scenarios that gate on no error rate. ``target_cores``:
    cores the target may use, if known (its CPU at all of them is a bottleneck).
    """
    scenarios = scenarios or {}
    ordered = sorted(results, key=lambda r: (r.scenario, r.started_at))
    pairs: list[tuple[LoadTestResult, ScenarioAnalysis]] = []
    bottlenecks: list[Bottleneck] = []
    for result in ordered:
        analysis, found = analyse_scenario(
            result, scenarios.get(result.scenario), error_limit, target_cores
        )
        pairs.append((result, analysis))
        bottlenecks += found
    limits = CapacityLimitsReport(
        max_concurrent_users=_max_level(pairs, "http", error_limit),
        max_web_socket_connections=_max_level(pairs, "ws", error_limit),
        max_database_connections=_max_level(pairs, "postgres", error_limit),
        max_throughput=_max_throughput(pairs),
    )
    by_name = {r.scenario: r for r in ordered}
    chosen = {**DEFAULT_ROLES, **(roles or {})}
    metrics = PerformanceMetrics(
        normal_load=load_metrics(
            by_name.get(chosen["normalLoad"]), "normalLoad", chosen["normalLoad"]
        ),
        peak_load=load_metrics(by_name.get(chosen["peakLoad"]), "peakLoad", chosen["peakLoad"]),
        stress_load=load_metrics(
            by_name.get(chosen["stressLoad"]), "stressLoad", chosen["stressLoad"]
        ),
    )
    analyses = [a for _, a in pairs]
    leaks = [a.leak.memory_leak for a in analyses if a.leak is not None]
    memory_leak = True if True in leaks else False if False in leaks else None
    ended = max((r.ended_at for r in ordered), default=None)
    report = CapacityReport(
        suite=suite,
        timestamp=ended.isoformat() if ended is not None else None,
        capacity_limits=limits,
        bottlenecks=bottlenecks,
        performance_metrics=metrics,
        recommendations=_recommendations(analyses, bottlenecks, limits),
        memory_leak=memory_leak,
        scenarios=analyses,
    )
    # Rounded through the wire form, so that the model and its JSON say the same.
    return CapacityReport.model_validate(_round(report.model_dump(by_alias=True)))


def capacity_schema() -> dict[str, Any]:
    """JSON Schema of capacity-report.json (for ``orchestrate schema capacity``)."""
    return CapacityReport.model_json_schema(by_alias=True)
