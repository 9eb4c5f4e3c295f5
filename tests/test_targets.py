"""Locating and starting targets, with real servers on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from conftest import RunningTarget
from pydantic import ValidationError

from orchestrator.errors import ConfigError, TargetError
from orchestrator.samplers import ProcessTreeSampler
from orchestrator.targets import (
    TargetSpec,
    find_listening_pid,
    locate_target,
    managed_target,
    url_port,
)

# The parent listens, then forks two workers that inherit the socket (gunicorn-style).
FORKING_SERVER = """
import os, socket, time
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
for _ in range(2):
    if os.fork() == 0:
        time.sleep(30)
        os._exit(0)
print(sock.getsockname()[1], flush=True)
time.sleep(30)
"""
# The parent never listens; each worker binds its own SO_REUSEPORT socket.
REUSEPORT_SERVER = """
import os, socket, time
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
for _ in range(2):
    if os.fork() == 0:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        time.sleep(30)
        os._exit(0)
time.sleep(0.5)
print(port, flush=True)
time.sleep(30)
"""


@contextmanager
def server(code: str) -> Iterator[tuple[int, int]]:
    """(pid, port) of a `python -c` server that prints its port when listening."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_finds_the_reference_target(reference_target: RunningTarget) -> None:
    assert find_listening_pid(reference_target.port) == reference_target.pid
    assert find_listening_pid(reference_target.port, "127.0.0.1") == reference_target.pid
    assert find_listening_pid(reference_target.port, "localhost") == reference_target.pid
    assert find_listening_pid(reference_target.port, "10.1.2.3") is None


def test_nothing_listening(closed_port: int) -> None:
    assert find_listening_pid(closed_port) is None


def test_forking_server_resolves_to_the_parent() -> None:
    with server(FORKING_SERVER) as (pid, port):
        assert len(psutil.Process(pid).children()) == 2
        assert find_listening_pid(port) == pid


def test_reuseport_workers_resolve_to_their_common_parent() -> None:
    with server(REUSEPORT_SERVER) as (pid, port):
        holders = {
            c.pid
            for c in psutil.net_connections("inet")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        }
        assert pid not in holders
        assert len(holders) == 2
        assert find_listening_pid(port) == pid


def test_locate_by_url_pid_and_port(reference_target: RunningTarget) -> None:
    located, reason = locate_target(None, reference_target.url + "/api/x")
    assert reason == ""
    assert located is not None
    assert located.pid == reference_target.pid
    assert str(reference_target.port) in located.description
    assert isinstance(located.sampler(0.5), ProcessTreeSampler)

    located, _ = locate_target(TargetSpec(port=reference_target.port), "http://example.com/")
    assert located is not None
    assert located.pid == reference_target.pid

    located, _ = locate_target(TargetSpec(pid=os.getpid()), "http://example.com/")
    assert located is not None
    assert located.pid == os.getpid()


def test_locate_explains_what_cannot_be_sampled(closed_port: int) -> None:
    located, reason = locate_target(None, "https://api.example.com/health")
    assert located is None
    assert "api.example.com is not this machine" in reason
    located, reason = locate_target(None, f"http://localhost:{closed_port}/")
    assert located is None
    assert f"localhost:{closed_port}" in reason
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()
    located, reason = locate_target(TargetSpec(pid=gone.pid), "http://127.0.0.1/")
    assert located is None
    assert str(gone.pid) in reason


def test_locate_container_without_contacting_docker() -> None:
    located, _ = locate_target(TargetSpec(container="web"), "http://127.0.0.1/")
    assert located is not None
    assert located.container == "web"
    assert located.pid is None


def test_url_ports() -> None:
    assert url_port("http://[::1]:8080/x") == ("::1", 8080)
    assert url_port("https://localhost/") == ("localhost", 443)
    assert url_port("ws://127.0.0.2/ws") == ("127.0.0.2", 80)
    assert url_port("postgresql://u@127.0.0.1/db") == ("127.0.0.1", 5432)


def test_managed_target_starts_and_stops_the_reference_target(tmp_path: Path) -> None:
    port = free_port()
    spec = TargetSpec(
        command=[sys.executable, "-m", "orchestrator.reference_target", "--port", str(port)],
        ready_url=f"http://127.0.0.1:{port}/health",
        startup_timeout=20,
    )
    with managed_target(spec, tmp_path) as managed:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200
        assert find_listening_pid(port) == managed.pid
        assert managed.located.pid == managed.pid
        assert managed.located.popen is managed.popen
    assert managed.popen.returncode is not None
    assert not psutil.pid_exists(managed.pid) or psutil.Process(managed.pid).status() == "zombie"
    assert find_listening_pid(port) is None
    assert managed.log_path.parent == tmp_path
    assert managed.log_path.exists()


def test_managed_target_ready_by_port(tmp_path: Path) -> None:
    port = free_port()
    code = f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); "
    code += "s.listen(); time.sleep(30)"
    spec = TargetSpec(command=[sys.executable, "-c", code], port=port, startup_timeout=10)
    with managed_target(spec, tmp_path) as managed:
        assert managed.popen.poll() is None
    assert managed.popen.returncode is not None


def test_never_ready_is_a_target_error_with_the_log(tmp_path: Path, closed_port: int) -> None:
    code = "import time; print('warming up', flush=True); time.sleep(30)"
    spec = TargetSpec(command=[sys.executable, "-c", code], port=closed_port, startup_timeout=1)
    started = time.monotonic()
    with (
        pytest.raises(TargetError, match="did not become ready within 1 s") as info,
        managed_target(spec, tmp_path),
    ):
        pytest.fail("must not yield")
    assert time.monotonic() - started < 5
    assert "warming up" in str(info.value)


def test_command_that_exits_is_a_target_error(tmp_path: Path, closed_port: int) -> None:
    code = "import sys; print('bad config', flush=True); sys.exit(2)"
    spec = TargetSpec(command=[sys.executable, "-c", code], port=closed_port, startup_timeout=10)
    with (
        pytest.raises(TargetError, match="exited with code 2") as info,
        managed_target(spec, tmp_path),
    ):
        pytest.fail("must not yield")
    assert "bad config" in str(info.value)


def test_missing_program_and_missing_readiness(tmp_path: Path) -> None:
    spec = TargetSpec(command=["no-such-server-binary"], port=1)
    with (
        pytest.raises(TargetError, match="no-such-server-binary not found"),
        managed_target(spec, tmp_path),
    ):
        pytest.fail("must not yield")
    with (
        pytest.raises(ConfigError, match="ready_url or port"),
        managed_target(TargetSpec(command=["true"]), tmp_path),
    ):
        pytest.fail("must not yield")


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="extra"):
        TargetSpec.model_validate({"pid": 1, "hostname": "x"})
    with pytest.raises(ValidationError, match="only one of pid, command"):
        TargetSpec(pid=1, command=["x"])
    with pytest.raises(ValidationError):
        TargetSpec(command=[])
