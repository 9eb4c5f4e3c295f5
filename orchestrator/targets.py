"""Find the process (or container) behind a target, or start it ourselves, to sample it.

Targets are located, in order, by an explicit pid, a container, a port from the config,
or the URL's port when the URL's host is this machine. A remote target cannot be sampled:
the run goes on and the result says why ``resourceUsage`` is missing.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator import interrupts
from orchestrator.docker_sampler import DockerSampler
from orchestrator.errors import ConfigError, ReportError, TargetError, ToolNotFoundError
from orchestrator.process import resolve_executable, stop_process_group
from orchestrator.samplers import ProcessTreeSampler, Sampler

LOG = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443, "postgres": 5432}
WILDCARD_IPS = {"0.0.0.0", "::", ""}  # noqa: S104 - matched, never bound
LOG_TAIL_LINES = 15
READY_POLL = 0.1


class TargetSpec(BaseModel):
    """How to find (or start) the service under load; all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pid: int | None = Field(default=None, gt=0)
    port: int | None = Field(default=None, gt=0, le=65535)
    command: list[str] | None = Field(
        default=None, min_length=1, description="argv to start the target ourselves (no shell)."
    )
    container: str | None = None
    ready_url: str | None = Field(
        default=None, description="Ready when this answers HTTP < 500 (else: port accepts TCP)."
    )
    startup_timeout: float = Field(default=30.0, gt=0)
    cwd: Path | None = None
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def one_way_to_find(self) -> TargetSpec:
        given = [k for k in ("pid", "command", "container") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of pid, command, container (got {', '.join(given)})")
        return self


@dataclass(frozen=True)
class LocatedTarget:
    """Something we can sample: a process tree or a container."""

    description: str
    pid: int | None = None
    container: str | None = None
    popen: subprocess.Popen[Any] | None = None  # set when we started it: gives its exit code

    def sampler(self, interval: float, t0: float | None = None) -> Sampler:
        if self.container is not None:
            return DockerSampler(self.container, interval, t0=t0)
        assert self.pid is not None
        return ProcessTreeSampler(self.pid, interval, t0=t0, popen=self.popen)


@dataclass(frozen=True)
class ManagedTarget:
    """A target process we started and will stop."""

    pid: int
    popen: subprocess.Popen[bytes]
    log_path: Path
    command: list[str]

    @property
    def located(self) -> LocatedTarget:
        name = Path(self.command[0]).name
        return LocatedTarget(f"started {name} (pid {self.pid})", pid=self.pid, popen=self.popen)


def _listens_on(conn: Any, port: int, host: str | None) -> bool:
    if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
        return False
    return host is None or conn.laddr.ip in WILDCARD_IPS or _same_host(conn.laddr.ip, host)


def _same_host(ip: str, host: str) -> bool:
    if ip == host:
        return True
    return host == "localhost" and _is_loopback(ip)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _holds_listener(pid: int, port: int, host: str | None) -> bool:
    try:
        return any(_listens_on(c, port, host) for c in psutil.Process(pid).net_connections("inet"))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _topmost_listener(pid: int, port: int, host: str | None) -> int:
    """Climb to the highest ancestor that still holds the listening socket.

    A forking server (gunicorn master, uvicorn --workers supervisor, a ``fork()`` after
    ``listen()``) shares one socket, and psutil reports only one of its holders.
    """
    try:
        parent = psutil.Process(pid).parent()
        while parent is not None and parent.pid > 1 and _holds_listener(parent.pid, port, host):
            pid = parent.pid
            parent = parent.parent()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return pid


def _common_ancestor(pids: set[int]) -> int:
    """The deepest process whose tree holds every pid (workers bound with SO_REUSEPORT)."""
    if len(pids) == 1:
        return next(iter(pids))
    chains: list[list[int]] = []
    for pid in sorted(pids):
        try:
            chains.append([pid, *(p.pid for p in psutil.Process(pid).parents())])
        except psutil.NoSuchProcess:
            continue
    if not chains:
        return min(pids)
    others = [set(chain) for chain in chains[1:]]
    common = next((p for p in chains[0] if all(p in other for other in others)), None)
    if common is None or common <= 1:
        # Unrelated listeners: sampling init's tree would measure the whole machine.
        LOG.warning("listeners %s share no parent; sampling pid %s only", sorted(pids), min(pids))
        return min(pids)
    return common


def find_listening_pid(port: int, host: str | None = None) -> int | None:
    """The process (tree root) listening on ``port``; None if none or not visible to us."""
    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return None
    pids = {c.pid for c in conns if c.pid is not None and _listens_on(c, port, host)}
    if not pids:
        return None
    return _common_ancestor({_topmost_listener(pid, port, host) for pid in pids})


def url_port(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL; the scheme's default port when none is written."""
    parts = urlsplit(url)
    scheme = "postgres" if parts.scheme.startswith("postgres") else parts.scheme
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.hostname or "", port or DEFAULT_PORTS.get(scheme)


def locate_target(spec: TargetSpec | None, url: str) -> tuple[LocatedTarget | None, str]:
    """What to sample for this run, or (None, why nothing can be sampled)."""
    spec = spec or TargetSpec()
    if spec.pid is not None:
        if not psutil.pid_exists(spec.pid):
            return None, f"no process with pid {spec.pid}"
        return LocatedTarget(f"pid {spec.pid}", pid=spec.pid), ""
    if spec.container is not None:
        return LocatedTarget(f"container {spec.container}", container=spec.container), ""
    if spec.port is not None:
        return _locate_listener(spec.port, None)
    return _locate_url(url)


def _locate_url(url: str) -> tuple[LocatedTarget | None, str]:
    host, port = url_port(url)
    if not _is_loopback(host):
        return None, f"target host {host or '?'} is not this machine; its resources are unknown"
    if port is None:
        return None, f"no port in {url}"
    return _locate_listener(port, host)


def _locate_listener(port: int, host: str | None) -> tuple[LocatedTarget | None, str]:
    where = f"{host}:{port}" if host else f"port {port}"
    pid = find_listening_pid(port, host)
    if pid is None:
        # Another user's sockets show no pid: that reads the same as nothing listening.
        return None, f"no process of ours listens on {where}"
    return LocatedTarget(f"pid {pid} listening on {where}", pid=pid), ""


def _answers_http(url: str) -> bool:
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ConfigError(f"ready_url must be http(s): {url}")
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - scheme checked
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def _accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail(path: Path) -> str:
    try:
        with path.open("rb") as log:
            lines = deque(log, maxlen=LOG_TAIL_LINES)
    except OSError:
        return ""
    return b"".join(lines).decode("utf-8", errors="replace").rstrip()


def _wait_ready(spec: TargetSpec, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    ready: Callable[[], bool]
    if spec.ready_url is not None:
        url = spec.ready_url
        what, ready = url, lambda: _answers_http(url)
    else:
        assert spec.port is not None
        port = spec.port
        what, ready = f"port {port}", lambda: _accepts_tcp(port)
    deadline = time.monotonic() + spec.startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TargetError(
                f"target command exited with code {proc.returncode} before it was ready; "
                f"last lines of {log_path}:\n{_log_tail(log_path)}"
            )
        if ready():
            return
        time.sleep(READY_POLL)
    raise TargetError(
        f"target did not become ready within {spec.startup_timeout:g} s (waited for {what}); "
        f"last lines of {log_path}:\n{_log_tail(log_path)}"
    )


@contextmanager
def managed_target(spec: TargetSpec, log_dir: Path) -> Iterator[ManagedTarget]:
    """Start ``spec.command`` in its own session, wait until it is ready, stop it afterwards."""
    if not spec.command:
        raise ConfigError("managed_target needs a target command")
    if spec.ready_url is None and spec.port is None:
        raise ConfigError("a target command needs ready_url or port to know when it is ready")
    program = spec.command[0]
    if spec.cwd is not None and os.sep in program and not Path(program).is_absolute():
        program = str(spec.cwd / program)  # relative to where it will run
    try:
        argv = [resolve_executable(program, "check the target command"), *spec.command[1:]]
    except ToolNotFoundError as exc:
        raise TargetError(str(exc)) from exc
    log_path = log_dir / "target.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_path.open("wb")
    except OSError as exc:
        raise ReportError(f"cannot write {log_path}: {exc.strerror or exc}") from exc
    with log:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                start_new_session=True,  # its own group: we stop workers too
            )
        except OSError as exc:
            raise TargetError(f"cannot start target {argv[0]}: {exc.strerror or exc}") from exc
    LOG.info("started target pid %s, logging to %s", proc.pid, log_path)
    try:
        _wait_ready(spec, proc, log_path)
        yield ManagedTarget(proc.pid, proc, log_path, argv)
    finally:
        with interrupts.shielded():  # a second Ctrl-C must not leave the target running
            stop_process_group(proc)
