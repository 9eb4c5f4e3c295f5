"""Docker stats -> samples (documented API shape), and a clear error without an engine.

No Docker engine runs here, so the stats documents below follow the Engine API's
``GET /containers/{id}/stats`` response format (the platform edge); the unreachable-engine
error is real.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.docker_sampler import DockerSampler, sample_from_docker_stats
from orchestrator.errors import TargetError


def stats_v2(
    total: int, system: int, pre_total: int = 0, pre_system: int = 0, online: int = 2
) -> dict[str, Any]:
    """A cgroup v2 stats document, trimmed to the fields the API documents."""
    return {
        "read": "2024-05-01T10:00:01.000000000Z",
        "preread": "2024-05-01T10:00:00.000000000Z",
        "pids_stats": {"current": 7, "limit": 9000},
        "cpu_stats": {
            "cpu_usage": {"total_usage": total, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "system_cpu_usage": system,
            "online_cpus": online,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        },
        "precpu_stats": {
            "cpu_usage": {"total_usage": pre_total},
            "system_cpu_usage": pre_system,
            "online_cpus": online,
        }
        if pre_system
        else {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {
            "usage": 120_000_000,
            "stats": {"inactive_file": 20_000_000, "anon": 90_000_000, "file": 25_000_000},
            "limit": 8_000_000_000,
        },
    }


def test_cgroup_v2_document() -> None:
    # system time counts every core: 2 s of it on 2 cores is 1 s of wall time, in which
    # the container used 0.5 s of CPU: 50% (100 = one core).
    doc = stats_v2(
        total=1_500_000_000,
        system=12_000_000_000,
        pre_total=1_000_000_000,
        pre_system=10_000_000_000,
    )
    sample = sample_from_docker_stats(doc, t=3.0)
    assert sample.t == 3.0
    assert sample.rss_bytes == 100_000_000  # usage minus inactive_file
    assert sample.cpu_percent == pytest.approx(0.5 / 2.0 * 2 * 100)
    assert sample.processes == 7
    assert sample.threads is None
    assert sample.fds is None


def test_cgroup_v1_document_uses_total_inactive_file() -> None:
    doc = stats_v2(total=2, system=2, pre_total=1, pre_system=1)
    doc["memory_stats"] = {
        "usage": 50_000_000,
        "max_usage": 60_000_000,
        "stats": {"total_inactive_file": 5_000_000, "cache": 8_000_000, "rss": 40_000_000},
        "limit": 1_000_000_000,
    }
    doc["cpu_stats"].pop("online_cpus")
    doc["cpu_stats"]["cpu_usage"]["percpu_usage"] = [1, 1, 0, 0]  # old engines: count these
    sample = sample_from_docker_stats(doc, t=1.0)
    assert sample.rss_bytes == 45_000_000
    assert sample.cpu_percent == pytest.approx(1 / 1 * 4 * 100)


def test_one_shot_document_needs_the_previous_reading() -> None:
    first = stats_v2(total=1_000_000_000, system=10_000_000_000)
    assert sample_from_docker_stats(first, t=0.0).cpu_percent is None  # no base: unknown, not 0
    second = stats_v2(total=1_200_000_000, system=11_000_000_000)
    sample = sample_from_docker_stats(second, t=1.0, previous_cpu=first["cpu_stats"])
    assert sample.cpu_percent == pytest.approx(0.2 / 1.0 * 2 * 100)


def test_stopped_container_document_has_no_memory() -> None:
    doc = {"read": "0001-01-01T00:00:00Z", "pids_stats": {}, "cpu_stats": {}, "memory_stats": {}}
    sample = sample_from_docker_stats(doc, t=5.0)
    assert sample.rss_bytes is None
    assert sample.cpu_percent is None
    assert sample.processes is None


def test_unreachable_engine_is_a_clear_target_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    sampler = DockerSampler("web", 1.0)
    with pytest.raises(TargetError, match="cannot reach Docker to sample container web: "):
        sampler.start()
    sampler.stop()  # stopping a sampler that never started is harmless
    assert sampler.usage().source == "docker"
    assert sampler.usage().series == []
