"""Resource samplers: a process tree (target or load tool) with psutil, a container with Docker.

Both run a small daemon thread that samples at a fixed interval, take one sample at
``start()`` and one at ``stop()`` (so start and end exist even for very short runs), and
summarise into :class:`~orchestrator.models.ResourceUsage`. Sample times are seconds since
a monotonic ``t0`` shared with the rest of the run, so series line up with the tool's.

A sampler never kills a run: a child that vanishes or denies access is skipped, any other
error is logged and the next tick goes on.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import statistics
import subprocess
import threading
import time
from typing import Any, Generic, Protocol, TypeVar

import psutil

from orchestrator.models import GeneratorUsage, ResourceSample, ResourceUsage, TargetExit
from orchestrator.process_tree import TreeIndex

LOG = logging.getLogger(__name__)

# CPU% over a window shorter than this is mostly clock-tick noise (jiffies are 10 ms).
MIN_CPU_WINDOW = 0.05
# A new process created after the previous tick (less this slack for clock rounding) was
# born during the tick: all its CPU time belongs to this tick.
BIRTH_SLACK = 0.02
# Full process scans (every process's stat file) at most this often; new pids every tick.
FULL_SCAN_EVERY = 1.0
# Saturation: the tool used at least this share of the CPU it can use ...
SATURATION_SHARE = 0.9
# ... as the median of a window of this many seconds of samples (at least 3 samples).
SATURATION_WINDOW = 1.0

S = TypeVar("S")


class Sampler(Protocol):
    """What the run needs from any resource sampler."""

    target_exit: TargetExit | None

    @property
    def series(self) -> list[ResourceSample]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def usage(self) -> ResourceUsage: ...


def summarise_samples(series: list[ResourceSample]) -> dict[str, Any]:
    """Start/end/peak memory and time-weighted CPU mean/max of a series."""
    rss = [s.rss_bytes for s in series if s.rss_bytes is not None]
    # Weight each CPU value by its window so a short last window counts for little.
    weighted = [
        (s.cpu_percent, s.t - prev.t)
        for prev, s in itertools.pairwise(series)
        if s.cpu_percent is not None and s.t > prev.t
    ]
    total_time = sum(w for _, w in weighted)
    return {
        "memory_start": rss[0] if rss else None,
        "memory_end": rss[-1] if rss else None,
        "memory_delta": rss[-1] - rss[0] if rss else None,
        "memory_peak": max(rss) if rss else None,
        "cpu_percent_mean": (
            sum(c * w for c, w in weighted) / total_time if total_time > 0 else None
        ),
        "cpu_percent_max": max((c for c, _ in weighted), default=None),
    }


class IntervalSampler(Generic[S]):
    """The thread and bookkeeping shared by the samplers; subclasses implement ``_sample``."""

    def __init__(self, interval: float, t0: float | None, name: str) -> None:
        if interval <= 0:
            raise ValueError("sampling interval must be positive")
        self.t0 = time.monotonic() if t0 is None else t0
        self.interval = interval
        self.samples: list[S] = []
        self.target_exit: TargetExit | None = None
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread_cpu_seconds = 0.0  # CPU the sampling thread used (for the benchmark)
        self._failures = 0

    def start(self) -> None:
        self._tick()
        if self.target_exit is None:
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and take the end sample; calling it again does nothing."""
        if self._halt.is_set():
            return
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=max(5.0, 3 * self.interval))
        if self.target_exit is None:
            self._tick()

    @property
    def series(self) -> list[S]:
        with self._lock:
            return list(self.samples)

    def _run(self) -> None:
        started_cpu = time.thread_time()
        deadline = time.monotonic() + self.interval
        while not self._halt.wait(max(0.0, deadline - time.monotonic())):
            self._tick()
            if self.target_exit is not None:
                break
            # Stay on the grid; if a tick ran long, skip the ticks it overran.
            now = time.monotonic()
            deadline += self.interval * max(1, math.ceil((now - deadline) / self.interval))
        self.thread_cpu_seconds = time.thread_time() - started_cpu

    def _tick(self) -> None:
        t = time.monotonic() - self.t0
        try:
            sample = self._sample(t)
        except Exception:
            # Never let sampling break a run; say so once, keep the details for debugging.
            self._failures += 1
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            LOG.log(level, "resource sample at t=%.2f failed", t, exc_info=True)
            return
        if sample is not None:
            with self._lock:
                self.samples.append(sample)

    def _sample(self, t: float) -> S | None:
        raise NotImplementedError


