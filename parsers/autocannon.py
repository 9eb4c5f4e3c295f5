"""autocannon output -> LoadTestResult.

Two sources:

* our runner's output file (``tool_configs/node/autocannon-runner.js``): every response
  time in µs in HdrHistograms per second and per step, merged here exactly;
* autocannon's own CLI ``--json`` (for importing old runs): whole milliseconds, no p95,
  no per-second samples, one total error count; the result says so in ``missing``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from pydantic import BaseModel, ConfigDict

from orchestrator import histogram as hist
from orchestrator.errors import ParseError
from orchestrator.models import (
    LoadTestResult,
    ResponseTime,
    Status,
    StepSummary,
    TimeBucket,
)
from orchestrator.process import ToolRun
from orchestrator.redact import redact_url
from orchestrator.scenarios import Scenario
from parsers.common import judge, per_second, rate_percent, read_json, validated

TOOL = "autocannon"
RUNNER_FORMAT = "orchestrate-autocannon/1"
LATENCY_MEASURES = (
    "autocannon: from writing a request on its connection to receiving the complete "
    "response (process.hrtime), per connection; with pipelining > 1 a request's time "
    "includes waiting behind earlier requests on the same connection. Recorded raw in µs "
    "(no coordinated-omission correction)."
)
CLI_LATENCY_MEASURES = LATENCY_MEASURES.replace("Recorded raw in µs", "Whole milliseconds")
NO_RESPONSE = "no response was received, so there is no latency to report"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Second(_Wire):
    t: int
    requests: int
    errors: int
    histogram: str


class Counts(_Wire):
    requests: int
    responses: int
    ok: int
    non2xx: int
    errors: int
    timeouts: int


class Step(_Wire):
    index: int
    connections: int
    overallRate: int | None = None  # noqa: N815 - the runner's JSON key
    start: float
    duration: float
    counts: Counts
    statusCodes: dict[str, int]  # noqa: N815
    errorKinds: dict[str, int]  # noqa: N815
    histogram: str | None
    seconds: list[Second]
    failures: list[str] = []


class StoppedEarly(_Wire):
    afterStep: int  # noqa: N815 - the runner's JSON key (0-based step index)
    errorRate: float  # noqa: N815
    limit: float


class RunnerOutput(_Wire):
    format: str
    autocannonVersion: str | None = None  # noqa: N815
    startedAt: float  # noqa: N815
    endedAt: float  # noqa: N815
    resolutionUs: float  # noqa: N815
    interrupted: bool
    complete: bool
    plannedSteps: int  # noqa: N815
    stoppedEarly: StoppedEarly | None = None  # noqa: N815
    steps: list[Step]


def load_runner_output(path: Path) -> RunnerOutput:
    output = validated(RunnerOutput, read_json(path), path)
    if output.format != RUNNER_FORMAT:
        raise ParseError(str(path), "format", f"expected {RUNNER_FORMAT!r}, got {output.format!r}")
    return output


def _decode(path: Path, encoded: str, where: str) -> HdrHistogram:
    try:
        return hist.decode(encoded)
    except Exception as exc:  # hdrh raises assorted errors on corrupt input
        raise ParseError(str(path), where, f"bad histogram: {exc}") from exc


def _summarize(histogram: HdrHistogram, resolution_us: float) -> ResponseTime:
    return hist.summarize(histogram, resolution_us=resolution_us)


def _effective_connections(step: Step) -> int:
    # autocannon opens no more connections than the rate cap in requests/s.
    if step.overallRate:
        return min(step.connections, step.overallRate)
    return step.connections


def _time_series(path: Path, steps: list[Step]) -> list[TimeBucket]:
    """One bucket per whole second of the run, merged exactly across steps."""
    grouped: dict[int, list[tuple[Step, Second]]] = defaultdict(list)
    for step in steps:
        for second in step.seconds:
            grouped[second.t].append((step, second))
    buckets: list[TimeBucket] = []
    for t in sorted(grouped):
        merged = hist.new_histogram()
        for step, second in grouped[t]:
            merged.add(_decode(path, second.histogram, f"steps.{step.index}.seconds.t={t}"))
        buckets.append(
            hist.time_bucket(
                float(t),
                requests=sum(s.requests for _, s in grouped[t]),
                errors=sum(s.errors for _, s in grouped[t]),
                concurrency=max(_effective_connections(step) for step, _ in grouped[t]),
                histogram=merged,
            )
        )
    return buckets


def _add_counts(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def parse_runner_output(
    scenario: Scenario, path: Path, run: ToolRun | None = None, tool_version: str | None = None
) -> LoadTestResult:
    """Our runner's output file as a result; a missing or corrupt file is a ParseError."""
    output = load_runner_output(path)
    resolution = output.resolutionUs
    total_hist = hist.new_histogram()
    summaries: list[StepSummary] = []
    status_codes: dict[str, int] = {}
    errors: dict[str, int] = {}
    failures: list[str] = []
    for step in output.steps:
        step_hist = (
            _decode(path, step.histogram, f"steps.{step.index}.histogram")
            if step.histogram
            else hist.new_histogram()
        )
        total_hist.add(step_hist)
        _add_counts(status_codes, step.statusCodes)
        _add_counts(errors, step.errorKinds)
        failures.extend(f"step {step.index + 1}: {f}" for f in step.failures)
        summaries.append(
            StepSummary(
                index=step.index,
                concurrency=_effective_connections(step),
                rate=float(step.overallRate) if step.overallRate else None,
                start=step.start,
                duration=step.duration,
                total_requests=step.counts.requests,
                failed_requests=step.counts.non2xx + step.counts.errors,
                throughput=per_second(step.counts.responses, step.duration),
                response_time=_summarize(step_hist, resolution),
                histogram=hist.encode(step_hist) if step_hist.get_total_count() else None,
            )
        )
    total = sum(s.counts.requests for s in output.steps)
    successful = sum(s.counts.ok for s in output.steps)
    responses = sum(s.counts.responses for s in output.steps)
    failed = total - successful
    duration = (
        max(s.start + s.duration for s in output.steps) - min(s.start for s in output.steps)
        if output.steps
        else 0.0
    )
    missing: dict[str, str] = {}
    response_time = _summarize(total_hist, resolution)
    if total_hist.get_total_count() == 0:
        missing["responseTime"] = NO_RESPONSE
    status, detail = judge(total, successful, run, errors)
    notes = [detail] if detail else []
    timed_out = run is not None and run.timed_out
    if output.interrupted and timed_out:
        notes.append("stopped at the time limit; the result holds what was measured")
    elif output.interrupted and status is not Status.INTERRUPTED:
        status = Status.INTERRUPTED
        notes.append("the runner was interrupted; the result holds what was measured")
    elif not output.complete and not output.interrupted:
        measured = len(output.steps)
        if status is Status.COMPLETED:
            status = Status.TOOL_FAILED
        notes.append(
            f"the runner stopped before the end: {measured} of {output.plannedSteps} steps measured"
        )
    if output.stoppedEarly is not None:
        # The plan working as asked (the breaking point was found), not a failure.
        notes.append(describe_stop(output.stoppedEarly, output))
    notes.extend(failures)
    measures = LATENCY_MEASURES
    if scenario.max_rate is not None:
        measures += (
            f" Closed model capped at {scenario.max_rate:g} req/s (autocannon overallRate; "
            "it opens no more connections than that rate)."
        )
    return LoadTestResult(
        scenario=scenario.name,
        tool=TOOL,
        tool_version=tool_version or output.autocannonVersion,
        protocol="http",
        workload_model="closed",
        latency_measures=measures,
        target=redact_url(scenario.base_url),
        concurrency=max((_effective_connections(s) for s in output.steps), default=0),
        duration=duration,
        total_requests=total,
        successful_requests=successful,
        failed_requests=failed,
        error_rate=rate_percent(failed, total),
        throughput=per_second(responses, duration),
        response_time=response_time,
        status_codes=status_codes,
        errors=errors,
        time_series=_time_series(path, output.steps),
        steps=summaries,
        histogram=hist.encode(total_hist) if total_hist.get_total_count() else None,
        started_at=datetime.fromtimestamp(output.startedAt / 1000.0, UTC),
        ended_at=datetime.fromtimestamp(output.endedAt / 1000.0, UTC),
        status=status,
        status_detail="; ".join(notes) or None,
        raw_output=str(path),
        missing=missing,
    )


