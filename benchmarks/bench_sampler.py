"""Sampler overhead: CPU used by the sampling thread while it samples a ~10-process tree.

    .venv/bin/python benchmarks/bench_sampler.py [--seconds 5] [--processes 10]

Prints, for 10 Hz and 1 Hz (and 10 Hz with run-queue wait, as load tools are sampled),
the sampling thread's CPU time per wall second (as % of one core), the whole benchmark
process's CPU per second (the main thread only sleeps, so this bounds the thread's cost
from above), and the samples taken.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psutil

from orchestrator.samplers import ProcessTreeSampler

TREE = """
import subprocess, sys, time
kids = [subprocess.Popen(["sleep", "120"]) for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
time.sleep(120)
"""


def measure(pid: int, interval: float, seconds: float, waiting: bool = False) -> None:
    sampler = ProcessTreeSampler(pid, interval, track_waiting=waiting)
    before = os.times()
    wall = time.monotonic()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    wall = time.monotonic() - wall
    after = os.times()
    process_cpu = (after.user - before.user) + (after.system - before.system)
    series = sampler.usage().series
    print(
        f"{1 / interval:4.0f} Hz{' +wait' if waiting else '      '}: sampling thread "
        f"{100 * sampler.thread_cpu_seconds / wall:5.2f}% "
        f"of one core, whole process {100 * process_cpu / wall:5.2f}%, "
        f"{len(series)} samples in {wall:.1f} s, tree of {max(s.processes or 0 for s in series)}"
        f" processes, {1000 * sampler.thread_cpu_seconds / max(1, len(series) - 2):.2f} ms CPU "
        "per tick"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=10, help="tree size, root included")
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-c", TREE, str(args.processes - 1)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        print(f"{len(psutil.pids())} processes on this machine (children are found among them)")
        for interval in (0.1, 1.0):
            measure(proc.pid, interval, args.seconds)
        measure(proc.pid, 0.1, args.seconds, waiting=True)  # as generator_sampler() runs
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


if __name__ == "__main__":
    main()
