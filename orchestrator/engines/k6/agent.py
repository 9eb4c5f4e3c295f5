"""``orchestrate agent``: run k6 shards that a coordinator on another machine hands over.

A small HTTP server (stdlib) bound to the address given with ``--listen``. For each shard
it receives the k6 script's *config* (JSON data) and its execution segment, renders the
script from its own template (so the network can hand it data, never code), checks that
every URL it would load is loopback or allowed (``--allow-host``), starts k6 paused,
answers once k6 is ready, releases it on the coordinator's word and hands back k6's raw
output (gzip) when it is done.

    POST   /v1/shards                 {"config", "segment", "sequence", "timeout"} -> ready
    POST   /v1/shards/ID/release      start loading
    POST   /v1/shards/ID/stop         interrupt (k6 writes what it has)
    GET    /v1/shards/ID?wait=S       state, failure, generator CPU, k6's summary
    GET    /v1/shards/ID/output       the raw output, gzip
    DELETE /v1/shards/ID              stop and remove its files
    GET    /v1/health                 versions

With ``ORCHESTRATE_AGENT_TOKEN`` set, every request must carry ``Authorization: Bearer``
that token (the coordinator sends it from the same variable). A shard not released within
RELEASE_TIMEOUT seconds is stopped, so a vanished coordinator leaves no k6 behind.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator import __version__, safety
from orchestrator.engines import k6
from orchestrator.engines.k6.shards import LocalShard, ShardOutcome, config_urls
from orchestrator.errors import ConfigError, FatalError

LOG = logging.getLogger(__name__)

TOKEN_ENV = "ORCHESTRATE_AGENT_TOKEN"  # noqa: S105 - the variable's name, not a value
API = "/v1/shards"
RELEASE_TIMEOUT = 120.0
MAX_WAIT = 30.0
MAX_BODY = 10 * 1024 * 1024
SEGMENT = re.compile(r"^\d+(/\d+)?:\d+(/\d+)?$")
SEQUENCE = re.compile(r"^\d+(/\d+)?(,\d+(/\d+)?)+$")


def note(message: str) -> None:
    """What the agent is doing, for the person watching it (stderr)."""
    print(f"orchestrate agent: {message}", file=sys.stderr, flush=True)


class ShardRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any]
    segment: str = Field(pattern=SEGMENT.pattern)
    sequence: str = Field(pattern=SEQUENCE.pattern)
    timeout: float = Field(gt=0, le=24 * 3600, description="Seconds k6 may run once released.")
    sample_interval: float = Field(default=1.0, ge=0.05, le=60)


@dataclass
class Hosted:
    """A shard this agent runs."""

    id: str
    shard: LocalShard
    timeout: float
    state: str = "ready"  # ready -> running -> done
    outcome: ShardOutcome | None = None
    done: threading.Event = field(default_factory=threading.Event)
    waiter: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finish_in_background(self, timeout: float) -> None:
        """Wait for k6 in a thread (once): the shard is done when k6 is."""
        with self.lock:
            if self.waiter is not None:
                return
            self.waiter = threading.Thread(
                target=self._wait, args=(timeout,), name=f"shard-{self.id}", daemon=True
            )
            self.waiter.start()

    def _wait(self, timeout: float) -> None:
        try:
            self.outcome = self.shard.wait(timeout)
        except Exception as exc:  # a shard's failure must reach the coordinator as data
            LOG.exception("shard %s failed", self.id)
            self.outcome = ShardOutcome(None, None, failure=f"agent error: {exc}")
        self.state = "done"
        self.done.set()
        failure = self.outcome.failure
        note(f"shard {self.id} done" + (f": {failure}" if failure else ""))

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "state": self.state}
        outcome = self.outcome
        if outcome is not None:
            summary = None
            if outcome.summary is not None:
                try:
                    summary = json.loads(outcome.summary.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    LOG.warning("shard %s: k6's summary is unreadable", self.id)
            generator = outcome.generator
            out.update(
                failure=outcome.failure,
                interrupted=outcome.interrupted,
                timedOut=outcome.timed_out,
                hasOutput=outcome.raw is not None,
                summary=summary,
                generator=None
                if generator is None
                else generator.model_copy(update={"series": []}).model_dump(
                    mode="json", by_alias=True
                ),
            )
        return out


class Agent:
    """The shards of one agent process, in a private working folder."""

    def __init__(self, allowed_hosts: list[str], root: Path | None = None) -> None:
        self.allowed_hosts = allowed_hosts
        # 0700 (mkdtemp): scripts may carry the scenario's secret headers.
        self.root = root or Path(tempfile.mkdtemp(prefix="orchestrate-agent-"))
        self.shards: dict[str, Hosted] = {}
        self.lock = threading.Lock()

    def create(self, request: ShardRequest) -> Hosted:
        urls = config_urls(request.config)
        if not urls:
            raise ConfigError("the shard's config loads no URL")
        safety.check_targets(urls, self.allowed_hosts)
        shard_id = uuid.uuid4().hex[:12]
        workdir = self.root / shard_id
        workdir.mkdir()
        script = workdir / k6.SCRIPT_NAME
        script.write_text(k6.render_script(request.config), encoding="utf-8")
        script.chmod(0o600)
        shard = LocalShard(
            0,
            request.segment,
            request.sequence,
            script,
            workdir,
            sample_interval=request.sample_interval,
        )
        hosted = Hosted(shard_id, shard, request.timeout)
        with self.lock:
            self.shards[shard_id] = hosted
        try:
            shard.start()
        except FatalError:
            self.remove(shard_id)
            raise
        timer = threading.Timer(RELEASE_TIMEOUT, self._expire, args=(shard_id,))
        timer.daemon = True
        timer.start()
        note(f"shard {shard_id} ready: segment {request.segment}")
        return hosted

    def _expire(self, shard_id: str) -> None:
        hosted = self.shards.get(shard_id)
        if hosted is not None and hosted.state == "ready":
            note(f"shard {shard_id} was never released; stopping it")
            self.stop(hosted)

    def get(self, shard_id: str) -> Hosted | None:
        with self.lock:
            return self.shards.get(shard_id)

    def release(self, hosted: Hosted) -> None:
        if hosted.state != "ready":
            raise ConfigError(f"shard {hosted.id} is {hosted.state}, not ready")
        hosted.shard.release()
        hosted.state = "running"
        note(f"shard {hosted.id} released")
        hosted.finish_in_background(hosted.timeout)

    def stop(self, hosted: Hosted) -> None:
        hosted.shard.stop()
        hosted.finish_in_background(0.0)

    def remove(self, shard_id: str) -> None:
        with self.lock:
            hosted = self.shards.pop(shard_id, None)
        if hosted is not None:
            hosted.shard.stop()
            hosted.finish_in_background(0.0)
            hosted.done.wait(timeout=30)
        shutil.rmtree(self.root / shard_id, ignore_errors=True)

    def close(self) -> None:
        """Stop every shard and remove the working folder (the agent is going away)."""
        for shard_id in list(self.shards):
            self.remove(shard_id)
        shutil.rmtree(self.root, ignore_errors=True)


class Handler(BaseHTTPRequestHandler):
    server: AgentServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        LOG.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fail(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _authorized(self) -> bool:
        token = os.environ.get(TOKEN_ENV)
        if not token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def _route(self) -> tuple[list[str], dict[str, list[str]]] | None:
        if not self._authorized():
            self._fail(HTTPStatus.UNAUTHORIZED, "missing or wrong agent token")
            return None
        parts = urlsplit(self.path)
        return [p for p in parts.path.split("/") if p], parse_qs(parts.query)

    def _hosted(self, shard_id: str) -> Hosted | None:
        hosted = self.server.agent.get(shard_id)
        if hosted is None:
            self._fail(HTTPStatus.NOT_FOUND, f"no shard {shard_id}")
        return hosted

    def do_GET(self) -> None:
        routed = self._route()
        if routed is None:
            return
        path, query = routed
        if path == ["v1", "health"]:
            self._send(HTTPStatus.OK, {"orchestrate": __version__, "k6": k6.version()})
        elif len(path) == 3 and path[:2] == ["v1", "shards"]:
            hosted = self._hosted(path[2])
            if hosted is not None:
                wait = min(float((query.get("wait") or ["0"])[0] or 0), MAX_WAIT)
                hosted.done.wait(timeout=max(wait, 0.0))
                self._send(HTTPStatus.OK, hosted.status())
        elif len(path) == 4 and path[:2] == ["v1", "shards"] and path[3] == "output":
            hosted = self._hosted(path[2])
            if hosted is not None:
                self._send_output(hosted)
        else:
            self._fail(HTTPStatus.NOT_FOUND, f"no such resource {self.path}")

    def _send_output(self, hosted: Hosted) -> None:
        outcome = hosted.outcome
        if outcome is None or outcome.raw is None:
            self._fail(HTTPStatus.CONFLICT, f"shard {hosted.id} has no output (yet)")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(outcome.raw.stat().st_size))
        self.end_headers()
        with outcome.raw.open("rb") as handle:
            shutil.copyfileobj(handle, self.wfile)

    def do_POST(self) -> None:
        routed = self._route()
        if routed is None:
            return
        path, _ = routed
        agent = self.server.agent
        try:
            if path == ["v1", "shards"]:
                hosted = agent.create(self._read_request())
                self._send(HTTPStatus.CREATED, hosted.status())
            elif len(path) == 4 and path[:2] == ["v1", "shards"] and path[3] in ("release", "stop"):
                hosted_or_none = self._hosted(path[2])
                if hosted_or_none is None:
                    return
                if path[3] == "release":
                    agent.release(hosted_or_none)
                else:
                    agent.stop(hosted_or_none)
                self._send(HTTPStatus.OK, hosted_or_none.status())
            else:
                self._fail(HTTPStatus.NOT_FOUND, f"no such resource {self.path}")
        except ConfigError as exc:
            self._fail(HTTPStatus.BAD_REQUEST, str(exc))
        except FatalError as exc:
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, str(exc))

    def _read_request(self) -> ShardRequest:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            raise ConfigError(f"a shard request needs a JSON body of at most {MAX_BODY} bytes")
        try:
            return ShardRequest.model_validate_json(self.rfile.read(length))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"bad shard request: {where}: {first['msg']}") from None

    def do_DELETE(self) -> None:
        routed = self._route()
        if routed is None:
            return
        path, _ = routed
        if not (len(path) == 3 and path[:2] == ["v1", "shards"]):
            self._fail(HTTPStatus.NOT_FOUND, f"no such resource {self.path}")
        elif self._hosted(path[2]) is not None:
            self.server.agent.remove(path[2])
            self._send(HTTPStatus.OK, {"id": path[2], "state": "removed"})


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: Agent) -> None:
        self.agent = agent
        super().__init__(address, Handler)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``; the host must be given (no implicit 0.0.0.0)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {text!r}: expected HOST:PORT, e.g. 10.0.0.5:7000")
    return host, int(port)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(listen: str, allowed_hosts: list[str]) -> int:
    """Serve until SIGINT/SIGTERM, then stop every shard and remove its files."""
    host, port = parse_listen(listen)
    agent = Agent(allowed_hosts)
    try:
        server = AgentServer((host, port), agent)
    except OSError as exc:
        agent.close()
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host!s}]" if ":" in str(bound_host) else str(bound_host)
    print(f"orchestrate agent listening on http://{shown}:{bound_port}", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        note("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        agent.close()
    return 0
