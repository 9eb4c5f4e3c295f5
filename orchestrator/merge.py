"""``orchestrate merge``: results of several machines (or k6 instances) -> one result.

Two kinds of input, never mixed:

- raw k6 outputs (``--out json``, gzip or not; a ``k6-summary.json`` beside one gives its
  run duration): merged exactly, per second too (:mod:`orchestrator.engines.k6.merge_raw`);
- ``result.json`` / ``summary.json`` files: grouped by scenario; counts add up and the
  latency histograms merge exactly. Per-second percentiles cannot be merged from them
  (a bucket keeps only its own p50/p95/p99): those are left out, with the reason.

A result without a histogram has only its tool's percentiles, which cannot be merged: it is
refused unless ``--approximate``, which gives each percentile as the range it must lie in
(from the lowest to the highest of the inputs') labelled ``source="approximate"``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from orchestrator import histogram as hdr
from orchestrator.engines.k6 import SUMMARY_NAME
from orchestrator.engines.k6 import output as k6_output
from orchestrator.engines.k6.merge_raw import merge_tallies, merged_duration, read_shard
from orchestrator.errors import ConfigError
from orchestrator.models import (
    EndpointStats,
    LoadTestResult,
    ResponseTime,
    ShardSummary,
    Status,
    TimeBucket,
    WorkloadModel,
)
from orchestrator.sla import ThresholdSpec, evaluate
from parsers.common import judge, per_second, rate_percent, read_json, validated

LOG = logging.getLogger(__name__)

Labelled = tuple[str, LoadTestResult]  # (where it came from, the result)
PERCENTILE_KEYS = ("p50", "p90", "p95", "p99", "p999")
NO_SECOND_PERCENTILES = (
    "merged from result files: each second's percentiles cannot be merged from the inputs' "
    "own (only counts are); the overall histogram is merged exactly"
)
# Worst first: the merged result is as bad as its worst input.
SEVERITY = [Status.INTERRUPTED, Status.TOOL_FAILED, Status.TARGET_FAILED, Status.COMPLETED]


def read_results(path: Path) -> list[LoadTestResult]:
    """The results in a ``result.json`` (one) or a report's ``summary.json`` (several)."""
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        return [validated(LoadTestResult, item, path) for item in data["results"]]
    return [validated(LoadTestResult, data, path)]


def merge_raw(paths: Sequence[Path], name: str | None = None) -> LoadTestResult:
    """Raw k6 outputs of one test's instances -> one result, exact per second too."""
    parts = [read_shard(p, p.parent / SUMMARY_NAME) for p in paths]
    tally = merge_tallies(parts)
    missing: dict[str, str] = {}
    model: WorkloadModel = "open" if tally.dropped_seen else "closed"
    if not tally.dropped_seen:
        missing["workloadModel"] = "not in k6's output; no dropped_iterations, so assumed closed"
    stamps = [t for t in (tally.first_stamp, tally.last_stamp) if t]
    started = datetime.fromisoformat(stamps[0]) if stamps else datetime.now().astimezone()
    ended = datetime.fromisoformat(stamps[-1]) if stamps else started
    result = k6_output.result_from_tally(
        tally,
        identity=k6_output.make_identity(
            name or "merged",
            "ws" if tally.is_ws else "http",
            model,
            tally.target or "unknown",
            paths[0],
        ),
        duration=merged_duration(parts),
        started=started,
        ended=ended,
        run=None,
        missing=missing,
    )
    shards = [
        ShardSummary(
            index=i,
            host=str(path),
            total_requests=part.tally.total,
            failed_requests=part.tally.total - part.tally.successful,
            throughput=per_second(part.tally.total, part.duration or 0.0),
            status=judge(part.tally.total, part.tally.successful, None)[0],
            raw_output=str(path),
        )
        for i, (path, part) in enumerate(zip(paths, parts, strict=True))
    ]
    return result.model_copy(update={"shards": shards})


def _same(results: Sequence[LoadTestResult], field: str) -> object:
    values = {getattr(r, field) for r in results}
    if len(values) > 1:
        shown = ", ".join(sorted(map(str, values)))
        raise ConfigError(f"cannot merge results of different {field}s ({shown})")
    return values.pop()