def describe_stop(stop: StoppedEarly, output: RunnerOutput) -> str:
    step = next((s for s in output.steps if s.index == stop.afterStep), None)
    at = f" ({_effective_connections(step)} connections)" if step is not None else ""
    return (
        f"stopped early after step {stop.afterStep + 1} of {output.plannedSteps}{at}: "
        f"{stop.errorRate:.1f}% of its requests failed, over the scenario's "
        f"stop_when_error_rate of {stop.limit:g}%; later steps were not run"
    )


def _cli_number(data: dict[str, Any], key: str, path: Path) -> int:
    value = data.get(key)
    if not isinstance(value, int | float):
        raise ParseError(str(path), key, "missing or not a number")
    return int(value)


def _cli_latency(latency: dict[str, Any], missing: dict[str, str]) -> ResponseTime:
    missing["responseTime.p95"] = "autocannon's --json has no p95 (only p90, p97.5, p99)"
    if not latency.get("totalCount"):
        missing["responseTime"] = NO_RESPONSE
        return ResponseTime(source="tool_summary", resolution_us=1000.0)

    def pick(key: str) -> float | None:
        value = latency.get(key)
        return float(value) if isinstance(value, int | float) else None

    return ResponseTime(
        min=pick("min"),
        max=pick("max"),
        mean=pick("mean"),
        stdev=pick("stddev"),
        p50=pick("p50"),
        p90=pick("p90"),
        p95=None,
        p99=pick("p99"),
        p999=pick("p99_9"),
        source="tool_summary",
        resolution_us=1000.0,
    )


