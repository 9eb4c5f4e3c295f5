"""autocannon output -> LoadTestResult.

Two sources:

* our runner's output file (``tool_configs/node/autocannon-runner.js``): every response
  time in µs in HdrHistograms per second and per step, merged here exactly;
* autocannon's own CLI ``--json`` (for importing old runs): whole milliseconds, no p95,
  no per-second samples, one total error count; the result says so in ``missing``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import histogram as hist
from orchestrator.engines.autocannon.checkpoints import rebuild_steps
from orchestrator.engines.autocannon.runner_output import (
    RUNNER_FORMAT,
    RunnerOutput,
    Step,
    StoppedEarly,
    add_counts,
    counts_of,
    decode,
    effective_connections,
    endpoint_tallies,
    load_runner_output,
    step_series,
)
from orchestrator.errors import ParseError
from orchestrator.models import LoadTestResult, ResponseTime
from orchestrator.process import ToolRun
from orchestrator.scenarios import Scenario
from parsers import build
from parsers.common import read_json, validated

TOOL = "autocannon"
__all__ = ["RUNNER_FORMAT", "import_file", "load_runner_output", "parse_output"]
LATENCY_MEASURES = (
    "autocannon: from writing a request on its connection to receiving the complete "
    "response (process.hrtime), per connection; with pipelining > 1 a request's time "
    "includes waiting behind earlier requests on the same connection. Recorded raw in µs "
    "(no coordinated-omission correction)."
)
CLI_LATENCY_MEASURES = LATENCY_MEASURES.replace("Recorded raw in µs", "Whole milliseconds")
NO_RESPONSE = "no response was received, so there is no latency to report"
OLD_RUNNER = "this runner output has no per-endpoint numbers (made by an older runner)"


def parse_output(
    scenario: Scenario,
    path: Path,
    run: ToolRun | None = None,
    tool_version: str | None = None,
    checkpoints: Path | None = None,
) -> LoadTestResult:
    """Our runner's output file as a result; a missing or corrupt file is a ParseError.

    When the runner stopped before writing its whole output (killed, crashed), the step it
    was in is rebuilt from ``checkpoints`` up to its last whole second, and ``missing`` says
    what happened after that is unknown.
    """
    output = load_runner_output(path)
    missing: dict[str, str] = {}
    rebuilt: list[Step] = []
    if not output.complete and not output.interrupted and checkpoints is not None:
        known = {step.index for step in output.steps}
        found = rebuild_steps(checkpoints, known)
        rebuilt = [validated(Step, item.record, checkpoints) for item in found]
        if found:
            missing["totalRequests"] = _after_checkpoint(
                max(item.up_to for item in found), output, run
            )
    measured = [*output.steps, *rebuilt]
    if rebuilt:
        missing["endpoints"] = "the runner stopped mid-step: only its totals are checkpointed"
    elif not output.endpoints:
        missing["endpoints"] = OLD_RUNNER
    total_hist = hist.new_histogram()
    steps: list[build.Step] = []
    status_codes: dict[str, int] = {}
    errors: dict[str, int] = {}
    notes: list[str] = []
    for step in measured:
        step_hist = (
            decode(path, step.histogram, f"steps.{step.index}.histogram")
            if step.histogram
            else hist.new_histogram()
        )
        total_hist.add(step_hist)
        add_counts(status_codes, step.statusCodes)
        add_counts(errors, step.errorKinds)
        notes.extend(f"step {step.index + 1}: {f}" for f in step.failures)
        steps.append(
            build.Step(
                index=step.index,
                concurrency=effective_connections(step),
                rate=float(step.overallRate) if step.overallRate else None,
                start=step.start,
                duration=step.duration,
                counts=counts_of(step.counts),
                histogram=step_hist,
                resolution_us=output.resolutionUs,
            )
        )
    if output.stoppedEarly is not None:
        # The plan working as asked (the breaking point was found), not a failure.
        notes.insert(0, describe_stop(output.stoppedEarly, output))
    cut_short = None
    if not output.complete:
        whole = len(output.steps)
        cut_short = (
            f"the runner stopped before the end: {whole} of {output.plannedSteps} steps measured"
        )
        if rebuilt:
            cut_short += f", then step {rebuilt[-1].index + 1} up to its last checkpoint"
    duration: float | None = (
        max(s.start + s.duration for s in measured) - min(s.start for s in measured)
        if measured
        else None
    )
    if duration is None and (output.complete or output.interrupted):
        duration = 0.0  # it ran and measured nothing: that is known
    measures = LATENCY_MEASURES
    if scenario.max_rate is not None:
        measures += (
            f" Closed model capped at {scenario.max_rate:g} req/s (autocannon overallRate; "
            "it opens no more connections than that rate)."
        )
    identity = build.Identity(
        scenario=scenario.name,
        tool=TOOL,
        tool_version=tool_version or output.autocannonVersion,
        protocol="http",
        workload_model="closed",
        latency_measures=measures,
        target=scenario.base_url,
        concurrency=max((effective_connections(s) for s in measured), default=None),
        raw_output=path,
    )
    counts: build.Counts | None = build.Counts(
        total=sum(s.counts.requests for s in measured),
        successful=sum(s.counts.ok for s in measured),
        completed=sum(s.counts.responses for s in measured),
    )
    if not measured and not output.complete and not output.interrupted:
        # Stopped before its first checkpoint: what it sent is unknown, not zero.
        counts = None
        unknown = "the runner stopped before it had counted a whole second"
        missing.update(dict.fromkeys(("totalRequests", "errorRate", "throughput"), unknown))
    return build.result(
        identity,
        counts,
        build.Latency(total_hist, output.resolutionUs, no_sample=NO_RESPONSE),
        build.Timing(
            started=datetime.fromtimestamp(output.startedAt / 1000.0, UTC),
            ended=datetime.fromtimestamp(output.endedAt / 1000.0, UTC),
            duration=duration,
        ),
        build.Outcome(run=run, interrupted=output.interrupted, cut_short=cut_short, notes=notes),
        build.Details(
            status_codes=status_codes,
            errors=errors,
            time_series=step_series(path, measured),
        ),
        steps=steps,
        endpoints=[] if rebuilt else endpoint_tallies(path, output),
        missing=missing,
    )


def _after_checkpoint(up_to: float, output: RunnerOutput, run: ToolRun | None) -> str:
    stopped = ""
    if run is not None:
        at = run.ended.timestamp() - output.startedAt / 1000.0
        stopped = f", until the runner {run.describe_failure()} about {at:.1f} s into the run,"
    return (
        f"counted up to {up_to:.0f} s into the run (the runner's last per-second "
        f"checkpoint); the requests after that{stopped} are unknown"
    )


def describe_stop(stop: StoppedEarly, output: RunnerOutput) -> str:
    step = next((s for s in output.steps if s.index == stop.afterStep), None)
    at = f" ({effective_connections(step)} connections)" if step is not None else ""
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
    if not latency.get("totalCount"):  # no sample: the builder says responseTime is missing
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


def import_file(path: Path, scenario_name: str = "autocannon-import") -> LoadTestResult:
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
    errors = {"non_2xx": non2xx, "timeout": timeouts}
    missing: dict[str, str] = {
        "timeSeries": "autocannon's --json has no per-second samples",
        "histogram": "autocannon's --json has no histogram",
        "endpoints": "autocannon's --json has no per-endpoint numbers",
    }
    if request_errors > timeouts:
        # `errors` counts timeouts too; the other kinds are only seen by the reqError event.
        errors["unclassified"] = request_errors - timeouts
        missing["errors"] = "autocannon's --json gives one total error count, not its kinds"
    errors = {k: v for k, v in errors.items() if v}
    codes = data.get("statusCodeStats") or {}
    status_codes = {str(k): int(v.get("count", 0)) for k, v in codes.items() if isinstance(v, dict)}
    url = data.get("url")
    identity = build.Identity(
        scenario=scenario_name,
        tool=TOOL,
        protocol="http",
        workload_model="closed",
        latency_measures=CLI_LATENCY_MEASURES,
        target=url if isinstance(url, str) else ", ".join(map(str, url or [])),
        concurrency=_cli_number(data, "connections", path),
        raw_output=path,
    )
    return build.result(
        identity,
        # requests.total counts responses (any status); `errors` the requests that got none.
        build.Counts(total=responses + request_errors, successful=successful, completed=responses),
        build.Latency(summary=_cli_latency(data["latency"], missing), no_sample=NO_RESPONSE),
        build.Timing(
            started=_cli_time(data, "start", path),
            ended=_cli_time(data, "finish", path),
            duration=float(data.get("duration") or 0.0),
        ),
        build.Outcome(),
        build.Details(status_codes=status_codes, errors=errors),
        missing=missing,
    )


def _cli_time(data: dict[str, Any], key: str, path: Path) -> datetime:
    value = data.get(key)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParseError(str(path), key, f"not a timestamp: {value!r}") from exc