def _sum(values: Sequence[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _approximate(
    times: Sequence[ResponseTime], weights: Sequence[int]
) -> tuple[ResponseTime, dict[str, str]]:
    """Percentiles without histograms: the range each must lie in, its upper end shown."""
    notes: dict[str, str] = {}
    values: dict[str, float | None] = {}
    for key in PERCENTILE_KEYS:
        known = [getattr(t, key) for t in times]
        if any(v is None for v in known):
            values[key] = None
            notes[f"responseTime.{key}"] = "not every input has it"
            continue
        low, high = min(known), max(known)
        values[key] = high
        notes[f"responseTime.{key}"] = (
            f"approximate: between {low:g} and {high:g} ms (the inputs' lowest and highest "
            f"{key}; without histograms percentiles cannot be merged); shown: the upper end"
        )
    means = [(t.mean, w) for t, w in zip(times, weights, strict=True)]
    mean = None
    if all(m is not None for m, _ in means) and sum(weights) > 0:
        mean = sum((m or 0.0) * w for m, w in means) / sum(weights)
        notes["responseTime.mean"] = "approximate: the inputs' means weighted by their requests"
    notes["responseTime.stdev"] = "cannot be merged without histograms"
    mins = [t.min for t in times]
    maxes = [t.max for t in times]
    return (
        ResponseTime(
            min=None if None in mins else min(m for m in mins if m is not None),
            max=None if None in maxes else max(m for m in maxes if m is not None),
            mean=mean,
            source="approximate",
            **values,
        ),
        notes,
    )


def _latency(
    items: Sequence[tuple[ResponseTime, str | None, int]], approximate: bool, what: str
) -> tuple[ResponseTime, str | None, dict[str, str]]:
    """(response time, merged histogram, notes) of several inputs' latencies."""
    if all(encoded for _, encoded, _ in items):
        merged = hdr.merge(e for _, e, _ in items if e)
        return hdr.summarize(merged), hdr.encode(merged), {}
    if not approximate:
        raise ConfigError(
            f"{what} has no latency histogram (only its tool's percentiles, which cannot be "
            "merged); pass --approximate to get each percentile as a labelled range"
        )
    time, notes = _approximate([t for t, _, _ in items], [w for _, _, w in items])
    return time, None, notes


def _series(
    parts: Sequence[tuple[datetime, list[TimeBucket]]], start: datetime
) -> list[TimeBucket]:
    """Requests, errors and users per wall-clock second over all inputs (no percentiles)."""
    requests: Counter[int] = Counter()
    errors: Counter[int] = Counter()
    users: dict[int, int] = {}
    for started, buckets in parts:
        for bucket in buckets:
            sec = int(started.timestamp() + bucket.t)
            requests[sec] += bucket.requests
            errors[sec] += bucket.errors
            if bucket.concurrency is not None:
                users[sec] = users.get(sec, 0) + bucket.concurrency
    if not requests:
        return []
    first = int(start.timestamp())
    return [
        TimeBucket(
            t=float(sec - first),
            requests=requests[sec],
            errors=errors[sec],
            concurrency=users.get(sec),
        )
        for sec in range(min(requests), max(requests) + 1)
    ]


def _endpoints(
    inputs: Sequence[Labelled], duration: float, approximate: bool
) -> list[EndpointStats]:
    grouped: dict[str, list[tuple[LoadTestResult, EndpointStats]]] = defaultdict(list)
    for _, result in inputs:
        for endpoint in result.endpoints:
            grouped[endpoint.name].append((result, endpoint))
    start = min(r.started_at for _, r in inputs)
    merged = []
    for name, pairs in grouped.items():
        stats = [e for _, e in pairs]
        total = sum(e.total_requests for e in stats)
        failed = sum(e.failed_requests for e in stats)
        items = [(e.response_time, e.histogram, e.total_requests) for e in stats]
        time, encoded, _ = _latency(items, approximate, f"endpoint {name!r} of an input")
        merged.append(
            EndpointStats(
                name=name,
                method=stats[0].method,
                path=stats[0].path,
                total_requests=total,
                successful_requests=sum(e.successful_requests for e in stats),
                failed_requests=failed,
                error_rate=rate_percent(failed, total),
                throughput=per_second(total, duration),
                response_time=time,
                histogram=encoded,
                status_codes=dict(sum((Counter(e.status_codes) for e in stats), Counter())),
                errors=dict(sum((Counter(e.errors) for e in stats), Counter())),
                time_series=_series([(r.started_at, e.time_series) for r, e in pairs], start),
            )
        )
    return merged


def merge_results(inputs: Sequence[Labelled], *, approximate: bool = False) -> LoadTestResult:
    """Results of one scenario from several machines, run side by side -> one result."""
    results = [r for _, r in inputs]
    for field in ("scenario", "tool", "protocol"):
        _same(results, field)
    first = results[0]
    items = [(r.response_time, r.histogram, r.successful_requests or 0) for r in results]
    unlabelled = next((label for label, r in inputs if not r.histogram), "an input")
    time, encoded, missing = _latency(items, approximate, unlabelled)
    total = _sum([r.total_requests for r in results])
    successful = _sum([r.successful_requests for r in results])
    failed = _sum([r.failed_requests for r in results])
    # Side by side: the merged run lasted as long as the longest input.
    duration = max(r.duration for r in results)
    started = min(r.started_at for r in results)
    errors = Counter[str]()
    for r in results:
        errors.update(r.errors)
    detail: str | None
    if total is None or successful is None:
        status, detail = Status.TOOL_FAILED, "an input's counts are unknown"
        missing["totalRequests"] = "an input's counts are unknown (its output was unreadable)"
    else:
        status, detail = judge(total, successful, None, dict(errors))
    worst = min((r.status for r in results), key=SEVERITY.index)
    if worst is not Status.COMPLETED:
        # An input interrupted elsewhere is a broken input here, not a Ctrl-C of this merge.
        status = Status.TOOL_FAILED if worst is Status.INTERRUPTED else worst
        detail = "; ".join(
            f"{label}: {r.status.value}" for label, r in inputs if r.status is not Status.COMPLETED
        )
    if max(r.started_at for r in results) >= min(r.ended_at for r in results):
        note = "the inputs did not run at the same time: their rates add up only if they did"
        detail = f"{detail}; {note}" if detail else note
    missing["timeSeries.p50"] = NO_SECOND_PERCENTILES
    if len({r.target for r in results}) > 1:
        missing["target"] = "the inputs loaded different targets: " + ", ".join(
            sorted({r.target for r in results})
        )
    missing["resourceUsage"] = "sampled per machine: see each input's result"
    not_delivered = _sum([r.load_not_delivered for r in results])
    if not_delivered is None:
        missing["loadNotDelivered"] = "not every input reports it"
    specs = {
        (c.metric, c.op, c.limit): ThresholdSpec(metric=c.metric, op=c.op, limit=c.limit)
        for r in results
        for c in r.thresholds
    }
    merged = LoadTestResult(
        scenario=first.scenario,
        tool=first.tool,
        tool_version=first.tool_version if len({r.tool_version for r in results}) == 1 else None,
        protocol=first.protocol,
        workload_model=first.workload_model,
        latency_measures=first.latency_measures,
        target=first.target,
        concurrency=sum(r.concurrency for r in results),
        duration=duration,
        total_requests=total,
        successful_requests=successful,
        failed_requests=failed,
        error_rate=None if total is None or failed is None else rate_percent(failed, total),
        throughput=None if total is None else per_second(total, duration),
        response_time=time,
        status_codes=dict(sum((Counter(r.status_codes) for r in results), Counter())),
        errors=dict(errors),
        time_series=_series([(r.started_at, r.time_series) for r in results], started),
        endpoints=_endpoints(inputs, duration, approximate),
        histogram=encoded,
        load_not_delivered=not_delivered,
        generator_saturated=any(r.generator_saturated for r in results),
        shards=[_input_summary(i, label, r) for i, (label, r) in enumerate(inputs)],
        started_at=started,
        ended_at=max(r.ended_at for r in results),
        status=status,
        status_detail=detail,
        missing=missing,
    )
    if any(e.response_time.source == "approximate" for e in merged.endpoints):
        merged.missing["endpoints.responseTime"] = (
            "approximate: each percentile is the highest of the inputs' (a range's upper end)"
        )
    return merged.model_copy(update={"thresholds": evaluate(merged, specs.values())})


def merge_command(
    files: Sequence[Path], *, approximate: bool, report_dir: Path, name: str | None
) -> int:
    """``orchestrate merge``: merge, write the report, print; the exit code is the verdict."""
    from orchestrator import sla
    from orchestrator.execute import save_result
    from orchestrator.progress import say
    from orchestrator.workflow import new_run_dir
    from reports.console import print_result
    from reports.writer import write_report

    results = merge_files(files, approximate=approximate, name=name)
    run_dir = new_run_dir(report_dir, "merge")
    code = sla.suite_exit_code(results)
    for result in results:
        save_result(result, run_dir / result.scenario / "result.json")
    write_report(run_dir, f"orchestrate merge of {len(files)} files", results, exit_code=int(code))
    for result in results:
        print_result(result)
    say(f"report: {run_dir}")
    return int(code)


def _input_summary(index: int, label: str, result: LoadTestResult) -> ShardSummary:
    generator = result.generator
    return ShardSummary(
        index=index,
        host=label,
        total_requests=result.total_requests,
        failed_requests=result.failed_requests,
        throughput=result.throughput,
        generator=None if generator is None else generator.model_copy(update={"series": []}),
        saturated=result.generator_saturated,
        status=result.status,
        status_detail=result.status_detail,
        raw_output=result.raw_output,
    )


def merge_files(
    paths: Sequence[Path], *, approximate: bool = False, name: str | None = None
) -> list[LoadTestResult]:
    """The merged result of raw k6 outputs, or one per scenario of result files."""
    from orchestrator.engines.k6.output import is_raw_output

    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"no such file: {missing[0]}")
    raw = [p for p in paths if is_raw_output(p)]
    if raw and len(raw) != len(paths):
        raise ConfigError(
            f"give either raw k6 outputs or result/summary files to merge, not both (raw: {raw[0]})"
        )
    if raw:
        return [merge_raw(raw, name)]
    groups: dict[str, list[Labelled]] = defaultdict(list)
    for path in paths:
        for result in read_results(path):
            groups[result.scenario].append((str(path), result))
    merged = [merge_results(group, approximate=approximate) for group in groups.values()]
    if name is not None and len(merged) == 1:
        merged = [merged[0].model_copy(update={"scenario": name})]
    return merged
