"""Execute one planned scenario with one engine: prepare, sample, run, parse, attach, save.

The result file is written whatever happens after the tool started: a failed parse
becomes a ``tool_failed`` result that points at the raw output, Ctrl-C (or SIGTERM,
SIGHUP: :mod:`orchestrator.interrupts`) an ``interrupted`` result with what was measured.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from orchestrator import interrupts, process
from orchestrator.analysis import attach_findings
from orchestrator.engines import check_supports
from orchestrator.engines.base import Engine, Invocation
from orchestrator.errors import ParseError
from orchestrator.models import LoadTestResult, Status
from orchestrator.process import OutputSink, ToolRun
from orchestrator.progress import Progress
from orchestrator.samplers import ProcessTreeSampler, Sampler, generator_sampler, generator_usage
from orchestrator.scenarios import Scenario
from orchestrator.sla import ThresholdSpec, evaluate
from orchestrator.targets import LocatedTarget
from parsers import build

LOG = logging.getLogger(__name__)

RESULT_FILE = "result.json"


@dataclass
class RunSettings:
    sample_interval: float = 1.0
    sink: OutputSink | None = process.write_to_stderr
    # Show a progress line (live figures) instead of the tool's raw output.
    progress: bool = False


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
    workdir.mkdir(parents=True, exist_ok=True)
    invocation = adapter.prepare(scenario, workdir)
    t0 = time.monotonic()
    samplers: dict[str, Sampler] = {}
    generator: list[ProcessTreeSampler] = []

    def watch_generator(pid: int) -> None:
        sampler = generator_sampler(pid, settings.sample_interval, t0=t0)
        generator.append(sampler)
        samplers["generator"] = sampler
        sampler.start()

    with ExitStack() as cleanup:
        cleanup.callback(_remove_private, invocation)
        if target is not None:
            samplers["target"] = target.sampler(settings.sample_interval, t0)
            samplers["target"].start()
        sink = settings.sink
        if settings.progress:
            progress = Progress(
                scenario.name,
                scenario.shape.total_duration,
                rss=lambda: _latest_rss(samplers.get("target")),
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
    result = _parse(adapter, scenario, invocation, run)
    result = _attach_usage(result, samplers.get("target"), generator, invocation, unsampled_reason)
    run_wide = [t for t in thresholds if t.metric == "errorRate" and t.endpoint is None]
    error_sla = min((t.limit for t in run_wide), default=None)
    result = attach_findings(result, scenario, error_sla)
    result = result.model_copy(update={"thresholds": evaluate(result, thresholds, scenario)})
    save_result(result, workdir / RESULT_FILE)
    return result


def _latest_rss(sampler: Sampler | None) -> int | None:
    series = sampler.series if sampler is not None else []
    return series[-1].rss_bytes if series else None


def _parse(
    adapter: Engine, scenario: Scenario, invocation: Invocation, run: ToolRun
) -> LoadTestResult:
    try:
        result = adapter.parse(scenario, invocation, run)
    except ParseError as exc:
        LOG.error("%s", exc)  # noqa: TRY400 - one line, not a traceback
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
    target: Sampler | None,
    generator: list[ProcessTreeSampler],
    invocation: Invocation,
    unsampled_reason: str,
) -> LoadTestResult:
    update: dict[str, object] = {}
    missing = dict(result.missing)
    if target is not None:
        usage = target.usage()
        update["resource_usage"] = usage
        if usage.target_exit is not None and result.status is Status.COMPLETED:
            update["status"] = Status.TARGET_FAILED
            update["status_detail"] = (
                f"the target exited {usage.target_exit.t:.1f} s into the run "
                f"(exit code {usage.target_exit.exit_code})"
            )
    else:
        missing["resourceUsage"] = unsampled_reason
    if generator:
        gen = generator_usage(generator[0], invocation.cpu_capacity_percent)
        update["generator"] = gen
        update["generator_saturated"] = gen.saturated
    update["missing"] = missing
    return result.model_copy(update=update)


def save_result(result: LoadTestResult, path: Path) -> Path:
    """Write atomically, so a reader never sees half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(result.to_json(), encoding="utf-8")
    tmp.replace(path)
    return path


def _remove_private(invocation: Invocation) -> None:
    if invocation.private_dir is not None:
        shutil.rmtree(invocation.private_dir, ignore_errors=True)
