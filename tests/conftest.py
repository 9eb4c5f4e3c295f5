"""Shared fixtures: real tools, real local servers.

The reference target is started as a real process on 127.0.0.1 with an OS-chosen port;
the Node tools are installed once (a no-op when the cache is warm).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:(\d+))")


@dataclass
class RunningTarget:
    url: str
    port: int
    pid: int
    process: subprocess.Popen[str]


@contextmanager
def start_reference_target(*flags: str, timeout: float = 20.0) -> Iterator[RunningTarget]:
    """Start `python -m orchestrator.reference_target --port 0 FLAGS`, stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.reference_target", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    match = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = LISTENING.search(line)
        if match:
            break
    if match is None:
        proc.kill()
        raise RuntimeError("reference target did not start:\n" + "".join(seen))
    try:
        yield RunningTarget(match.group(1), int(match.group(2)), proc.pid, proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        proc.stdout.close()


@pytest.fixture(autouse=True)
def _no_job_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reports written by tests stay off the job summary page of a CI run of the tests."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture(scope="session")
def reference_target() -> Iterator[RunningTarget]:
    """One plain reference target shared by tests that only read from it."""
    with start_reference_target() as target:
        yield target


@pytest.fixture
def target_factory() -> Iterator[Callable[..., RunningTarget]]:
    """Start a reference target with switches (latency, errors, ...) for one test."""
    # Stopped in reverse order of starting, after the test.
    with ExitStack() as stack:

        def start(*flags: str) -> RunningTarget:
            return stack.enter_context(start_reference_target(*flags))

        yield start


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """The pinned Node tools, installed once (no-op when already cached)."""
    from orchestrator import tools

    folder, _ = tools.install()
    return folder


@pytest.fixture
def closed_port() -> int:
    """A localhost port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
