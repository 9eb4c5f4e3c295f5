"""`compare`: a regression is past its tolerance and outside the run-to-run noise."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.api import load_test
from orchestrator.compare import DEFAULT_RULES, compare_runs, judge, render_markdown

P95 = DEFAULT_RULES["p95"]
THROUGHPUT = DEFAULT_RULES["throughput"]


def noisy(level: float, spread: float, n: int = 20, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.uniform(-spread, spread) for _ in range(n)]


def test_a_change_within_tolerance_is_the_same() -> None:
    verdict, change, how = judge(P95, 10.0, 11.0, noisy(10, 1), noisy(11, 1, seed=2))
    assert (verdict, how) == ("same", "within tolerance")
    assert change == pytest.approx(10.0)


def test_a_shift_past_tolerance_and_noise_is_a_regression() -> None:
    verdict, change, how = judge(P95, 10.0, 30.0, noisy(10, 1), noisy(30, 1, seed=2))
    assert verdict == "regression"
    assert change == pytest.approx(200.0)
    assert "Mann-Whitney" in how


def test_a_difference_inside_the_spread_is_not_a_regression() -> None:
    # Both runs swing between 5 and 35 ms each second: 20 vs 26 ms is noise.
    base, new = noisy(20, 15, seed=3), noisy(20, 15, seed=4)
    verdict, _, how = judge(P95, 20.0, 26.0, base, new)
    assert verdict == "same"
    assert "noise" in how


def test_lower_throughput_is_worse_and_higher_is_an_improvement() -> None:
    assert judge(THROUGHPUT, 1000.0, 700.0, noisy(1000, 20), noisy(700, 20))[0] == "regression"
    assert judge(THROUGHPUT, 1000.0, 1300.0, noisy(1000, 20), noisy(1300, 20))[0] == ("improvement")


def test_too_few_seconds_leaves_the_tolerance_to_decide_and_says_so() -> None:
    verdict, _, how = judge(P95, 10.0, 30.0, [10.0], [30.0])
    assert verdict == "regression"
    assert "too few seconds" in how


def test_a_metric_missing_in_one_run_is_not_comparable() -> None:
    assert judge(P95, None, 12.0)[0] == "not comparable"


def run_once(url: str, report_root: Path, name: str) -> Path:
    load_test(
        f"{url}/api/textbooks/hierarchy",
        connections=8,
        duration=6,
        name="hierarchy",
        report_dir=report_root / name,
    )
    return (report_root / name / "latest").resolve()


@pytest.mark.load
def test_unchanged_target_passes_and_injected_latency_is_named(
    target_factory: Callable[..., Any], node_tools: Path, tmp_path: Path
) -> None:
    # A service whose time is its own (50 ms asleep per request), not the shared CPU's: two
    # runs of it must compare as the same even on a busy machine.
    plain = target_factory("--latency-ms", "50")
    first = run_once(plain.url, tmp_path, "a")
    second = run_once(plain.url, tmp_path, "b")
    same = compare_runs(first, second)
    assert same.regressions == [], render_markdown(same)

    slow = target_factory("--latency-ms", "150")
    third = run_once(slow.url, tmp_path, "c")
    worse = compare_runs(first, third)
    regressed = {(c.scenario, c.metric) for c in worse.regressions}
    assert {("hierarchy", "p50"), ("hierarchy", "p95")} <= regressed, render_markdown(worse)
    text = render_markdown(worse)
    assert "regression(s)" in text and "hierarchy" in text
    # The command: exit 1, each regression named on stderr, the Markdown on stdout.
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "compare", str(first), str(third)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "regression: hierarchy: p95" in done.stderr
    assert done.stdout.startswith("## orchestrate compare: **")


TWO_ENDPOINTS = """\
target: {{base_url: "{url}"}}
login: null
endpoints:
  hierarchy: {{method: GET, path: /api/textbooks/hierarchy}}
  health: {{method: GET, path: /health}}
scenarios:
  browse: {{endpoints: [hierarchy, health], users: 4, hold: 6}}
suites:
  two: {{scenarios: [browse], thresholds: []}}
"""


def suite_run(url: str, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orchestrate.yaml").write_text(TWO_ENDPOINTS.format(url=url))
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "suite", "two", "-q", *extra],
        cwd=folder, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.load
def test_a_slower_endpoint_is_named_and_fails_the_run_against_its_baseline(
    target_factory: Callable[..., Any], node_tools: Path, tmp_path: Path
) -> None:
    # Latency is injected into the API routes only: /health stays as it was.
    base = suite_run(target_factory("--latency-ms", "20").url, tmp_path / "base")
    assert base.returncode == 0, base.stderr
    baseline = (tmp_path / "base" / "load-reports" / "latest").resolve()
    slow = target_factory("--latency-ms", "60")
    new = suite_run(slow.url, tmp_path / "new", "--baseline", str(baseline))
    assert new.returncode == 1, new.stdout + new.stderr
    assert "regression against" in new.stderr
    assert "browse hierarchy: p95" in new.stderr  # the scenario and the endpoint
    assert "browse health: p95" not in new.stderr
