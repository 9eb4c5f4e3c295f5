"""Container targets sampled through the docker SDK, against a real private Docker engine.

The engine (``tests/docker_engine.py``) is Debian's dockerd on its own socket, started once
for the session and removed afterwards; containers run a registry-free busybox image on the
host network, bound to 127.0.0.1. The first tests below read stats documents in the Engine
API's documented ``GET /containers/{id}/stats`` shape: this machine's cgroup v1 cannot
produce the cgroup v2 document, and old engines' fields (``percpu_usage``) are gone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from docker_engine import (
    CGROUP_ROOT,
    DockerEngine,
    engine_missing,
    free_port,
    start_docker_engine,
)

from orchestrator.docker_sampler import (
    DockerSampler,
    container_limits,
    reading_time,
    sample_from_docker_stats,
    throttling,
)
from orchestrator.errors import TargetError
from orchestrator.models import LoadTestResult, ResourceUsage

MIB = 1024 * 1024
# Two shell busy loops want two cores; --cpus 0.5 lets them have half of one. Before
# that, 24 MiB written to the container's /dev/shm (tmpfs) are charged to its memory.
BUSY = (
    "dd if=/dev/zero of=/dev/shm/fill bs=1M count=24 2>/dev/null; "
    "while :; do :; done & while :; do :; done & wait"
)


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


def test_container_limits_come_from_host_config() -> None:
    limited = container_limits({"Memory": 64 * MIB, "NanoCpus": 500_000_000, "CpuQuota": 0})
    assert limited == {"memory_limit": 64 * MIB, "cpu_limit_percent": 50.0, "missing": {}}
    quota = container_limits({"Memory": 0, "CpuQuota": 150_000, "CpuPeriod": 100_000})
    assert quota["cpu_limit_percent"] == 150.0
    assert "memory_limit" not in quota
    assert "host's memory" in quota["missing"]["memoryLimit"]


def test_throttling_is_the_difference_between_two_readings() -> None:
    first = {"throttling_data": {"periods": 10, "throttled_periods": 4, "throttled_time": 10**9}}
    last = {
        "throttling_data": {"periods": 40, "throttled_periods": 30, "throttled_time": 3 * 10**9}
    }
    assert throttling(first, last) == {
        "cpu_periods": 30,
        "cpu_throttled_periods": 26,
        "cpu_throttled_seconds": 2.0,
        "missing": {},
    }
    unknown = throttling(None, last)
    assert set(unknown["missing"]) == {"cpuPeriods", "cpuThrottledPeriods", "cpuThrottledSeconds"}
    restarted = throttling(last, first)
    assert "reset" in restarted["missing"]["cpuPeriods"]


def test_a_reading_is_placed_when_the_engine_took_it() -> None:
    # The call ran from wall 1000.0 (t 5.0) to 1000.8 (t 5.8); the engine read at 1000.7.
    read = datetime.fromtimestamp(1000.7, tz=UTC).isoformat().replace("+00:00", "Z")
    assert reading_time(read, 5.0, 1000.0, 5.8, 1000.8) == pytest.approx(5.7)
    # Another clock, a zero time, or no time at all: when the answer came back.
    assert reading_time("2001-01-01T00:00:00Z", 5.0, 1000.0, 5.8, 1000.8) == 5.8
    assert reading_time("0001-01-01T00:00:00Z", 5.0, 1000.0, 5.8, 1000.8) == 5.8
    assert reading_time(None, 5.0, 1000.0, 5.8, 1000.8) == 5.8


# --- a real Docker engine -------------------------------------------------------------


def require_engine() -> None:
    if os.geteuid() != 0:
        # Rootless Docker would need rootlesskit and a user namespace set-up: not ours to do.
        pytest.skip("a private dockerd needs root")
    why = engine_missing()
    if why is not None:
        pytest.fail(why)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    require_engine()
    with start_docker_engine() as engine:
        yield engine


@pytest.fixture
def engine(docker_engine: DockerEngine, monkeypatch: pytest.MonkeyPatch) -> Iterator[DockerEngine]:
    """The session's engine as the SDK's default (DOCKER_HOST); this test's containers go."""
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    yield docker_engine
    for container in docker_engine.client.containers.list(all=True):
        container.remove(force=True)


