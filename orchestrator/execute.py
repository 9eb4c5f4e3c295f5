"""Execute one planned scenario with one engine: prepare, sample, run, parse, attach, save.

The result file is written whatever happens after the tool started: a failed parse
becomes a ``tool_failed`` result that points at the raw output, Ctrl-C (or SIGTERM,
SIGHUP: :mod:`orchestrator.interrupts`) an ``interrupted`` result with what was measured.
A disk that refuses the file raises :class:`ResultNotSavedError`, which carries the result.
The tool's private folder (configs with real secrets) is removed on every way out.

A database scenario is watched by the pool monitor (:mod:`orchestrator.pool_monitor`) on
the same timeline as the target's resources. It connects before the load (a database it
cannot reach is a ``TargetError``: one line, exit 3, nothing started), tells the engine
what it talks to (``scenario.pool``) and writes its samples to ``pool-samples.jsonl`` as
it goes; its :class:`PoolMetrics` become ``result.pool`` and complete the evidence of a
stepped run's database limit.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator import interrupts, process
from orchestrator.analysis import attach_findings
from orchestrator.db_limit import with_pool
from orchestrator.engines import check_supports
from orchestrator.engines.base import POOL_SAMPLES, Engine, Invocation, private_dirs_removed
from orchestrator.errors import ParseError, ReportError
from orchestrator.models import LoadTestResult, Status, TargetExit
from orchestrator.process import OutputSink, ToolRun
from orchestrator.progress import Progress
from orchestrator.safe_files import NotWrittenError, Unwritten, describe_unwritten, write_atomic
from orchestrator.samplers import ProcessTreeSampler, Sampler, generator_sampler, generator_usage
from orchestrator.scenarios import Scenario
from orchestrator.sla import ThresholdSpec, evaluate
from orchestrator.targets import LocatedTarget
from parsers import build

if TYPE_CHECKING:
    from orchestrator.pool_monitor import PoolMonitor

LOG = logging.getLogger(__name__)

RESULT_FILE = "result.json"


@dataclass
class RunSettings:
    sample_interval: float = 1.0
    sink: OutputSink | None = process.write_to_stderr
    # Show a progress line (live figures) instead of the tool's raw output.
    progress: bool = False
    # `orchestrate agent` URLs that run a sharded k6 scenario's shards (else: this machine).
    agents: list[str] = field(default_factory=list)


def run_scenario(
    scenario: Scenario,
    tool: str,
    workdir: Path,
    target: LocatedTarget | None,
    settings: RunSettings | None = None,
    unsampled_reason: str = "no local target process to sample",
    thresholds: Sequence[ThresholdSpec] = (),
) -> LoadTestResult:
    """Run ``scenario`` with ``tool``, judge ``thresholds`` and save ``workdir/result.json``;
    never loses a result."""
    settings = settings or RunSettings()
    adapter = check_supports(tool, scenario)
    # The tool runs with cwd=workdir: a relative path in its argv would be taken from there.
    workdir = workdir.resolve()
    samplers: dict[str, Sampler] = {}
    generator: list[ProcessTreeSampler] = []

    def watch_generator(pid: int) -> None:
        sampler = generator_sampler(pid, settings.sample_interval, t0=t0)
        generator.append(sampler)
        samplers["generator"] = sampler
        sampler.start()

    with ExitStack() as cleanup:
        # The tool's configs with real secrets go as soon as it is done, whatever happened:
        # a prepare failing half-way, an interruption, the tool killed.
        cleanup.enter_context(private_dirs_removed())
        # A database's pool monitor connects before anything starts (one line if it cannot).
        monitor = _open_monitor(adapter, scenario, workdir, settings.sample_interval)
        if monitor is not None:
            cleanup.callback(monitor.close)
            scenario = scenario.model_copy(update={"pool": monitor.in_front()})
        invocation = _prepare(adapter, scenario, workdir)
        # The timeline starts when the tool is about to: samplers and monitor share it.
        t0 = time.monotonic()
        if target is not None:
            samplers["target"] = target.sampler(settings.sample_interval, t0)
            samplers["target"].start()
        if monitor is not None:
            monitor.t0 = t0
            monitor.start()
        sink = settings.sink
        if settings.progress:
            progress = Progress(
                scenario.name,
                scenario.shape.total_duration,
                rss=lambda: _latest_rss(samplers.get("target")),
                rate_unit={"ws": "msg/s", "postgres": "tx/s"}.get(scenario.protocol, "req/s"),
            )
            sink = cleanup.enter_context(progress).feed
        try:
            run = process.run_tool(
                invocation.argv,
                timeout=invocation.timeout,
                log_path=workdir / "tool.log",
                env={**os.environ, **invocation.env},
                cwd=workdir,
                sink=sink,
                on_start=watch_generator,
            )
        finally:
            for sampler in samplers.values():
                sampler.stop()
            if monitor is not None:
                monitor.stop()
    result = _parse(adapter, scenario, invocation, run)
    result = _attach_usage(
        result, target, samplers.get("target"), generator, invocation, unsampled_reason
    )
    if monitor is not None:
        result = _attach_pool(result, monitor)
    run_wide = [t for t in thresholds if t.metric == "errorRate" and t.endpoint is None]
    error_sla = min((t.limit for t in run_wide), default=None)
    result = attach_findings(result, scenario, error_sla)
    result = result.model_copy(update={"thresholds": evaluate(result, thresholds, scenario)})
    path = workdir / RESULT_FILE
    try:
        save_result(result, path)
    except OSError as exc:
        raise ResultNotSavedError(result, Unwritten.of(path, exc)) from exc
    return result


class ResultNotSavedError(NotWrittenError):
    """The run was measured but its result.json could not be written; the result is here."""

    def __init__(self, result: LoadTestResult, unwritten: Unwritten) -> None:
        super().__init__([unwritten], unwritten.path.parent)
        self.result = result


def _make_workdir(adapter: Engine, workdir: Path) -> None:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        unwritten = describe_unwritten([Unwritten.of(workdir, exc)], workdir)
        raise ReportError(f"cannot prepare {adapter.NAME}: {unwritten}") from exc


def _prepare(adapter: Engine, scenario: Scenario, workdir: Path) -> Invocation:
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        return adapter.prepare(scenario, workdir)
    except OSError as exc:
        # A full or read-only disk before the load: nothing measured, nothing started.
        where = Path(exc.filename) if exc.filename else workdir
        unwritten = describe_unwritten([Unwritten.of(where, exc)], workdir)
        raise ReportError(f"cannot prepare {adapter.NAME}: {unwritten}") from exc


def _open_monitor(
    adapter: Engine, scenario: Scenario, workdir: Path, interval: float
) -> PoolMonitor | None:
    """The pool monitor of a database scenario, connected; TargetError when it cannot."""
    if scenario.protocol != "postgres":
        return None
    _make_workdir(adapter, workdir)
    # psycopg is imported only by runs that need it.
    from orchestrator.pool_monitor import open_pool_monitor

    journal = workdir / POOL_SAMPLES
    journal.unlink(missing_ok=True)
    return open_pool_monitor(scenario.base_url, interval=interval, journal=journal)


def _attach_pool(result: LoadTestResult, monitor: PoolMonitor) -> LoadTestResult:
    pool = monitor.metrics()
    update: dict[str, object] = {"pool": pool}
    if result.database_limit is not None:
        update["database_limit"] = with_pool(result.database_limit, pool)
    return result.model_copy(update=update)


def _latest_rss(sampler: Sampler | None) -> int | None:
    series = sampler.series if sampler is not None else []
    return series[-1].rss_bytes if series else None


def _parse(
    adapter: Engine, scenario: Scenario, invocation: Invocation, run: ToolRun
) -> LoadTestResult:
    try:
        result = adapter.parse(scenario, invocation, run)
    except ParseError as exc:
        # Not logged as an error: the status line of the run says it (workflow.run_scenarios).
        LOG.info("%s", exc)
        return build.unreadable(scenario, invocation.tool, run, invocation.output_path, str(exc))
    except Exception as exc:
        # A parser bug must not lose the run: the raw output stays, the result says why.
        LOG.exception("could not read %s", invocation.output_path)
        why = f"internal error reading the output ({type(exc).__name__}: {exc})"
        return build.unreadable(scenario, invocation.tool, run, invocation.output_path, why)
    if run.interrupted:
        # Said here, not by each parser: only the run knows which signal stopped it.
        detail = f"stopped by {interrupts.describe()}; the result holds what was measured"
        result = result.model_copy(update={"status": Status.INTERRUPTED, "status_detail": detail})
    return result


def _attach_usage(
    result: LoadTestResult,
    located: LocatedTarget | None,
    target: Sampler | None,
    generator: list[ProcessTreeSampler],
    invocation: Invocation,
    unsampled_reason: str,
) -> LoadTestResult:
    update: dict[str, object] = {}
    missing = dict(result.missing)
    if target is not None:
        usage = target.usage()
        if usage.cpu_percent_mean is not None:
            capacity = usage.cpu_limit_percent or 100.0 * (os.cpu_count() or 1)
            usage = usage.model_copy(
                update={"cpu_utilization_mean": 100.0 * usage.cpu_percent_mean / capacity}
            )
        update["resource_usage"] = usage
        if usage.target_exit is not None and result.status is Status.COMPLETED:
            update["status"] = Status.TARGET_FAILED
            update["status_detail"] = describe_exit(located, usage.target_exit)
    else:
        missing["resourceUsage"] = unsampled_reason
    if generator:
        gen = generator_usage(generator[0], invocation.cpu_capacity_percent)
        update["generator"] = gen
        update["generator_saturated"] = gen.saturated
    update["missing"] = missing
    return result.model_copy(update=update)


def describe_exit(located: LocatedTarget | None, gone: TargetExit) -> str:
    """How the target went away. A process we did not start is not our child: its exit
    code cannot be known, so none is given; for one we started (or a container) it is."""
    if located is not None and located.container is not None:
        who, verb = f"the target (container {located.container})", "stopped"
    elif located is not None and located.pid is not None:
        who, verb = f"the target (pid {located.pid})", "exited"
    else:
        who, verb = "the target", "exited"
    when = f"{gone.t:.1f} s into the run"
    code = gone.exit_code
    if code is None:
        return f"{who} {verb} {when}"
    if code < 0:
        return f"{who} was killed by {process.signal_name(-code)} {when}"
    return f"{who} {verb} {when} with exit code {code}"


def save_result(result: LoadTestResult, path: Path) -> Path:
    """Write atomically, so a reader never sees half a result (OSError when it cannot)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, result.to_json())