class ProcessTreeSampler(IntervalSampler[ResourceSample]):
    """Samples a process and all its descendants (re-discovered every tick) with psutil.

    Children are re-discovered every tick (see :mod:`orchestrator.process_tree`).
    RSS is summed over the tree, so pages shared by forked workers count once per worker
    (PSS would fix that but reading smaps at 10 Hz is too expensive). CPU is the tree's CPU
    time over the tick's wall time; a process born during the tick counts from its birth,
    one that exited during the tick loses its last partial tick.
    """

    def __init__(
        self,
        pid: int,
        interval: float = 1.0,
        *,
        t0: float | None = None,
        popen: subprocess.Popen[Any] | None = None,
        track_waiting: bool = False,
    ) -> None:
        super().__init__(interval, t0, name=f"sampler-{pid}")
        self.pid = pid
        self.popen = popen
        # Run-queue wait (% of one core) per sample time: CPU the tree wanted but did not get.
        self.waiting: dict[float, float] | None = {} if track_waiting else None
        self._wait: dict[int, float] = {}  # run-queue wait seconds per pid at the previous tick
        self.process_name: str | None = None
        self._index: TreeIndex | None = None
        self._cpu: dict[int, float] = {}  # CPU seconds per pid at the previous tick
        self._last_mono: float | None = None
        self._last_wall = 0.0

    def usage(self) -> ResourceUsage:
        return ResourceUsage(
            **summarise_samples(self.series),
            source="psutil",
            pid=self.pid,
            process_name=self.process_name,
            interval=self.interval,
            series=self.series,
            target_exit=self.target_exit,
        )

    def _sample(self, t: float) -> ResourceSample | None:
        try:
            if self._index is None:
                root = psutil.Process(self.pid)
                self.process_name = root.name()
                self._index = TreeIndex(root, max(FULL_SCAN_EVERY, self.interval))
            tree = self._index.members()
        except psutil.NoSuchProcess:
            tree = []
        sample = self._read_tree(t, tree) if tree else None
        if sample is None:
            self._record_exit(t)
        return sample

    def _read_tree(self, t: float, tree: list[psutil.Process]) -> ResourceSample | None:
        """Sum the tree's stats; None when the root is gone (or a zombie: exited, unreaped)."""
        assert self._index is not None
        mono, wall = time.monotonic(), time.time()
        first = self._last_mono is None
        rss = threads = cpu_delta = wait_delta = 0.0
        fds: int | None = 0
        seen: dict[int, float] = {}
        waits: dict[int, float] = {}
        for proc in tree:
            try:
                with proc.oneshot():  # one read of /proc/<pid>/stat serves several calls
                    if proc.status() == psutil.STATUS_ZOMBIE:
                        raise psutil.ZombieProcess(proc.pid)
                    self._index.note_parent(proc.pid, proc.ppid())
                    times = proc.cpu_times()
                    mem = proc.memory_info().rss
                    nthreads = proc.num_threads()
                    try:
                        nfds: int | None = proc.num_fds()
                    except psutil.AccessDenied:
                        nfds = None
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                if proc is tree[0]:
                    return None
                continue  # a child that is gone or not ours: skip it this tick
            cpu = times.user + times.system
            previous = self._cpu.get(proc.pid)
            if previous is not None:
                cpu_delta += max(0.0, cpu - previous)
            elif not first and proc.create_time() >= self._last_wall - BIRTH_SLACK:
                cpu_delta += cpu  # born during this tick
            seen[proc.pid] = cpu
            if self.waiting is not None and (wait := read_run_delay(proc.pid)) is not None:
                waits[proc.pid] = wait
                wait_delta += max(0.0, wait - self._wait.get(proc.pid, wait))
            rss += mem
            threads += nthreads
            fds = None if fds is None or nfds is None else fds + nfds
        window = None if self._last_mono is None else mono - self._last_mono
        self._cpu, self._wait, self._last_mono, self._last_wall = seen, waits, mono, wall
        cpu_percent = (
            round(100.0 * cpu_delta / window, 2)
            if window is not None and window >= MIN_CPU_WINDOW
            else None
        )
        if self.waiting is not None and window is not None and window >= MIN_CPU_WINDOW:
            self.waiting[round(t, 4)] = round(100.0 * wait_delta / window, 2)
        return ResourceSample(
            t=round(t, 4),
            rss_bytes=int(rss),
            cpu_percent=cpu_percent,
            threads=int(threads),
            fds=fds,
            processes=len(seen),
        )

    def _record_exit(self, t: float) -> None:
        self.target_exit = TargetExit(t=round(t, 4), exit_code=self._exit_code())
        LOG.info("process %s (%s) exited at t=%.2f s", self.pid, self.process_name, t)

    def _exit_code(self) -> int | None:
        if self.popen is None:
            return None
        # poll() returns None while another thread holds the wait lock: retry briefly.
        for _ in range(20):
            code = self.popen.poll()
            if code is not None:
                return code
            time.sleep(0.025)
        return None


