"""The named steps behind each command.

load config -> resolve tools -> start/locate target -> run scenarios -> judge ->
write reports -> exit code. Reports are written in a ``finally:`` so a failed or
interrupted run still leaves what it measured.
"""

from __future__ import annotations

import logging
import shlex
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from orchestrator import tools
from orchestrator.config_file import format_validation
from orchestrator.engines import ENGINES, get_engine, require_tool
from orchestrator.errors import ConfigError, ExitCode, ToolNotFoundError
from orchestrator.models import LoadTestResult, Transport
from orchestrator.redact import SECRET_HEADERS
from orchestrator.runner import RunSettings, new_run_dir, run_scenario
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage, WsFlow, WsMessage
from orchestrator.targets import (
    LocatedTarget,
    TargetSpec,
    locate_target,
    managed_target,
    url_port,
)

LOG = logging.getLogger(__name__)

REFERENCE_PORT = 8000
DEFAULT_WS_MESSAGES = ['{"type":"ping"}']


def say(message: str) -> None:
    """A progress note for the person watching (stderr, so stdout stays the result)."""
    print(message, file=sys.stderr, flush=True)


def parse_headers(raw: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"bad header {item!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def read_body(body: str | None) -> str | None:
    if body is None or not body.startswith("@"):
        return body
    path = Path(body[1:])
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read body file {path}: {exc.strerror or exc}") from exc


@dataclass
class SingleRun:
    url: str
    tool: str
    connections: int
    duration: float
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    messages: list[str] = field(default_factory=list)
    ramp: float = 0.0
    rate: float | None = None
    open_model: bool = False
    pipelining: int = 1
    workers: int = 0
    timeout: float = 10.0
    thresholds: list[str] = field(default_factory=list)
    pid: int | None = None
    container: str | None = None
    target_cmd: str | None = None
    sample_interval: float = 1.0
    shards: int = 1
    agents: list[str] = field(default_factory=list)
    name: str = "run"
    report_dir: Path = Path("load-reports")
    quiet: bool = False

    def scenario(self) -> Scenario:
        parts = urlsplit(self.url)
        protocol: Transport = "http"
        if parts.scheme in {"ws", "wss"}:
            protocol = "ws"
        elif parts.scheme.startswith("postgres"):
            protocol = "postgres"
        if self.open_model and self.rate is None:
            raise ConfigError("--open needs --rate (arrivals per second)")
        level = round(self.rate) if self.open_model and self.rate else self.connections
        stages = [Stage(duration=self.duration, target=level)]
        if self.ramp > 0:
            stages.insert(0, Stage(duration=self.ramp, target=level))
        # A database URL names the database in its path: it is the whole target.
        base = self.url if protocol == "postgres" else parts._replace(path="", query="").geturl()
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            return Scenario(
                name=self.name,
                protocol=protocol,
                base_url=base,
                endpoints=[]
                if protocol != "http"
                else [
                    Endpoint(method=self.method, path=path, headers=self.headers, body=self.body)
                ],
                ws=WsFlow(
                    path=path,
                    headers=self.headers,
                    messages=[WsMessage(payload=m) for m in self.messages or DEFAULT_WS_MESSAGES],
                    loops=1,  # closed model: each user repeats the flow until the end
                )
                if protocol == "ws"
                else None,
                shape=LoadShape(
                    model="open" if self.open_model else "closed",
                    start=0 if self.ramp > 0 else None,
                    stages=stages,
                ),
                pipelining=self.pipelining,
                workers=self.workers,
                timeout=self.timeout,
                max_rate=None if self.open_model else self.rate,
                shards=self.shards,
            )
        except ValidationError as exc:
            raise ConfigError(format_validation(exc)) from exc

    def target_spec(self) -> TargetSpec:
        command = shlex.split(self.target_cmd) if self.target_cmd else None
        try:
            return TargetSpec(pid=self.pid, command=command, container=self.container)
        except ValidationError as exc:  # e.g. --pid with --container
            raise ConfigError(format_validation(exc)) from exc


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
    listening on the default URL, the reference target is started.
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


def secret_header_values(headers: dict[str, str]) -> tuple[str, ...]:
    return tuple(v for k, v in headers.items() if k.lower() in SECRET_HEADERS and v)


def measure_single(request: SingleRun) -> tuple[LoadTestResult | None, Path]:
    """Run one load test and write its report; (result, report dir).

    The report is written even when the run fails or is interrupted; the result is None
    only when nothing was measured (e.g. the target could not be started).
    """
    from orchestrator import sla
    from reports.writer import write_report

    scenario = request.scenario()
    specs = [sla.parse_threshold(text, scope="scenario") for text in request.thresholds]
    require_tool(request.tool, scenario)
    if scenario.shards > 1 or request.agents:
        from orchestrator.sharding import check_shardable

        check_shardable(request.tool, scenario, request.agents)
    target_spec = request.target_spec()  # bad target options fail before a report dir exists
    run_dir = new_run_dir(request.report_dir, request.name)
    settings = RunSettings(sample_interval=request.sample_interval, agents=request.agents)
    if request.quiet:
        settings.sink = None
    results: list[LoadTestResult] = []
    code = ExitCode.TOOL_OR_TARGET_FAILED
    try:
        with open_target(target_spec, request.url, run_dir) as (target, reason):
            result = run_scenario(
                scenario, request.tool, run_dir / scenario.name, target, settings, reason, specs
            )
        results.append(result)
        code = sla.suite_exit_code(results)
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
        raise
    finally:
        write_report(
            run_dir,
            f"orchestrate run: {scenario.name}",
            results,
            exit_code=int(code),
            secrets=secret_header_values(request.headers),
        )
    return (results[0] if results else None), run_dir


def run_single(request: SingleRun) -> int:
    from orchestrator import sla
    from reports.console import print_result

    result, run_dir = measure_single(request)
    if result is not None:
        print_result(result)
    say(f"report: {run_dir}")
    return int(sla.suite_exit_code([result] if result else []))


def import_files(tool: str, files: Sequence[Path], report_dir: Path) -> int:
    from orchestrator.errors import ParseError
    from reports.console import print_result
    from reports.writer import write_report

    engine = get_engine(tool)
    missing = [path for path in files if not path.is_file()]
    if missing:
        raise ParseError(str(missing[0]), "open", "no such file")
    results = [engine.import_file(path) for path in files]
    run_dir = new_run_dir(report_dir, f"import-{tool}")
    write_report(run_dir, f"imported {tool} results", results)
    for result in results:
        print_result(result)
    say(f"report: {run_dir}")
    return int(ExitCode.OK)


def doctor(required: Sequence[str], suite_name: str | None, config_path: Path | None) -> int:
    from reports.console import print_doctor

    needed = set(required)
    if suite_name is not None:
        from orchestrator.suites import build_suite, load_config

        suite = build_suite(suite_name, load_config(config_path))
        needed |= {planned.tool for planned in suite.scenarios}
    statuses = tools.doctor()
    print_doctor(statuses, needed)
    broken = {s.name for s in statuses if not s.ok}
    for name in list(needed):
        if name in ENGINES:
            needed.update(get_engine(name).NEEDS)
    if needed & broken:
        return int(ExitCode.TOOL_OR_TARGET_FAILED)
    unknown = needed - {s.name for s in statuses}
    if unknown:
        raise ToolNotFoundError(f"unknown tool(s): {', '.join(sorted(unknown))}")
    return int(ExitCode.OK)
