"""Sample a container's resources through the Docker engine (same interface as TreeSampler).

Memory (without reclaimable page cache, as ``docker stats`` shows it), CPU percent
(100 = one core), pids, and what the engine lets the container use: its memory limit,
its CPU limit and how often the CFS quota throttled it. Samples share the run's ``t0``,
so a container's series lines up with the load tool's like a process target's does.

The docker SDK is imported only when a container is sampled, so machines without Docker
never pay for it; it reaches the engine named by ``DOCKER_HOST`` (else the default
socket); an unreachable engine is one clear :class:`TargetError`.

The engine refreshes a container's stats about once a second (Docker 20.10 answers a
one-shot request at its collector's next tick), so a container is sampled at most once a
second whatever the interval, and each sample is placed at the time the engine took it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_camel

from orchestrator.errors import TargetError
from orchestrator.models import ResourceSample, ResourceUsage, TargetExit
from orchestrator.samplers import IntervalSampler, summarise_samples

LOG = logging.getLogger(__name__)


def _memory_bytes(memory: Mapping[str, Any]) -> int | None:
    """Usage without reclaimable page cache, as ``docker stats`` shows it."""
    usage = memory.get("usage")
    if usage is None:
        return None
    stats = memory.get("stats") or {}
    # cgroup v1 names it total_inactive_file; cgroup v2 inactive_file; old engines cache.
    for key in ("total_inactive_file", "inactive_file", "cache"):
        cache = stats.get(key)
        if cache is not None and cache < usage:
            return int(usage - cache)
    return int(usage)


def _cpu_percent(cpu: Mapping[str, Any], previous: Mapping[str, Any] | None) -> float | None:
    """cpu_delta / system_delta * online_cpus * 100 (100 = one core), None without a base."""
    if not previous or not previous.get("system_cpu_usage"):
        return None
    try:
        cpu_delta = cpu["cpu_usage"]["total_usage"] - previous["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - previous["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or [])
    if system_delta <= 0 or cpu_delta < 0 or not online:
        return None
    return round(float(cpu_delta / system_delta * online * 100.0), 2)


def sample_from_docker_stats(
    stats: Mapping[str, Any], t: float, previous_cpu: Mapping[str, Any] | None = None
) -> ResourceSample:
    """One Docker stats document -> a sample.

    CPU needs two readings: the document's own ``precpu_stats`` when the engine filled it
    (streamed or two-read stats), else ``previous_cpu`` (our last one-shot reading).
    """
    cpu = stats.get("cpu_stats") or {}
    precpu = stats.get("precpu_stats") or {}
    base = precpu if precpu.get("system_cpu_usage") else previous_cpu
    return ResourceSample(
        t=round(t, 4),
        rss_bytes=_memory_bytes(stats.get("memory_stats") or {}),
        cpu_percent=_cpu_percent(cpu, base),
        threads=None,  # the stats API does not report threads or open fds
        fds=None,
        processes=(stats.get("pids_stats") or {}).get("current"),
    )


def container_limits(host_config: Mapping[str, Any]) -> dict[str, Any]:
    """memory_limit / cpu_limit_percent from a container's HostConfig, reasons when unset."""
    limits: dict[str, Any] = {"missing": {}}
    memory = host_config.get("Memory") or 0
    if memory > 0:
        limits["memory_limit"] = int(memory)
    else:
        limits["missing"]["memoryLimit"] = "no memory limit set: it may use the host's memory"
    nano_cpus = host_config.get("NanoCpus") or 0
    quota = host_config.get("CpuQuota") or 0
    if nano_cpus > 0:  # --cpus
        limits["cpu_limit_percent"] = round(nano_cpus / 1e9 * 100.0, 2)
    elif quota > 0:  # --cpu-quota with --cpu-period (the kernel's default period: 100 ms)
        period = host_config.get("CpuPeriod") or 100_000
        limits["cpu_limit_percent"] = round(quota / period * 100.0, 2)
    else:
        limits["missing"]["cpuLimitPercent"] = "no CPU quota set (--cpus or --cpu-quota)"
    return limits


