"""Sample a container's resources through the Docker engine (same interface as TreeSampler).

The docker SDK is imported only when a container is sampled, so machines without Docker
never pay for it; an unreachable engine is one clear :class:`TargetError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

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


class DockerSampler(IntervalSampler[ResourceSample]):
    """Samples one container by name or id; ``start()`` raises TargetError if unreachable."""

    def __init__(self, container: str, interval: float = 1.0, *, t0: float | None = None) -> None:
        super().__init__(interval, t0, name=f"sampler-{container}")
        self.container_name = container
        self._container: Any = None
        self._previous_cpu: Mapping[str, Any] | None = None
        self._one_shot = True

    def start(self) -> None:
        self._container = connect_container(self.container_name)
        super().start()

    def usage(self) -> ResourceUsage:
        return ResourceUsage(
            **summarise_samples(self.series),
            source="docker",
            process_name=self.container_name,
            interval=self.interval,
            series=self.series,
            target_exit=self.target_exit,
        )

    def _sample(self, t: float) -> ResourceSample | None:
        if self._container is None:  # start() failed: nothing to read
            return None
        from docker.errors import InvalidVersion, NotFound

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
        sample = sample_from_docker_stats(stats, t, self._previous_cpu)
        self._previous_cpu = stats.get("cpu_stats")
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
