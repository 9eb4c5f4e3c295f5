"""One k6 test split across k6 instances with execution segments, released together.

Each instance runs ``--execution-segment i/n:(i+1)/n`` of the shared
``--execution-segment-sequence 0,1/n,...,1``: k6 itself gives each its share of the VUs
or of the arrival rate. Instances start ``--paused`` with their REST API on a known
address, and are released by ``PATCH /v1/status {"paused": false}`` (what ``k6 resume``
and k6-operator's starter send), so that none starts loading before all are ready.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from orchestrator import process
from orchestrator.engines import k6
from orchestrator.errors import ConfigError, ToolError
from orchestrator.models import GeneratorUsage
from orchestrator.process import OutputSink, RunningTool
from orchestrator.samplers import ProcessTreeSampler, generator_sampler, generator_usage
from orchestrator.scenarios import Scenario

LOG = logging.getLogger(__name__)

MAX_SHARDS = 64
READY_TIMEOUT = 60.0
# A port picked free can be taken before k6 binds it: try a few.
START_ATTEMPTS = 3
API_TIMEOUT = 5.0
RESUME_BODY = json.dumps(
    {"data": {"type": "status", "id": "default", "attributes": {"paused": False}}}
).encode()


def segments(n: int) -> list[str]:
    """``--execution-segment`` of each of ``n`` equal shards: ``0:1/2``, ``1/2:1``."""
    if not 1 <= n <= MAX_SHARDS:
        raise ConfigError(f"shards must be between 1 and {MAX_SHARDS}, got {n}")
    return [f"{Fraction(i, n)}:{Fraction(i + 1, n)}" for i in range(n)]


def segment_sequence(n: int) -> str:
    """The ``--execution-segment-sequence`` every shard shares: ``0,1/2,1``."""
    return ",".join(str(Fraction(i, n)) for i in range(n + 1))


def shard_config(scenario: Scenario, n: int) -> dict[str, Any]:
    """The k6 script's config for one of ``n`` equal shards.

    k6 splits VUs and arrival rates by segment itself; what it cannot split is ours: the
    closed model's request-rate cap is per instance in the script, so each shard gets its
    segment's share. Each shard may size up to k6.MAX_VUS of its own.
    """
    config = k6.build_config(scenario, max_vus=k6.MAX_VUS * n)
    http = config.get("http")
    if n > 1 and http and http.get("maxRate"):
        http["maxRate"] = http["maxRate"] / n
    return config


def config_urls(config: dict[str, Any]) -> list[str]:
    """Every URL a script made from ``config`` loads (to check before running it)."""
    urls: list[str] = []
    http = config.get("http")
    if isinstance(http, dict):
        urls += [str(e.get("url")) for e in http.get("endpoints") or [] if isinstance(e, dict)]
    ws = config.get("ws")
    if isinstance(ws, dict):
        urls.append(str(ws.get("url")))
    return urls


def shard_argv(
    executable: str,
    script: Path,
    raw: Path,
    summary: Path,
    log: Path,
    *,
    address: str,
    segment: str,
    sequence: str,
) -> list[str]:
    """k6's single-run command line, paused on ``address`` and limited to ``segment``."""
    argv = k6.build_argv(executable, script, raw, summary, log)
    if "--address" not in argv or argv[-1] != str(script):
        raise ToolError("k6 command line has an unexpected shape; cannot shard it")
    argv[argv.index("--address") + 1] = address
    extra = [
        "--paused",
        "--execution-segment",
        segment,
        "--execution-segment-sequence",
        sequence,
    ]
    return [*argv[:-1], *extra, argv[-1]]


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (k6 needs its API address before it starts)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _api(address: str, method: str = "GET", body: bytes | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://{address}/v1/status",
        data=body,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=API_TIMEOUT) as response:  # noqa: S310
        data = json.loads(response.read())
    attributes = data.get("data", {}).get("attributes", {}) if isinstance(data, dict) else {}
    return attributes if isinstance(attributes, dict) else {}


