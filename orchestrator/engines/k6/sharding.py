"""Run one k6 scenario as N shards (here or on agents), released together, merged exactly.

Steps: plan the segments -> write the script once -> start every shard paused (in
parallel) -> release them all at once -> wait -> read each raw output -> merge the counts
and histograms (:mod:`orchestrator.engines.k6.merge_raw`) -> one LoadTestResult whose
``shards`` list each instance's own counts and CPU -> thresholds judged on the merged
result -> ``result.json``. A shard that fails or is interrupted stops the others; the
result then merges what was measured and says which shard failed.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from orchestrator.analysis import attach_findings
from orchestrator.engines import k6
from orchestrator.engines.base import DEFAULT_GRACE, make_private_dir, scenario_secrets
from orchestrator.engines.base import write_config as write_tool_config
from orchestrator.engines.k6 import output as k6_output
from orchestrator.engines.k6.agent_client import AgentShard, check_agent_url
from orchestrator.engines.k6.merge_raw import ShardTally, merge_tallies, merged_duration, read_shard
from orchestrator.engines.k6.shards import (
    LocalShard,
    ShardOutcome,
    segment_sequence,
    segments,
    shard_config,
)
from orchestrator.errors import ConfigError, FatalError
from orchestrator.execute import RESULT_FILE, RunSettings, save_result
from orchestrator.models import LoadTestResult, ResponseTime, ShardSummary, Status
from orchestrator.redact import redact_url
from orchestrator.samplers import Sampler
from orchestrator.scenarios import Scenario
from orchestrator.sla import ThresholdSpec, evaluate
from orchestrator.targets import LocatedTarget
from parsers.common import judge

LOG = logging.getLogger(__name__)

STOP_WAIT = 30.0
UNMEASURED = ("totalRequests", "errorRate", "throughput", "responseTime")


class Shard(Protocol):
    """A k6 instance of a sharded run, here (LocalShard) or on an agent (AgentShard)."""

    index: int
    segment: str
    host: str

    def start(self) -> None: ...

    def release(self) -> None: ...

    def stop(self) -> None: ...

    def wait(self, timeout: float) -> ShardOutcome: ...

    def close(self) -> None: ...


def shard_count(scenario: Scenario, agents: Sequence[str]) -> int:
    """``scenario.shards``; with agents and no count, one shard per agent."""
    return scenario.shards if scenario.shards > 1 else max(1, len(agents))


def check_shardable(tool: str, scenario: Scenario, agents: Sequence[str] = ()) -> None:
    if tool != k6.NAME:
        raise ConfigError(
            f"scenario {scenario.name!r}: only k6 runs sharded (shards/--agent), not {tool}"
        )
    if scenario.protocol not in k6.TRANSPORTS:
        raise ConfigError(f"k6 cannot run {scenario.protocol} load (scenario {scenario.name!r})")
    segments(shard_count(scenario, agents))  # the count is in range
    for url in agents:
        check_agent_url(url)


def _on_all(shards: Sequence[Shard], step: Callable[[Shard], None]) -> list[str]:
    """Run ``step`` on every shard at once; the failures, one line each."""
    if not shards:
        return []
    with ThreadPoolExecutor(max_workers=len(shards)) as pool:
        futures = [(s, pool.submit(step, s)) for s in shards]
    failures = []
    for shard, future in futures:
        exc = future.exception()
        if exc is not None:
            failures.append(f"shard {shard.index} ({shard.host}): {exc}")
    return failures


def _stop_all(shards: Sequence[Shard]) -> None:
    _on_all(shards, lambda s: s.stop())


def _wait_all(shards: Sequence[Shard], timeout: float) -> list[ShardOutcome]:
    """Wait for each shard; once one fails or is interrupted the others are stopped."""
    deadline = time.monotonic() + timeout
    outcomes: list[ShardOutcome] = []
    stopped = False
    for shard in shards:
        left = STOP_WAIT if stopped else deadline - time.monotonic()
        try:
            outcome = shard.wait(left)
        except KeyboardInterrupt:
            _stop_all(shards)
            stopped = True
            outcome = shard.wait(STOP_WAIT)
            outcome.interrupted = True
        except FatalError as exc:
            outcome = ShardOutcome(None, None, failure=str(exc))
        outcomes.append(outcome)
        if not stopped and (outcome.failure or outcome.interrupted):
            _stop_all(shards[len(outcomes) :])
            stopped = True
    return outcomes


def run_timeout(scenario: Scenario) -> float:
    """Seconds a released shard may run: the shape, the graceful stop and the usual grace."""
    return scenario.shape.total_duration + k6.graceful_seconds(scenario) + DEFAULT_GRACE


def _make_shards(
    scenario: Scenario, script: Path, workdir: Path, settings: RunSettings, t0: float
) -> list[Shard]:
    n = shard_count(scenario, settings.agents)
    sequence = segment_sequence(n)
    config = shard_config(scenario, n)
    shards: list[Shard] = []
    for index, segment in enumerate(segments(n)):
        folder = workdir / f"shard-{index}"
        if settings.agents:
            url = settings.agents[index % len(settings.agents)]
            shards.append(
                AgentShard(
                    url,
                    index,
                    segment,
                    sequence,
                    config,
                    folder,
                    timeout=run_timeout(scenario),
                    sample_interval=settings.sample_interval,
                )
            )
        else:
            # Shard 0 shows k6's progress; the others only write their logs.
            sink = settings.sink if index == 0 and not settings.progress else None
            shards.append(
                LocalShard(
                    index,
                    segment,
                    sequence,
                    script,
                    folder,
                    sink=sink,
                    sample_interval=settings.sample_interval,
                    t0=t0,
                )
            )
    return shards


def run_sharded(
    scenario: Scenario,
    tool: str,
    workdir: Path,
    target: LocatedTarget | None,
    settings: RunSettings | None = None,
    unsampled_reason: str = "no local target process to sample",
    thresholds: Sequence[ThresholdSpec] = (),
) -> LoadTestResult:
    """Run ``scenario`` as shards, merge, judge ``thresholds``, save ``workdir/result.json``."""
    settings = settings or RunSettings()
    check_shardable(tool, scenario, settings.agents)
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    private = make_private_dir()
    # Every shard runs the same script; the segment arguments alone tell them apart.
    script_text = k6.render_script(shard_config(scenario, shard_count(scenario, settings.agents)))
    script, _ = write_tool_config(
        private, workdir, k6.SCRIPT_NAME, script_text, scenario_secrets(scenario)
    )
    t0 = time.monotonic()
    shards = _make_shards(scenario, script, workdir, settings, t0)
    sampler = target.sampler(settings.sample_interval, t0) if target is not None else None
    started = datetime.now(UTC)
    outcomes: list[ShardOutcome] = []
    try:
        if sampler is not None:
            sampler.start()
        outcomes = _start_release_wait(shards, run_timeout(scenario))
    finally:
        if sampler is not None:
            sampler.stop()
        for shard in shards:
            shard.close()
        shutil.rmtree(private, ignore_errors=True)
    ended = datetime.now(UTC)
    result = merge_outcomes(scenario, shards, outcomes, started, ended, workdir)
    result = _attach_target(result, sampler, unsampled_reason)
    error_sla = min((t.limit for t in thresholds if t.metric == "errorRate"), default=None)
    result = attach_findings(result, scenario, error_sla)
    result = result.model_copy(update={"thresholds": evaluate(result, thresholds, scenario)})
    save_result(result, workdir / RESULT_FILE)
    return result


def _start_release_wait(shards: list[Shard], timeout: float) -> list[ShardOutcome]:
    """Start all (in parallel), release all together, wait; Ctrl-C or a failure stops all."""
    try:
        failures = _on_all(shards, lambda s: s.start())
        if not failures:
            LOG.info("%d k6 shards ready; releasing them together", len(shards))
            failures = _on_all(shards, lambda s: s.release())
    except KeyboardInterrupt:
        _stop_all(shards)
        return [_interrupted(s.wait(STOP_WAIT)) for s in shards]
    if failures:
        _stop_all(shards)
        outcomes = [s.wait(STOP_WAIT) for s in shards]
        for outcome in outcomes:
            outcome.failure = outcome.failure or "stopped: " + "; ".join(failures)
        return outcomes
    return _wait_all(shards, timeout)


def _interrupted(outcome: ShardOutcome) -> ShardOutcome:
    outcome.interrupted = True
    return outcome


def _read(outcome: ShardOutcome) -> tuple[ShardTally | None, str | None]:
    if outcome.raw is None:
        return None, outcome.failure or "k6 wrote no raw output"
    partial = outcome.interrupted or outcome.timed_out or outcome.failure is not None
    try:
        return read_shard(outcome.raw, outcome.summary, partial_ok=partial), outcome.failure
    except FatalError as exc:
        return None, str(exc)


def _summary(
    shard: Shard, outcome: ShardOutcome, part: ShardTally | None, why: str | None
) -> ShardSummary:
    generator = outcome.generator
    status = Status.INTERRUPTED if outcome.interrupted else Status.TOOL_FAILED
    if part is not None and why is None and not outcome.interrupted:
        status, why = judge(part.tally.total, part.tally.successful, None, dict(part.tally.errors))
    total = part.tally.total if part else None
    return ShardSummary(
        index=shard.index,
        segment=shard.segment,
        host=shard.host,
        total_requests=total,
        failed_requests=None if part is None else part.tally.total - part.tally.successful,
        throughput=None if part is None or not part.duration else part.tally.total / part.duration,
        generator=None if generator is None else generator.model_copy(update={"series": []}),
        saturated=bool(generator and generator.saturated),
        status=status,
        status_detail=why,
        raw_output=None if outcome.raw is None else str(outcome.raw),
    )


def merge_outcomes(
    scenario: Scenario,
    shards: Sequence[Shard],
    outcomes: Sequence[ShardOutcome],
    started: datetime,
    ended: datetime,
    raw_dir: Path,
) -> LoadTestResult:
    """One result of all shards' raw outputs (under ``raw_dir``), and each shard's own."""
    read = [_read(o) for o in outcomes]
    summaries = [_summary(s, o, p, w) for s, o, (p, w) in zip(shards, outcomes, read, strict=True)]
    parts = [p for p, _ in read if p is not None]
    if not parts:
        why = "; ".join(f"shard {s.index}: {s.status_detail}" for s in summaries)
        return _nothing_measured(scenario, started, ended, why, summaries)
    tally = merge_tallies(parts)
    result = k6_output.result_from_tally(
        tally,
        identity=k6_output.make_identity(
            scenario.name,
            scenario.protocol,
            scenario.shape.model,
            scenario.ws_url if scenario.protocol == "ws" else scenario.base_url,
            raw_dir,
            k6.version(),
        ),
        duration=merged_duration(parts),
        started=started,
        ended=ended,
        run=None,
    )
    update: dict[str, object] = {
        "shards": summaries,
        "generator_saturated": any(s.saturated for s in summaries),
        "missing": {
            **result.missing,
            "generator": "a sharded run: each shard's k6 CPU is in shards[].generator",
        },
    }
    broken = [s for s in summaries if s.status in (Status.TOOL_FAILED, Status.INTERRUPTED)]
    if any(s.status is Status.INTERRUPTED for s in summaries):
        update["status"] = Status.INTERRUPTED
        update["status_detail"] = "stopped by Ctrl-C; the result merges what the shards measured"
    elif broken:
        names = "; ".join(f"shard {s.index} ({s.host}): {s.status_detail}" for s in broken)
        update["status"] = Status.TOOL_FAILED
        update["status_detail"] = f"{names}; the result merges the shards' outputs that were read"
    return result.model_copy(update=update)


def _nothing_measured(
    scenario: Scenario, started: datetime, ended: datetime, why: str, shards: list[ShardSummary]
) -> LoadTestResult:
    interrupted = any(s.status is Status.INTERRUPTED for s in shards)
    unknown = f"no shard's output could be read: {why}"
    return LoadTestResult(
        scenario=scenario.name,
        tool=k6.NAME,
        protocol=scenario.protocol,
        workload_model=scenario.shape.model,
        latency_measures="unknown (no output)",
        target=redact_url(scenario.base_url),
        concurrency=scenario.shape.peak,
        duration=(ended - started).total_seconds(),
        total_requests=None,
        successful_requests=None,
        failed_requests=None,
        error_rate=None,
        throughput=None,
        response_time=ResponseTime(),
        shards=shards,
        started_at=started,
        ended_at=ended,
        status=Status.INTERRUPTED if interrupted else Status.TOOL_FAILED,
        status_detail=unknown,
        missing=dict.fromkeys(
            ("totalRequests", "errorRate", "throughput", "responseTime"), unknown
        ),
    )


def _attach_target(
    result: LoadTestResult, sampler: Sampler | None, unsampled_reason: str
) -> LoadTestResult:
    if sampler is None:
        return result.model_copy(
            update={"missing": {**result.missing, "resourceUsage": unsampled_reason}}
        )
    usage = sampler.usage()
    update: dict[str, object] = {"resource_usage": usage}
    if usage.target_exit is not None and result.status is Status.COMPLETED:
        update["status"] = Status.TARGET_FAILED
        update["status_detail"] = (
            f"the target exited {usage.target_exit.t:.1f} s into the run "
            f"(exit code {usage.target_exit.exit_code})"
        )
    return result.model_copy(update=update)