def throttling(first: Mapping[str, Any] | None, last: Mapping[str, Any] | None) -> dict[str, Any]:
    """CFS throttling between two ``cpu_stats`` readings, or reasons why it is unknown."""
    names = ("cpu_periods", "cpu_throttled_periods", "cpu_throttled_seconds")
    a = (first or {}).get("throttling_data")
    b = (last or {}).get("throttling_data")
    if not a or not b:
        why = "the engine reported no CPU throttling data"
        return {"missing": {to_camel(n): why for n in names}}
    try:
        deltas = [b[k] - a[k] for k in ("periods", "throttled_periods", "throttled_time")]
    except (KeyError, TypeError):
        return {"missing": {to_camel(n): "incomplete CPU throttling data" for n in names}}
    if min(deltas) < 0:  # counters reset: the container restarted while sampled
        return {"missing": {to_camel(n): "CPU counters were reset (restart?)" for n in names}}
    periods, throttled, nanoseconds = deltas
    return {
        "cpu_periods": int(periods),
        "cpu_throttled_periods": int(throttled),
        "cpu_throttled_seconds": round(nanoseconds / 1e9, 4),
        "missing": {},
    }


def reading_time(
    read: str | None, t_before: float, wall_before: float, t_after: float, wall_after: float
) -> float:
    """When the engine took a reading, on the run's timeline (seconds since ``t0``).

    A reading stamped outside the call (an engine on another clock) counts as taken when
    the answer came back.
    """
    try:
        when = datetime.fromisoformat(read).timestamp() if read else None
    except ValueError:
        when = None
    if when is None or not wall_before - 0.05 <= when <= wall_after + 0.05:
        return t_after
    return max(t_before, t_after - (wall_after - when))


class DockerSampler(IntervalSampler[ResourceSample]):
    """Samples one container by name or id; ``start()`` raises TargetError if unreachable."""

    def __init__(self, container: str, interval: float = 1.0, *, t0: float | None = None) -> None:
        super().__init__(interval, t0, name=f"sampler-{container}")
        self.container_name = container
        self._container: Any = None
        self._previous_cpu: Mapping[str, Any] | None = None
        self._first_cpu: Mapping[str, Any] | None = None  # for throttling over the run
        self._limits: dict[str, Any] = {"missing": {}}
        self._one_shot = True

    def start(self) -> None:
        self._container = connect_container(self.container_name)
        self._limits = container_limits(self._container.attrs.get("HostConfig") or {})
        super().start()

    def stop(self) -> None:
        super().stop()
        if self._container is not None:
            self._container.client.close()  # the SDK keeps a connection pool open

    def usage(self) -> ResourceUsage:
        limits = dict(self._limits)
        throttled = throttling(self._first_cpu, self._previous_cpu)
        missing = {**limits.pop("missing"), **throttled.pop("missing")}
        return ResourceUsage(
            **summarise_samples(self.series),
            source="docker",
            process_name=self.container_name,
            interval=self.interval,
            series=self.series,
            target_exit=self.target_exit,
            **limits,
            **throttled,
            missing=missing,
        )

    def _sample(self, t: float) -> ResourceSample | None:
        if self._container is None:  # start() failed: nothing to read
            return None
        from docker.errors import InvalidVersion, NotFound

        wall_before = time.time()
        try:
            if self._one_shot:
                try:
                    stats = self._container.stats(stream=False, one_shot=True)
                except InvalidVersion:  # engine API < 1.41: two reads, ~1 s per call
                    self._one_shot = False
                    stats = self._container.stats(stream=False)
            else:
                stats = self._container.stats(stream=False)
            if not stats.get("memory_stats"):  # a stopped container reports nothing
                self._container.reload()
                state = self._container.attrs.get("State", {})
                if not state.get("Running", False):
                    self.target_exit = TargetExit(t=round(t, 4), exit_code=state.get("ExitCode"))
                    return None
        except NotFound:
            self.target_exit = TargetExit(t=round(t, 4), exit_code=None)
            return None
        t = reading_time(stats.get("read"), t, wall_before, time.monotonic() - self.t0, time.time())
        sample = sample_from_docker_stats(stats, t, self._previous_cpu)
        self._previous_cpu = stats.get("cpu_stats")
        if self._first_cpu is None:
            self._first_cpu = self._previous_cpu
        return sample


def connect_container(name: str) -> Any:
    """The docker SDK's container object, or a TargetError naming what went wrong."""
    try:
        import docker  # lazy: most machines sample no container
        from docker.errors import DockerException, NotFound
    except ImportError as exc:
        raise TargetError(f"cannot sample container {name}: the docker SDK is missing") from exc
    try:
        client = docker.from_env()
    except DockerException as exc:
        raise TargetError(f"cannot reach Docker to sample container {name}: {exc}") from exc
    try:
        return client.containers.get(name)
    except NotFound as exc:
        raise TargetError(f"no Docker container named {name}") from exc
    except DockerException as exc:
        raise TargetError(f"cannot reach Docker to sample container {name}: {exc}") from exc