def wait_paused(address: str, alive: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    """Return once the k6 at ``address`` is initialised and paused; ToolError if it exits
    or is not ready within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ToolError(f"k6 on {address} exited before it was ready")
        try:
            if _api(address).get("paused") is True:
                return
        except (OSError, ValueError):
            pass  # not listening yet
        time.sleep(0.05)
    raise ToolError(f"k6 on {address} was not ready within {timeout:.0f} s")


def resume(address: str) -> None:
    """Release a paused k6 (the request ``k6 resume --address`` makes)."""
    try:
        state = _api(address, "PATCH", RESUME_BODY)
    except (OSError, ValueError) as exc:
        raise ToolError(f"cannot resume k6 on {address}: {exc}") from exc
    if state.get("paused") is not False:
        raise ToolError(f"k6 on {address} is still paused after resume")


@dataclass
class ShardOutcome:
    """How one shard ended and where its output is (read by the coordinator)."""

    raw: Path | None
    summary: Path | None
    failure: str | None = None  # None: k6 ran to its end
    interrupted: bool = False
    timed_out: bool = False
    generator: GeneratorUsage | None = None


class LocalShard:
    """One k6 instance on this machine: started paused, released, waited for.

    The coordinator runs its local shards with it, and an agent the shards handed to it.
    """

    def __init__(
        self,
        index: int,
        segment: str,
        sequence: str,
        script: Path,
        workdir: Path,
        *,
        sink: OutputSink | None = None,
        sample_interval: float = 1.0,
        t0: float | None = None,
    ) -> None:
        self.index = index
        self.segment = segment
        self.sequence = sequence
        self.script = script
        self.workdir = workdir
        self.host = "local"
        self.sink = sink
        self.sample_interval = sample_interval
        self.t0 = t0
        self.raw = workdir / k6.RAW_NAME
        self.summary = workdir / k6.SUMMARY_NAME
        self.address = ""
        self.tool: RunningTool | None = None
        self.sampler: ProcessTreeSampler | None = None
        # stop() may come from another thread while start() is still launching k6.
        self._stopped = False
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start k6 paused; return once it is initialised and waiting for the release."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for stale in (self.raw, self.summary):
            stale.unlink(missing_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            self.address = f"127.0.0.1:{free_port()}"
            argv = shard_argv(
                k6.executable(),
                self.script,
                self.raw,
                self.summary,
                self.workdir / k6.LOG_NAME,
                address=self.address,
                segment=self.segment,
                sequence=self.sequence,
            )
            with self._lock:
                if self._stopped:
                    raise ToolError(f"k6 shard {self.index} was stopped before it started")
                tool = process.start_tool(
                    argv,
                    log_path=self.workdir / "tool.log",
                    env={**os.environ, **k6.run_env()},
                    cwd=self.workdir,
                    sink=self.sink,
                )
                self.tool = tool
            try:
                wait_paused(self.address, tool.running)
            except ToolError:
                run = tool.finish()
                if attempt == START_ATTEMPTS or "address already in use" not in " ".join(run.tail):
                    raise ToolError(
                        f"k6 shard {self.index} did not start: {run.describe_failure()}"
                    ) from None
                LOG.info("k6 API port %s was taken; trying another", self.address)
                continue
            self.sampler = generator_sampler(tool.pid, self.sample_interval, t0=self.t0)
            self.sampler.start()
            return

    def release(self) -> None:
        resume(self.address)

    def stop(self) -> None:
        """Interrupt k6 (it writes what it has); one not started yet never starts."""
        with self._lock:
            self._stopped = True
            tool = self.tool
        if tool is not None:
            tool.stop()

    def close(self) -> None:
        """Nothing to release: the shard's files are the report's."""

    def wait(self, timeout: float) -> ShardOutcome:
        if self.tool is None:
            return ShardOutcome(None, None, failure="never started")
        run = self.tool.wait(timeout)
        generator = None
        if self.sampler is not None:
            self.sampler.stop()
            generator = generator_usage(self.sampler, 100.0 * (os.cpu_count() or 1))
        failure = None
        if not run.ok and not run.interrupted:
            failure = f"k6 {run.describe_failure()}"
        return ShardOutcome(
            raw=self.raw if self.raw.is_file() else None,
            summary=self.summary if self.summary.is_file() else None,
            failure=failure,
            interrupted=run.interrupted,
            timed_out=run.timed_out,
            generator=generator,
        )
