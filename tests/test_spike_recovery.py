"""Spike recovery and the capacity plot on real runs: real autocannon and Artillery against
the reference target.

- A short spike (2 users for 4 s, 20 users for 4 s, back to 2 for 6 s) against a target
  answering in 20 ms: recovery is judged from the exact merge of per-second histograms,
  and the numbers are the ones a merge of those histograms gives.
- The same spike against a target killed at the top of the spike: not recovered.
- A spike of 2 s phases: "too short to judge" with the phase lengths, no number.
- A WebSocket spike on Artillery gets a recovery measurement.
- A stepped run's report.html shows capacity against concurrency with the USL fit.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import RunningTarget

from orchestrator import histogram as hdr
from orchestrator.conclusions.capacity import build_capacity_report
from orchestrator.execute import RunSettings, run_scenario
from orchestrator.models import LoadTestResult, Status, TimeBucket
from orchestrator.recovery import spike_phases
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage, WsFlow, WsMessage
from orchestrator.targets import LocatedTarget
from reports.writer import write_report

PATH = "/api/textbooks/hierarchy"
SERVICE_MS = 20

pytestmark = pytest.mark.load


def spike(base: float, peak: float, back: float, low: int = 2, high: int = 20) -> LoadShape:
    """``base`` s at ``low``, a jump to ``high`` held ``peak`` s, a jump back held ``back`` s."""
    return LoadShape(
        start=low,
        stages=[
            Stage(duration=base, target=low),
            Stage(duration=0.1, target=high),
            Stage(duration=peak, target=high),
            Stage(duration=0.1, target=low),
            Stage(duration=back, target=low),
        ],
    )


def http_scenario(target: RunningTarget, name: str, shape: LoadShape) -> Scenario:
    return Scenario(name=name, base_url=target.url, endpoints=[Endpoint(path=PATH)], shape=shape)


def run(target: RunningTarget, scenario: Scenario, workdir: Path) -> LoadTestResult:
    located = LocatedTarget("reference target", pid=target.pid, popen=target.process)
    settings = RunSettings(sample_interval=0.25, sink=None)
    return run_scenario(scenario, "autocannon", workdir, located, settings)


def merged_p95(buckets: list[TimeBucket]) -> float:
    encoded = [b.histogram for b in buckets if b.histogram]
    return float(hdr.merge(encoded).get_value_at_percentile(95.0)) / 1000.0


def test_spike_recovery_from_per_second_histograms(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--latency-ms", str(SERVICE_MS))
    result = run(target, http_scenario(target, "spike", spike(4, 4, 6)), tmp_path)
    recovery = result.recovery
    assert recovery is not None, result.missing
    print(f"\nrecovery: {recovery}")
    assert recovery.method == "histograms"
    assert all(b.histogram for b in result.time_series if b.p95 is not None)
    # The baseline's p95 is the merge of its whole seconds (the first one left out) and no
    # less than the service time.
    ramp = next(s.start for s in result.steps if s.concurrency > 2)
    baseline = [b for b in result.time_series if b.t >= 1 and b.t + 1 <= ramp]
    assert len(baseline) >= 2
    assert recovery.baseline_p95 == pytest.approx(merged_p95(baseline))
    assert recovery.baseline_p95 is not None and recovery.baseline_p95 >= SERVICE_MS
    assert recovery.spike_p95 is not None and recovery.spike_p95 >= SERVICE_MS
    assert recovery.baseline_seconds is not None and recovery.baseline_seconds >= 3
    assert recovery.spike_seconds is not None and recovery.spike_seconds >= 3
    assert recovery.recovery_seconds is not None and recovery.recovery_seconds >= 5
    # Back at 2 users a target that only sleeps 20 ms is itself again: recovered, and
    # within the recovery window (at the latest its last 3 s window).
    assert recovery.recovered is True
    assert recovery.seconds_to_recover is not None
    assert 0 <= recovery.seconds_to_recover <= recovery.recovery_seconds - 3 + 1
    assert recovery.recovery_error_rate == 0.0


def test_a_target_that_dies_in_the_spike_does_not_recover(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--latency-ms", str(SERVICE_MS))
    # Killed 6 s in (the middle of the spike): every request after it is refused.
    killer = threading.Timer(6.0, target.process.kill)
    killer.start()
    try:
        result = run(target, http_scenario(target, "spike", spike(4, 4, 6)), tmp_path)
    finally:
        killer.cancel()
    recovery = result.recovery
    assert recovery is not None, result.missing
    print(f"\nrecovery: {recovery}")
    assert recovery.method == "histograms"
    assert recovery.recovered is False and recovery.seconds_to_recover is None
    assert recovery.recovery_error_rate is not None and recovery.recovery_error_rate > 50


def test_a_spike_too_short_to_judge_says_so(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--latency-ms", str(SERVICE_MS))
    result = run(target, http_scenario(target, "spike", spike(2, 2, 3)), tmp_path)
    assert result.recovery is None
    why = result.missing["recovery"]
    print(f"\nmissing.recovery: {why}")
    match = re.fullmatch(
        r"too short to judge: baseline ([\d.]+) s, spike ([\d.]+) s, recovery window "
        r"([\d.]+) s \(each needs at least 3 s\)",
        why,
    )
    assert match is not None, why
    baseline, peak, back = (float(g) for g in match.groups())
    assert baseline == pytest.approx(2.0, abs=0.5)
    assert peak == pytest.approx(2.1, abs=0.5)
    assert back == pytest.approx(3.0, abs=0.5)


def test_a_websocket_spike_on_artillery_gets_a_recovery(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory()
    shape = spike(4, 4, 6, low=2, high=10)
    assert spike_phases(shape) is not None
    scenario = Scenario(
        name="ws-spike",
        protocol="ws",
        base_url=target.url,
        shape=shape,
        ws=WsFlow(messages=[WsMessage(payload='{"type":"ping"}', think=0.05)]),
        timeout=2,
    )
    result = run_scenario(
        scenario, "artillery", tmp_path, None, RunSettings(sink=None), "not asked to sample"
    )
    assert result.status is Status.COMPLETED, result.status_detail
    recovery = result.recovery
    assert recovery is not None, result.missing
    print(f"\nrecovery: {recovery}")
    assert recovery.method == "histograms"
    assert recovery.baseline_p95 is not None and recovery.baseline_p95 > 0
    assert recovery.recovered is (recovery.seconds_to_recover is not None)


def test_a_stepped_runs_report_has_the_capacity_plot(
    target_factory: Callable[..., RunningTarget], node_tools: Path, tmp_path: Path
) -> None:
    target = target_factory("--max-in-flight", "4", "--latency-ms", "50")
    levels = [1, 2, 4, 6, 8]
    stages = [Stage(duration=1.5, target=levels[0])]
    for level in levels[1:]:
        stages += [Stage(duration=0.1, target=level), Stage(duration=1.5, target=level)]
    shape = LoadShape(start=levels[0], stages=stages)
    scenario = http_scenario(target, "stress", shape)
    result = run(target, scenario, tmp_path / "run")
    report = build_capacity_report([result], {"stress": scenario})
    analysis = report.scenarios[0]
    assert [h.concurrency for h in analysis.holds] == levels
    print(f"\nusl: {analysis.usl}\nknee: {analysis.knee}")
    capacity = report.model_dump(mode="json", by_alias=True)
    write_report(tmp_path / "report", "stepped", [result], exit_code=0, capacity=capacity)
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    figure = re.search(
        r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="Capacity against '
        r'concurrency: held levels, USL fit \(estimate\), knee and SLA">',
        page,
    )
    assert figure is not None
    svgs = sorted(p.name for p in (tmp_path / "report" / "plots").glob("*.svg"))
    assert any(name.endswith("-usl.svg") for name in svgs), svgs
