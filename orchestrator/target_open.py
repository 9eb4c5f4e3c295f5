"""Opening the target of a run: a process we start (and stop), or one found by pid,
container or port; with no configuration and nothing listening on the default URL, the
bundled reference target."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.progress import say
from orchestrator.targets import LocatedTarget, TargetSpec, locate_target, managed_target, url_port

REFERENCE_PORT = 8000


def _is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def reference_command(port: int = REFERENCE_PORT) -> list[str]:
    return [sys.executable, "-m", "orchestrator.reference_target", "--port", str(port)]


@contextmanager
def open_target(
    spec: TargetSpec, url: str, log_dir: Path
) -> Iterator[tuple[LocatedTarget | None, str]]:
    """The target to sample: started by us (a command), or found by pid / container / port.

    Yields (target or None, why it is not sampled). With no configuration and nothing
    listening on the default URL, the reference target is started. A target we started is
    stopped on every way out, an interruption included.
    """
    parts = urlsplit(url)
    host, known_port = url_port(url)
    port = known_port or 80
    command = spec.command
    unconfigured = command is None and spec.pid is None and spec.container is None
    default_url = (host, port) == ("127.0.0.1", REFERENCE_PORT)
    if unconfigured and default_url and not _is_listening(host, port):
        say(f"nothing listens on {host}:{port}: starting the reference target there")
        command = reference_command(port)
    if command is not None and not _is_listening(host, port):
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        ready = spec.ready_url or parts._replace(scheme=scheme, path="/", query="").geturl()
        started = spec.model_copy(update={"command": command, "ready_url": ready})
        with managed_target(started, log_dir) as managed:
            yield managed.located, ""
        return
    located, reason = locate_target(spec, url)
    yield located, reason