def sample_for(name: str, seconds: float, interval: float) -> tuple[ResourceUsage, float]:
    """Sample a container for ``seconds`` on a timeline starting now; (usage, seconds)."""
    t0 = time.monotonic()
    sampler = DockerSampler(name, interval, t0=t0)
    sampler.start()
    try:
        time.sleep(seconds)
    finally:
        sampler.stop()
    return sampler.usage(), time.monotonic() - t0


def test_container_with_64mb_and_half_a_cpu_reports_limit_memory_and_cpu_near_half_a_core(
    engine: DockerEngine,
) -> None:
    container = engine.run("busy", ["sh", "-c", BUSY], memory="64m", cpus=0.5)
    usage, elapsed = sample_for("busy", seconds=3.0, interval=1.0)

    assert usage.source == "docker"
    assert usage.process_name == "busy"
    assert usage.memory_limit == 64 * MIB
    # The limit is the one the engine enforces, not only the one we asked for.
    assert container.stats(stream=False, one_shot=True)["memory_stats"]["limit"] == 64 * MIB
    assert usage.cpu_limit_percent == 50.0
    assert usage.missing == {}
    # Memory: the 24 MiB in /dev/shm, below the limit.
    assert usage.memory_peak is not None
    assert 24 * MIB <= usage.memory_peak < 64 * MIB
    # CPU: 200% wanted, the quota holds it near 50% (100 = one core).
    assert usage.cpu_percent_max is not None and usage.cpu_percent_mean is not None
    assert 35.0 <= usage.cpu_percent_max <= 65.0, usage.series
    assert usage.cpu_percent_mean <= 65.0
    assert usage.cpu_periods is not None and usage.cpu_periods > 0
    assert usage.cpu_throttled_periods is not None
    assert usage.cpu_throttled_periods / usage.cpu_periods > 0.5
    assert usage.cpu_throttled_seconds is not None and usage.cpu_throttled_seconds > 0
    # pids: the shell and its two loops.
    assert max(s.processes or 0 for s in usage.series) >= 3
    # One timeline with the run: seconds since t0, in order, start to stop.
    times = [s.t for s in usage.series]
    assert times == sorted(times)
    assert 0 <= times[0] < 1.0
    assert 3.0 <= times[-1] <= elapsed


def test_container_that_exits_gives_its_exit_code_and_unset_limits_say_why(
    engine: DockerEngine,
) -> None:
    engine.run("short", ["sh", "-c", "sleep 1; exit 3"])
    sampler = DockerSampler("short", 0.2)
    sampler.start()
    deadline = time.monotonic() + 20
    while sampler.target_exit is None and time.monotonic() < deadline:
        time.sleep(0.1)
    sampler.stop()
    usage = sampler.usage()
    assert usage.target_exit is not None
    assert usage.target_exit.exit_code == 3
    assert usage.target_exit.t >= 0.5
    assert usage.series  # it was sampled while it ran
    assert usage.memory_limit is None
    assert "no memory limit" in usage.missing["memoryLimit"]
    assert usage.cpu_limit_percent is None
    assert "no CPU quota" in usage.missing["cpuLimitPercent"]
    assert usage.cpu_throttled_periods == 0  # no quota: never throttled


def test_unknown_container_on_a_real_engine_is_a_clear_target_error(engine: DockerEngine) -> None:
    sampler = DockerSampler("no-such-container", 1.0)
    with pytest.raises(TargetError, match=r"^no Docker container named no-such-container$"):
        sampler.start()


def only_result(report_dir: Path) -> LoadTestResult:
    (path,) = report_dir.glob("*-run/*/result.json")
    return LoadTestResult.model_validate_json(path.read_text(encoding="utf-8"))


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