def read_run_delay(pid: int) -> float | None:
    """Seconds the process's main thread waited for a CPU while runnable (Linux schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as stat:  # noqa: PTH123 - hot path
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def generator_sampler(
    pid: int, interval: float = 1.0, *, t0: float | None = None
) -> ProcessTreeSampler:
    """A sampler for a load tool: also records run-queue wait, for the saturation flag."""
    return ProcessTreeSampler(pid, interval, t0=t0, track_waiting=True)


def usable_cpu_percent() -> float:
    """100 per core this process may run on (affinity, not the machine's core count)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 100.0 * cores


def is_saturated(cpu: list[float], interval: float, capacity: float) -> bool:
    """True when the median over any ~1 s window (>= 3 samples) reached 90% of capacity.

    The median of a window ignores one noisy sample in either direction (a short window
    can read 0% or 200% on clock-tick rounding), yet a sustained second at the limit counts.
    With fewer samples than a window, the median of all of them decides. ``cpu`` may be
    demand (CPU used + run-queue wait) rather than CPU used.
    """
    if not cpu:
        return False
    size = min(len(cpu), max(3, round(SATURATION_WINDOW / interval)))
    threshold = SATURATION_SHARE * capacity
    return any(
        statistics.median(cpu[i : i + size]) >= threshold for i in range(len(cpu) - size + 1)
    )


def generator_usage(sampler: ProcessTreeSampler, cpu_capacity_percent: float) -> GeneratorUsage:
    """The load tool's CPU use; ``saturated`` when it ran at the limit of what it can use.

    ``cpu_capacity_percent`` is what the tool can use by design (100 for single-threaded
    Node tools, 100 per worker otherwise); it is capped by the cores this machine lets us use.
    Saturated: the tool's CPU, or its demand (CPU + run-queue wait, when the sampler came
    from :func:`generator_sampler`), held >= 90% of capacity (see :func:`is_saturated`).
    """
    capacity = min(cpu_capacity_percent, usable_cpu_percent())
    series = sampler.series
    summary = summarise_samples(series)
    cpu = [s.cpu_percent for s in series if s.cpu_percent is not None]
    # A tool starved by a busy machine wants CPU it does not get: running + waiting
    # for a CPU is its demand, and a demand at capacity is saturation too.
    waiting = sampler.waiting or {}
    demand = [s.cpu_percent + waiting.get(s.t, 0.0) for s in series if s.cpu_percent is not None]
    saturated = is_saturated(cpu, sampler.interval, capacity) or is_saturated(
        demand, sampler.interval, capacity
    )
    return GeneratorUsage(
        cpu_percent_mean=summary["cpu_percent_mean"],
        cpu_percent_max=summary["cpu_percent_max"],
        cpu_capacity_percent=capacity,
        saturated=saturated,
        series=series,
    )