def parse_cli_json(path: Path, scenario_name: str = "autocannon-import") -> LoadTestResult:
    """autocannon's own ``--json`` output (one JSON document) as a result."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("latency"), dict):
        raise ParseError(str(path), "top level", "not autocannon --json output (no 'latency')")
    requests = data.get("requests")
    if not isinstance(requests, dict):
        raise ParseError(str(path), "requests", "missing")
    responses = _cli_number(requests, "total", path)
    request_errors = _cli_number(data, "errors", path)
    timeouts = _cli_number(data, "timeouts", path)
    non2xx = _cli_number(data, "non2xx", path)
    successful = _cli_number(data, "2xx", path)
    total = responses + request_errors
    errors = {"non_2xx": non2xx, "timeout": timeouts}
    missing: dict[str, str] = {
        "timeSeries": "autocannon's --json has no per-second samples",
        "histogram": "autocannon's --json has no histogram",
    }
    if request_errors > timeouts:
        # `errors` counts timeouts too; the other kinds are only seen by the reqError event.
        errors["unclassified"] = request_errors - timeouts
        missing["errors"] = "autocannon's --json gives one total error count, not its kinds"
    errors = {k: v for k, v in errors.items() if v}
    codes = data.get("statusCodeStats") or {}
    status_codes = {str(k): int(v.get("count", 0)) for k, v in codes.items() if isinstance(v, dict)}
    duration = float(data.get("duration") or 0.0)
    status, detail = judge(total, successful, None, errors)
    url = data.get("url")
    return LoadTestResult(
        scenario=scenario_name,
        tool=TOOL,
        protocol="http",
        workload_model="closed",
        latency_measures=CLI_LATENCY_MEASURES,
        target=redact_url(url if isinstance(url, str) else ", ".join(map(str, url or []))),
        concurrency=_cli_number(data, "connections", path),
        duration=duration,
        total_requests=total,
        successful_requests=successful,
        failed_requests=total - successful,
        error_rate=rate_percent(total - successful, total),
        throughput=per_second(responses, duration),
        response_time=_cli_latency(data["latency"], missing),
        status_codes=status_codes,
        errors=errors,
        started_at=_cli_time(data, "start", path),
        ended_at=_cli_time(data, "finish", path),
        status=status,
        status_detail=detail,
        raw_output=str(path),
        missing=missing,
    )


def _cli_time(data: dict[str, Any], key: str, path: Path) -> datetime:
    value = data.get(key)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParseError(str(path), key, f"not a timestamp: {value!r}") from exc