@pytest.mark.load
def test_orchestrate_run_samples_a_container_target_end_to_end(
    engine: DockerEngine, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    engine.run(
        "web",
        ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
        memory="64m",
        cpus=0.5,
    )
    wait_http(url)
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "-q", "--tool", "autocannon",
         "-c", "8", "-d", "3", "--url", url, "--container", "web",
         "--sample-interval", "0.5", "--report-dir", str(reports)],
        cwd=tmp_path, env={**os.environ, "DOCKER_HOST": engine.host, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = only_result(reports)
    assert result.total_requests is not None and result.total_requests > 0
    assert result.successful_requests == result.total_requests
    assert "resourceUsage" not in result.missing
    usage = result.resource_usage
    assert usage is not None
    assert usage.source == "docker"
    assert usage.process_name == "web"
    assert usage.memory_limit == 64 * MIB
    assert usage.cpu_limit_percent == 50.0
    assert usage.memory_peak is not None and 0 < usage.memory_peak < 64 * MIB
    # busybox httpd forks a process per connection: the quota caps them all together.
    assert usage.cpu_percent_max is not None
    assert 0 < usage.cpu_percent_max <= 65.0
    assert usage.cpu_periods is not None and usage.cpu_periods > 0
    # The container's samples and the load tool's share the run's timeline: the target is
    # sampled from before the tool starts until after it ends (its last sample waits for
    # the engine's next stats tick).
    assert result.generator is not None and result.generator.series
    target_t = [s.t for s in usage.series]
    tool_t = [s.t for s in result.generator.series]
    assert 0 <= target_t[0] <= tool_t[0]
    assert tool_t[-1] <= target_t[-1] <= tool_t[-1] + 3.0
    # What a person reads: the container's limits, not a process-tree note.
    assert re.search(r"target memory .* of 67\.1 MB limit", done.stdout), done.stdout
    assert re.search(r"target cpu .* of 50\.0 % limit, throttled in \d+ of \d+", done.stdout)
    saved = json.loads(next(reports.glob("*-run/*/result.json")).read_text(encoding="utf-8"))
    assert saved["resourceUsage"]["memoryLimit"] == 64 * MIB  # camelCase on the wire


def test_engine_teardown_leaves_nothing_behind_even_when_the_test_fails() -> None:
    require_engine()
    docker_cgroups_before = {p for p in CGROUP_ROOT.glob("*/docker") if p.is_dir()}
    ours: dict[int, float] = {}  # pid -> start time: a reused pid is not ours
    with pytest.raises(ZeroDivisionError), start_docker_engine() as private:
        root = private.root
        container_id = private.run("doomed", ["sleep", "60"], memory="16m").id
        daemon = psutil.Process(private.pid)
        for proc in [daemon, *daemon.children(recursive=True)]:
            ours[proc.pid] = proc.create_time()
        assert {psutil.Process(pid).name() for pid in ours} >= {"dockerd", "containerd"}
        _ = 1 / 0  # a failing test: the engine must still go away
    assert not root.exists()
    assert [pid for pid, started in ours.items() if _alive_since(pid, started)] == []
    named = [p.pid for p in psutil.process_iter(["cmdline"]) if str(root) in _cmdline(p)]
    assert named == []
    assert str(root) not in Path("/proc/self/mountinfo").read_text(encoding="utf-8")
    assert list(CGROUP_ROOT.glob(f"*/docker/{container_id}")) == []
    assert {p for p in CGROUP_ROOT.glob("*/docker") if p.is_dir()} <= docker_cgroups_before


def _alive_since(pid: int, started: float) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == started and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(proc: psutil.Process) -> str:
    return " ".join(proc.info["cmdline"] or [])


def test_container_with_pid_is_a_usage_error_before_any_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--url", "http://127.0.0.1:9/",
         "--pid", "1", "--container", "web", "--report-dir", str(tmp_path / "reports")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "orchestrate: error: give only one of --pid (pid) and --container (container)"
    ]
    assert not (tmp_path / "reports").exists()
