"""A k6 shard run by an ``orchestrate agent`` on another machine (the coordinator's side).

Same steps as a local shard (:class:`orchestrator.engines.k6.shards.LocalShard`): start
paused, release, wait, stop; each is one request to the agent (see
:mod:`orchestrator.engines.k6.agent`). When the shard is done its raw output and k6's summary are
copied into the shard's folder of the report, so it is read exactly like a local one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.engines import k6
from orchestrator.engines.k6.agent import API, TOKEN_ENV
from orchestrator.engines.k6.shards import ShardOutcome
from orchestrator.errors import ConfigError, ToolError
from orchestrator.models import GeneratorUsage

LOG = logging.getLogger(__name__)

REQUEST_TIMEOUT = 90.0  # starting a shard waits for k6's init on the agent
POLL_SECONDS = 10.0
DOWNLOAD_CHUNK = 1 << 20


def check_agent_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"--agent {url!r}: expected http://HOST:PORT")
    return url.rstrip("/")


class AgentShard:
    """One shard handed to the agent at ``url``."""

    def __init__(
        self,
        url: str,
        index: int,
        segment: str,
        sequence: str,
        config: dict[str, Any],
        workdir: Path,
        *,
        timeout: float,
        sample_interval: float = 1.0,
    ) -> None:
        self.url = check_agent_url(url)
        self.host = self.url
        self.index = index
        self.segment = segment
        self.sequence = sequence
        self.config = config
        self.workdir = workdir
        self.timeout = timeout
        self.sample_interval = sample_interval
        self.shard_id: str | None = None

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked (http)
            f"{self.url}{path}", data=data, method=method, headers=self._headers()
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise ToolError(f"agent {self.url}: {_agent_error(exc)}") from None
        except (OSError, ValueError) as exc:
            raise ToolError(f"agent {self.url} did not answer: {exc}") from None
        return answer if isinstance(answer, dict) else {}

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = os.environ.get(TOKEN_ENV)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def start(self) -> None:
        body = {
            "config": self.config,
            "segment": self.segment,
            "sequence": self.sequence,
            "timeout": self.timeout,
            "sample_interval": self.sample_interval,
        }
        answer = self._call("POST", API, body, timeout=REQUEST_TIMEOUT)
        self.shard_id = str(answer["id"])

    def release(self) -> None:
        self._call("POST", f"{API}/{self.shard_id}/release")

    def stop(self) -> None:
        self._best_effort("POST", "/stop")

    def close(self) -> None:
        """Ask the agent to remove the shard's files (best effort: it is going anyway)."""
        self._best_effort("DELETE", "")

    def _best_effort(self, method: str, action: str) -> None:
        """A call on a started shard whose failure is only logged."""
        if self.shard_id is None:
            return
        try:
            self._call(method, f"{API}/{self.shard_id}{action}", timeout=REQUEST_TIMEOUT)
        except ToolError as exc:
            LOG.warning("%s", exc)

    def wait(self, timeout: float) -> ShardOutcome:
        if self.shard_id is None:
            return ShardOutcome(None, None, failure="never started")
        deadline = time.monotonic() + max(timeout, 0.0)
        status: dict[str, Any] = {}
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(POLL_SECONDS, left))
            status = self._call("GET", f"{API}/{self.shard_id}?wait={wait:.1f}", timeout=wait + 30)
            if status.get("state") == "done" or left <= 0:
                break
        if status.get("state") != "done":
            self.stop()
            status = self._call("GET", f"{API}/{self.shard_id}?wait=30", timeout=60)
        return self._collect(status)

    def _collect(self, status: dict[str, Any]) -> ShardOutcome:
        self.workdir.mkdir(parents=True, exist_ok=True)
        raw = summary = None
        if status.get("hasOutput"):
            raw = self.workdir / k6.RAW_NAME
            self._download(f"{API}/{self.shard_id}/output", raw)
        if isinstance(status.get("summary"), dict):
            summary = self.workdir / k6.SUMMARY_NAME
            summary.write_text(json.dumps(status["summary"]), encoding="utf-8")
        generator = status.get("generator")
        failure = status.get("failure")
        return ShardOutcome(
            raw=raw,
            summary=summary,
            failure=None if failure is None else f"on {self.url}: {failure}",
            interrupted=bool(status.get("interrupted")),
            timed_out=bool(status.get("timedOut")),
            generator=None if generator is None else GeneratorUsage.model_validate(generator),
        )

    def _download(self, path: str, to: Path) -> None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked (http)
            f"{self.url}{path}", headers=self._headers()
        )
        tmp = to.with_suffix(".part")
        try:
            with (
                urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response,  # noqa: S310
                tmp.open("wb") as out,
            ):
                shutil.copyfileobj(response, out, DOWNLOAD_CHUNK)
        except urllib.error.HTTPError as exc:
            raise ToolError(f"agent {self.url}: {_agent_error(exc)}") from None
        except OSError as exc:
            raise ToolError(f"cannot fetch the output from agent {self.url}: {exc}") from None
        tmp.replace(to)


def _agent_error(exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read()).get("error")
    except (OSError, ValueError, AttributeError):
        message = None
    return str(message or f"HTTP {exc.code}")
