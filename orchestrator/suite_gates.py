"""The suite-wide SLA gates: each aggregated over the scenarios it is about.

A gate about scenarios that were all left out on purpose (``--only``/``--skip``) is not
applicable: shown, but neither a pass nor a failure (:func:`orchestrator.sla.suite_exit_code`
skips it). One whose scenarios ran but could not measure it is ``passed=None``, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from orchestrator.errors import ConfigError
from orchestrator.models import LoadTestResult, Status, Threshold, Transport
from orchestrator.sla import ThresholdSpec


def _time_weighted(pairs: list[tuple[float | None, float]]) -> tuple[float | None, str | None]:
    measured = [(rate, seconds) for rate, seconds in pairs if rate is not None and seconds > 0]
    if not measured:
        return None, "no scenario measured it"
    total_seconds = sum(seconds for _, seconds in measured)
    value = sum(rate * seconds for rate, seconds in measured) / total_seconds
    skipped = len(pairs) - len(measured)
    return value, (f"{skipped} scenario(s) without a measurement left out" if skipped else None)


# The scenarios each suite-wide gate is about, by transport.
GATE_TRANSPORTS: dict[str, set[Transport]] = {
    "aggregateThroughput": {"http"},
    "aggregateWsMessageRate": {"ws"},
    "memoryDeltaPer100Users": {"http", "ws"},
}


def evaluate_suite(
    results: Sequence[LoadTestResult],
    suite_thresholds: Iterable[ThresholdSpec],
    left_out: Mapping[str, Transport] | None = None,
) -> list[Threshold]:
    """Judge the suite-wide gates over the completed scenarios' results.

    - aggregateThroughput: HTTP requests per second over all HTTP scenarios, weighted by
      each scenario's duration (sum of requests / sum of seconds; scenarios run one after
      another, so their rates are never added up).
    - aggregateWsMessageRate: the same over the WebSocket scenarios' message rates.
    - memoryDeltaPer100Users: the worst HTTP/WebSocket scenario's target memory growth per
      100 peak users (memoryDelta / concurrency x 100); database scenarios sample the
      database server, not the service, and are left out.
    A gate none of whose scenarios ran is not applicable (shown, deciding nothing) when
    ``left_out`` (by --only/--skip) holds some, and dropped when the suite has none; one
    whose scenarios ran but measured nothing is ``passed=None``: never a pass.
    """
    checks: list[Threshold] = []
    for spec in suite_thresholds:
        if spec.scope != "suite":
            raise ConfigError(f"{spec.metric} is a scenario metric, not a suite-wide one")
        kinds = GATE_TRANSPORTS[spec.metric]
        ran = [r for r in results if r.protocol in kinds]
        if not ran:
            absent = [name for name, kind in (left_out or {}).items() if kind in kinds]
            if absent:
                why = f"not applicable: its scenarios were left out ({', '.join(absent)})"
                checks.append(spec.judge(None, why).model_copy(update={"applicable": False}))
            continue
        done = [r for r in ran if r.status == Status.COMPLETED]
        measured: float | None
        detail: str | None
        if spec.metric == "aggregateThroughput":
            measured, detail = _time_weighted([(r.throughput, r.duration) for r in done])
        elif spec.metric == "aggregateWsMessageRate":
            rates = [(r.websocket.message_rate if r.websocket else None, r.duration) for r in done]
            measured, detail = _time_weighted(rates)
        else:
            measured, detail = _memory_per_100(done)
        checks.append(spec.judge(measured, detail))
    return checks


def _memory_per_100(results: list[LoadTestResult]) -> tuple[float | None, str | None]:
    # The service's memory per user: database scenarios sample the database server (whose
    # new backends each count the shared buffers in their RSS), so they are left out.
    per_100 = [
        (r.resource_usage.memory_delta / r.concurrency * 100, r.scenario)
        for r in results
        if r.protocol != "postgres"
        and r.resource_usage is not None
        and r.resource_usage.memory_delta is not None
        and r.concurrency > 0
    ]
    if not per_100:
        return None, "no scenario measured the target's memory"
    value, scenario = max(per_100)
    return value, f"worst: {scenario}"
