"""Tree sampler and generator saturation on real child processes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest

from orchestrator.models import ResourceSample
from orchestrator.samplers import (
    ProcessTreeSampler,
    generator_sampler,
    generator_usage,
    is_saturated,
    summarise_samples,
    usable_cpu_percent,
)

BUSY_LOOP = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
# Both say "ready" once Python has started, so start-up CPU is not in the measurement.
BUSY = "print('ready', flush=True)\n" + BUSY_LOOP
IDLE = "import time; print('ready', flush=True); time.sleep(30)"
# Grows ~4 MB every 50 ms (b"x" * n really touches the pages) and runs a busy child.
GROWER = f"""
import subprocess, sys, time
busy = subprocess.Popen([sys.executable, "-c", {BUSY_LOOP!r}])
print("ready", flush=True)
blocks = []
try:
    for _ in range(100):
        blocks.append(b"x" * 4_000_000)
        time.sleep(0.05)
finally:
    busy.kill()
"""


@contextmanager
def python_child(code: str, wait_line: bool = True) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        if wait_line:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def tree_cpu_seconds(tree: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in tree)


def sample_for(sampler: ProcessTreeSampler, seconds: float) -> None:
    sampler.start()
    time.sleep(seconds)
    sampler.stop()


def test_tree_sampler_sums_the_tree_and_sees_growth() -> None:
    with python_child(GROWER) as proc:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children()]
        cpu_before = tree_cpu_seconds(tree)
        sampler = ProcessTreeSampler(proc.pid, 0.1)
        sample_for(sampler, 1.5)
        cpu_used = tree_cpu_seconds(tree) - cpu_before
    usage = sampler.usage()
    assert usage.source == "psutil"
    assert usage.pid == proc.pid
    assert usage.process_name is not None
    assert usage.process_name.startswith("python")
    assert usage.memory_start is not None
    assert usage.memory_end is not None
    assert usage.memory_peak is not None
    assert usage.memory_delta == usage.memory_end - usage.memory_start
    assert usage.memory_delta > 30_000_000  # ~1.5 s at 80 MB/s
    assert usage.memory_peak >= usage.memory_end
    assert max(s.processes or 0 for s in usage.series) == 2
    assert usage.cpu_percent_max is not None
    # The busy child uses most of a core when it gets one; on a loaded machine it gets
    # less, so compare with its CPU time read independently rather than with a constant.
    assert usage.cpu_percent_max > 0.8 * (cpu_used / 1.5 * 100)
    # The time-weighted mean agrees with the tree's CPU time read independently.
    assert usage.cpu_percent_mean is not None
    sampled = usage.cpu_percent_mean / 100 * (usage.series[-1].t - usage.series[0].t)
    assert sampled == pytest.approx(cpu_used, rel=0.15, abs=0.03)
    assert usage.series[0].cpu_percent is None  # no delta yet at the first sample
    assert all(s.threads and s.fds for s in usage.series)
    assert usage.target_exit is None


def test_ten_hertz_for_one_second_gives_about_ten_samples() -> None:
    with python_child(IDLE) as proc:
        t0 = time.monotonic()
        sampler = ProcessTreeSampler(proc.pid, 0.1, t0=t0)
        sample_for(sampler, 1.0)
    series = sampler.usage().series
    assert 9 <= len(series) <= 13
    times = [s.t for s in series]
    assert times == sorted(times)
    assert times[0] < 0.05  # taken at start(), measured from our t0
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the stop sample is extra
    assert max(gaps) < 0.3
    assert sampler.usage().interval == 0.1
    # An idle process: measured, near zero, never None after the first sample.
    cpu = [s.cpu_percent for s in series[1:-1]]
    assert all(c is not None and c < 20 for c in cpu)


@pytest.mark.parametrize("give_popen", [True, False])
def test_target_that_exits_mid_run_is_recorded(give_popen: bool) -> None:
    with python_child("import sys, time; time.sleep(0.5); sys.exit(3)", wait_line=False) as proc:
        t0 = time.monotonic()
        sampler = ProcessTreeSampler(proc.pid, 0.1, t0=t0, popen=proc if give_popen else None)
        sample_for(sampler, 1.2)
        usage = sampler.usage()
    assert usage.target_exit is not None
    assert 0.4 < usage.target_exit.t < 0.9
    assert usage.target_exit.exit_code == (3 if give_popen else None)
    assert usage.series  # what was measured before the exit stays
    assert usage.series[-1].t < usage.target_exit.t


def test_sampler_of_a_missing_process_does_not_raise() -> None:
    with python_child("pass", wait_line=False) as proc:
        proc.wait()
    sampler = ProcessTreeSampler(proc.pid, 0.1)
    sample_for(sampler, 0.2)
    usage = sampler.usage()
    assert usage.target_exit is not None
    assert usage.series == []
    assert usage.memory_start is None


def test_generator_saturation_busy_versus_idle() -> None:
    results = {}
    for name, code in (("busy", BUSY), ("idle", IDLE)):
        with python_child(code) as proc:
            sampler = generator_sampler(proc.pid, 0.1)
            sample_for(sampler, 1.5)
        results[name] = generator_usage(sampler, 100.0)
    assert results["busy"].saturated is True
    assert results["busy"].cpu_percent_max is not None
    assert results["busy"].cpu_percent_max > 30  # less than 100 when the machine is busy
    assert results["idle"].saturated is False
    assert results["idle"].cpu_percent_max is not None
    assert results["idle"].cpu_percent_max < 20
    assert results["idle"].cpu_capacity_percent == 100.0


def test_a_starved_generator_is_saturated() -> None:
    """Two busy loops pinned to one core: each gets about half, but wants all of it."""
    core = min(os.sched_getaffinity(0))
    pin = f"import os; os.sched_setaffinity(0, {{{core}}})\n"
    with python_child(pin + BUSY) as rival, python_child(pin + BUSY) as tool:
        sampler = generator_sampler(tool.pid, 0.1)
        sample_for(sampler, 1.5)
        assert rival.poll() is None
    usage = generator_usage(sampler, 100.0)
    assert usage.cpu_percent_mean is not None
    assert usage.cpu_percent_mean < 75  # CPU alone would not call this saturated
    assert sampler.waiting is not None
    assert max(sampler.waiting.values()) > 25  # it waited for the core instead
    assert usage.saturated is True


def test_capacity_is_capped_by_usable_cores() -> None:
    with python_child(IDLE) as proc:
        sampler = ProcessTreeSampler(proc.pid, 0.1)
        sample_for(sampler, 0.3)
    usage = generator_usage(sampler, 10_000.0)
    assert usage.cpu_capacity_percent == usable_cpu_percent()
    assert usage.cpu_capacity_percent == 100.0 * len(os.sched_getaffinity(0))


def test_one_noisy_sample_does_not_saturate() -> None:
    assert not is_saturated([10, 10, 250, 10, 10], interval=1.0, capacity=100)
    # Two of three consecutive samples at the limit: sustained.
    assert is_saturated([20, 95, 20, 95, 96], interval=1.0, capacity=100)
    # At 10 Hz the window is ten samples (one second).
    assert not is_saturated([100.0] * 4 + [0.0] * 6, interval=0.1, capacity=100)
    assert is_saturated([0.0] * 3 + [100.0] * 6 + [0.0] * 3, interval=0.1, capacity=100)
    assert is_saturated([99], interval=1.0, capacity=100)  # all we have decides
    assert not is_saturated([], interval=1.0, capacity=100)


def test_summary_weights_cpu_by_window() -> None:
    series = [
        ResourceSample(t=0.0, rss_bytes=100, cpu_percent=None),
        ResourceSample(t=1.0, rss_bytes=300, cpu_percent=100.0),
        ResourceSample(t=2.0, rss_bytes=200, cpu_percent=50.0),
        ResourceSample(t=2.1, rss_bytes=200, cpu_percent=0.0),
    ]
    summary = summarise_samples(series)
    assert summary["memory_start"] == 100
    assert summary["memory_end"] == 200
    assert summary["memory_delta"] == 100
    assert summary["memory_peak"] == 300
    assert summary["cpu_percent_max"] == 100.0
    assert summary["cpu_percent_mean"] == pytest.approx(150 / 2.1)
