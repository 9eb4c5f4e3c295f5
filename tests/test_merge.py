"""orchestrate merge: raw k6 outputs (exactly, per second too), result files of runs made
side by side (histograms merged, per-second percentiles left out with the reason), and
results without histograms (refused, or labelled ranges with --approximate)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from k6_raw import ms, read_samples

from orchestrator import histogram as hdr
from orchestrator.cli import main
from orchestrator.engines.k6 import output as k6_output
from orchestrator.errors import ConfigError
from orchestrator.execute import RunSettings, run_scenario
from orchestrator.merge import NO_SECOND_PERCENTILES, merge_files, merge_results
from orchestrator.models import LoadTestResult, Status
from orchestrator.scenarios import Endpoint, LoadShape, Scenario
from orchestrator.sla import parse_threshold

FIXTURES = Path(__file__).parent / "fixtures" / "k6"
RAW = [FIXTURES / "http_ok.json.gz", FIXTURES / "http_500.json.gz"]


def test_raw_outputs_merge_exactly() -> None:
    [merged] = merge_files(RAW, name="two-machines")
    parts = [k6_output.import_raw(p) for p in RAW]
    assert merged.scenario == "two-machines"
    assert merged.total_requests == sum(p.total_requests or 0 for p in parts)
    assert merged.failed_requests == sum(p.failed_requests or 0 for p in parts)
    assert merged.status_codes == {
        code: sum(p.status_codes.get(code, 0) for p in parts)
        for code in {c for p in parts for c in p.status_codes}
    }
    samples = read_samples(RAW)
    for key, pct in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert getattr(merged.response_time, key) == ms(samples.overall, pct)
    assert [s.total_requests for s in merged.shards] == [p.total_requests for p in parts]
    assert [s.host for s in merged.shards] == [str(p) for p in RAW]


def test_merge_cli_writes_a_report(tmp_path: Path) -> None:
    code = main(["merge", *map(str, RAW), "--report-dir", str(tmp_path)])
    assert code == 0  # one input is all HTTP 500s, the other all 200s: the merge succeeded
    [run_dir] = [p for p in tmp_path.iterdir() if p.name != "latest"]
    assert (run_dir / "summary.json").is_file() and (run_dir / "merged" / "result.json").is_file()


def test_mixed_or_missing_inputs_are_usage_errors(tmp_path: Path) -> None:
    result = k6_output.import_raw(RAW[0])
    path = tmp_path / "result.json"
    path.write_text(result.to_json())
    assert main(["merge", str(RAW[0]), str(path), "--report-dir", str(tmp_path)]) == 2
    assert main(["merge", str(tmp_path / "nope.json"), "--report-dir", str(tmp_path)]) == 2


def summary_results() -> list[tuple[str, LoadTestResult]]:
    """Results with no histogram: k6 summary exports of real runs (tool percentiles only)."""
    files = [FIXTURES / "http_ok.summary.json", FIXTURES / "default_stats.summary.json"]
    return [
        (str(f), k6_output.import_summary(f).model_copy(update={"scenario": "same"})) for f in files
    ]


def test_results_without_histograms_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"no latency histogram.*--approximate"):
        merge_results(summary_results())


def test_approximate_gives_labelled_ranges() -> None:
    inputs = summary_results()
    merged = merge_results(inputs, approximate=True)
    rt = merged.response_time
    assert rt.source == "approximate"
    p95s = [r.response_time.p95 for _, r in inputs]
    assert None not in p95s
    low, high = min(p95s), max(p95s)  # type: ignore[type-var]
    assert rt.p95 == high
    note = merged.missing["responseTime.p95"]
    assert note.startswith("approximate") and f"{low:g}" in note and f"{high:g}" in note
    assert rt.stdev is None and "responseTime.stdev" in merged.missing
    assert merged.histogram is None
    assert merged.total_requests == sum(r.total_requests or 0 for _, r in inputs)


def test_approximate_cli_on_result_files(tmp_path: Path) -> None:
    files = []
    for i, (_, result) in enumerate(summary_results()):
        path = tmp_path / f"machine-{i}" / "result.json"
        path.parent.mkdir()
        path.write_text(result.to_json())
        files.append(str(path))
    assert main(["merge", *files, "--report-dir", str(tmp_path / "r")]) == 2
    assert main(["merge", *files, "--approximate", "--report-dir", str(tmp_path / "r")]) == 0


def test_different_tools_do_not_merge() -> None:
    (label, one), (other_label, two) = summary_results()
    with pytest.raises(ConfigError, match="different tools"):
        merge_results([(label, one), (other_label, two.model_copy(update={"tool": "artillery"}))])


@pytest.mark.load
def test_result_files_of_two_machines_side_by_side(reference_target: Any, tmp_path: Path) -> None:
    """Two k6 runs at once (two 'machines'), each with its result.json: merged like one."""
    scenario = Scenario(
        name="side-by-side",
        base_url=reference_target.url,
        endpoints=[Endpoint(name="health", path="/health")],
        shape=LoadShape.constant(3, 3),
    )
    gate = [parse_threshold("p95 < 10s"), parse_threshold("errorRate < 1%")]
    results: dict[int, LoadTestResult] = {}

    def machine(index: int) -> None:
        workdir = tmp_path / f"machine-{index}"
        settings = RunSettings(sink=None)
        results[index] = run_scenario(scenario, "k6", workdir, None, settings, thresholds=gate)

    threads = [threading.Thread(target=machine, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = [tmp_path / f"machine-{i}" / "result.json" for i in range(2)]
    [merged] = merge_files(files)
    inputs = [results[0], results[1]]
    assert merged.status is Status.COMPLETED, merged.status_detail
    assert merged.total_requests == sum(r.total_requests or 0 for r in inputs)
    assert merged.concurrency == 6
    expected = hdr.merge(r.histogram or "" for r in inputs)
    assert merged.response_time.p95 == expected.get_value_at_percentile(95) / 1000
    raws = [Path(r.raw_output or "") for r in inputs]
    assert merged.response_time.p99 == ms(read_samples(raws).overall, 99)
    # Counts per wall-clock second add up; each second's percentiles are not invented.
    assert sum(b.requests for b in merged.time_series) == merged.total_requests
    assert all(b.p95 is None for b in merged.time_series)
    assert merged.missing["timeSeries.p50"] == NO_SECOND_PERCENTILES
    # The inputs' gates are judged again on the merged numbers.
    assert {(t.metric, t.passed) for t in merged.thresholds} == {
        ("p95", True),
        ("errorRate", True),
    }
    assert [t.measured for t in merged.thresholds if t.metric == "p95"] == [
        merged.response_time.p95
    ]
    # A summary.json of a report holds results too.
    report = tmp_path / "report"
    assert main(["merge", *map(str, files), "--report-dir", str(report)]) == 0
    summary = next(report.glob("2*/summary.json"))
    shutil.copy(summary, tmp_path / "summary.json")
    [again] = merge_files([tmp_path / "summary.json"])
    assert again.total_requests == merged.total_requests
