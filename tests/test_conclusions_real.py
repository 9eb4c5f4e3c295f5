"""The conclusions on real runs: real autocannon against the reference target's switches.

- At most 8 requests in service at 50 ms each (``--max-in-flight 8 --latency-ms 50``; the
  rest get a fast 503): the ceiling is 8 x 1000 / S, with S the service time as measured at
  the lowest level (the 50 ms sleep plus the server's and the client's own time), and the
  knee is at 8 users. 50 ms rather than 20 ms: on a busy 2-core machine the server's own
  CPU time per request (a few ms) swings with the other load: at 20 ms the ceiling measured
  75% to 94% of 8 x 1000 / S over five runs, at 50 ms 92% to 100% over five (load average
  5 to 8 on 2 cores). Each 2 s hold also loses a little to its start and its drain.
- A leak of 10 kB per request (``--leak-bytes-per-request``): the RSS slope is the leak times
  the request rate; without it, no leak, on two fresh targets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RunningTarget

from orchestrator.conclusions.capacity import build_capacity_report
from orchestrator.execute import RunSettings, run_scenario
from orchestrator.models import LoadTestResult
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage
from orchestrator.targets import LocatedTarget

SERVERS, SERVICE_MS = 8, 50
LEVELS = [2, 4, 8, 12, 16]
LEAK_BYTES = 10_000
PATH = "/api/textbooks/hierarchy"

pytestmark = pytest.mark.load


def _run(target: RunningTarget, name: str, shape: LoadShape, workdir: Path) -> LoadTestResult:
    scenario = Scenario(
        name=name, base_url=target.url, endpoints=[Endpoint(path=PATH)], shape=shape
    )
    located = LocatedTarget("reference target", pid=target.pid, popen=target.process)
    settings = RunSettings(sample_interval=0.25, sink=None)
    return run_scenario(scenario, "autocannon", workdir, located, settings)


def _stepped_shape() -> LoadShape:
    """2 s at each level; a 0.1 s stage between levels is the jump (one step, no climb)."""
    stages = [Stage(duration=2, target=LEVELS[0])]
    for level in LEVELS[1:]:
        stages += [Stage(duration=0.1, target=level), Stage(duration=2, target=level)]
    return LoadShape(start=LEVELS[0], stages=stages)


def test_stress_ceiling_and_knee_of_a_service_holding_8_requests(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--max-in-flight", str(SERVERS), "--latency-ms", str(SERVICE_MS))
    shape = _stepped_shape()
    result = _run(target, "stress", shape, tmp_path / "stress")
    scenario = Scenario(
        name="stress", base_url=target.url, endpoints=[Endpoint(path=PATH)], shape=shape
    )
    report = build_capacity_report([result], {"stress": scenario})
    analysis = report.scenarios[0]
    holds = analysis.holds
    assert [h.concurrency for h in holds] == LEVELS
    # Each step keeps its histogram, so holds of several steps merge exactly.
    assert all(s.histogram for s in result.steps if s.total_requests)
    unloaded_ms = holds[0].p50
    assert unloaded_ms is not None
    expected = SERVERS * 1000.0 / unloaded_ms
    assert analysis.ceiling is not None and analysis.ceiling.measured is not None
    print(  # the numbers behind the assertions, for the record (pytest -s)
        f"\nholds: {[(h.concurrency, round(h.goodput or 0), h.p95, h.error_rate) for h in holds]}"
        f"\nunloaded p50 {unloaded_ms} ms -> 8 x 1000 / S = {expected:.0f} req/s; "
        f"ceiling {analysis.ceiling.measured:.0f} req/s at {analysis.ceiling.measured_at}"
        f"\nknee: {analysis.knee}\nusl: {analysis.usl}"
        f"\nbottlenecks: {[(b.component, b.evidence) for b in report.bottlenecks]}"
    )
    assert analysis.ceiling.measured == pytest.approx(expected, rel=0.10)
    assert analysis.knee is not None and analysis.knee.found
    # Within one step of 8: the level below, 8 itself, or the level above.
    assert analysis.knee.concurrency in (4, 8, 12)
    users = report.capacity_limits.max_concurrent_users
    assert users.value in (4, 8, 12) and users.bound == "measured"


def _window_rate(result: LoadTestResult, start: float, end: float) -> float:
    """Successful requests per second over the whole seconds inside [start, end]."""
    inside = [b for b in result.time_series if b.t >= start and b.t + 1.0 <= end]
    assert inside, "no whole second inside the judged window"
    return sum(b.requests - b.errors for b in inside) / len(inside)


def test_a_steady_leak_is_a_leak_with_its_slope(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--latency-ms", "5", "--leak-bytes-per-request", str(LEAK_BYTES))
    shape = LoadShape.constant(4, 8.0)
    result = _run(target, "endurance", shape, tmp_path / "leak")
    scenario = Scenario(
        name="endurance", base_url=target.url, endpoints=[Endpoint(path=PATH)], shape=shape
    )
    report = build_capacity_report([result], {"endurance": scenario})
    leak = report.scenarios[0].leak
    assert leak is not None
    memory = leak.trends[0]
    injected = LEAK_BYTES * _window_rate(result, leak.window_start + leak.warmup, leak.window_end)
    injected_mb_min = injected * 60 / 1e6
    print(f"\n{leak.summary}\ninjected: {injected_mb_min:.1f} MB/min")
    assert leak.verdict == "leak" and leak.memory_leak is True
    assert report.memory_leak is True
    assert memory.slope == pytest.approx(injected_mb_min, rel=0.25)


@pytest.mark.parametrize("run", [1, 2])
def test_no_leak_without_the_switch(
    run: int, target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--latency-ms", "5")
    # 15 s: a fresh target's allocator still grows a little in its first seconds; over 8 s
    # the slope's interval was once wide enough (0.36 MB/min) to leave the verdict open.
    shape = LoadShape.constant(4, 15.0)
    result = _run(target, "endurance", shape, tmp_path / f"steady-{run}")
    scenario = Scenario(
        name="endurance", base_url=target.url, endpoints=[Endpoint(path=PATH)], shape=shape
    )
    leak = build_capacity_report([result], {"endurance": scenario}).scenarios[0].leak
    assert leak is not None
    print(f"\nrun {run}: {leak.summary}")
    assert leak.memory_leak is False
    assert leak.verdict == "no leak"
