"""The named steps behind each command.

load config -> resolve tools -> start/locate target -> run scenarios -> judge ->
write reports -> exit code. Reports are written in a ``finally:`` so a failed or
interrupted run still leaves what it measured.
"""

from __future__ import annotations

import json
import logging
import shlex
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from pydantic import ValidationError

from orchestrator import tools
from orchestrator.adapters import check_supports
from orchestrator.config import LoginConfig
from orchestrator.config_file import format_validation
from orchestrator.errors import ConfigError, ExitCode, TargetError, ToolNotFoundError
from orchestrator.models import LoadTestResult, Status
from orchestrator.runner import RunSettings, new_run_dir, run_scenario
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, Stage, WsFlow, WsMessage
from orchestrator.suites import PlannedScenario
from orchestrator.targets import LocatedTarget, TargetSpec, locate_target, managed_target

LOG = logging.getLogger(__name__)

REFERENCE_PORT = 8000
DEFAULT_WS_MESSAGES = ['{"type":"ping"}']
LOGIN_TIMEOUT = 10.0


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
    target_cmd: str | None = None
    sample_interval: float = 1.0
    name: str = "run"
    report_dir: Path = Path("load-reports")
    quiet: bool = False

    def scenario(self) -> Scenario:
        parts = urlsplit(self.url)
        protocol = "ws" if parts.scheme in {"ws", "wss"} else "http"
        if self.open_model and self.rate is None:
            raise ConfigError("--open needs --rate (arrivals per second)")
        level = round(self.rate) if self.open_model and self.rate else self.connections
        stages = [Stage(duration=self.duration, target=level)]
        if self.ramp > 0:
            stages.insert(0, Stage(duration=self.ramp, target=level))
        base = parts._replace(path="", query="", fragment="").geturl()
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            return Scenario(
                name=self.name,
                protocol=protocol,
                base_url=base,
                endpoints=[]
                if protocol == "ws"
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
            )
        except ValidationError as exc:
            raise ConfigError(format_validation(exc)) from exc

    def target_spec(self) -> TargetSpec:
        command = shlex.split(self.target_cmd) if self.target_cmd else None
        return TargetSpec(pid=self.pid, command=command)


def require_tool(tool: str, scenario: Scenario) -> None:
    """Fail before anything starts when the tool cannot run this scenario or is missing."""
    check_supports(tool, scenario)
    if tool in tools.NODE_TOOLS:
        tools.node_executable()
        tools.node_tool_entry(tool)
    elif tool == "k6":
        tools.k6_executable()
    elif tool == "pgbench":
        tools.pgbench_executable()


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
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    command = spec.command
    unconfigured = command is None and spec.pid is None and spec.container is None
    default_url = (host, port) == ("127.0.0.1", REFERENCE_PORT)
    if unconfigured and default_url and not _is_listening(host, port):
        LOG.warning("nothing listens on %s:%s; starting the reference target", host, port)
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
    run_dir = new_run_dir(request.report_dir, request.name)
    settings = RunSettings(sample_interval=request.sample_interval)
    if request.quiet:
        settings.sink = None
    results: list[LoadTestResult] = []
    code = ExitCode.TOOL_OR_TARGET_FAILED
    try:
        with open_target(request.target_spec(), request.url, run_dir) as (target, reason):
            result = run_scenario(
                scenario, request.tool, run_dir / scenario.name, target, settings, reason
            )
        result = result.model_copy(update={"thresholds": sla.evaluate(result, specs, scenario)})
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
            secrets=tuple(request.headers.values()),
        )
    return (results[0] if results else None), run_dir


def run_single(request: SingleRun) -> int:
    from orchestrator import sla
    from reports.console import print_result

    result, run_dir = measure_single(request)
    if result is not None:
        print_result(result)
    print(f"report: {run_dir}", file=sys.stderr)
    return int(sla.suite_exit_code([result] if result else []))


def import_files(tool: str, files: Sequence[Path], report_dir: Path) -> int:
    from parsers import import_file
    from reports.console import print_result
    from reports.writer import write_report

    results = [import_file(tool, path) for path in files]
    run_dir = new_run_dir(report_dir, f"import-{tool}")
    write_report(run_dir, f"imported {tool} results", results)
    for result in results:
        print_result(result)
    print(f"report: {run_dir}", file=sys.stderr)
    return int(ExitCode.OK)


def doctor(required: Sequence[str], suite_name: str | None, config_path: Path | None) -> int:
    from reports.console import print_doctor

    needed = set(required)
    if suite_name is not None:
        from orchestrator.config import load_config
        from orchestrator.suites import build_suite

        suite = build_suite(suite_name, load_config(config_path))
        needed |= {planned.tool for planned in suite.scenarios}
    statuses = tools.doctor()
    print_doctor(statuses, needed)
    broken = {s.name for s in statuses if not s.ok}
    if "autocannon" in needed or "artillery" in needed:
        needed.add("node")
    if needed & broken:
        return int(ExitCode.TOOL_OR_TARGET_FAILED)
    unknown = needed - {s.name for s in statuses}
    if unknown:
        raise ToolNotFoundError(f"unknown tool(s): {', '.join(sorted(unknown))}")
    return int(ExitCode.OK)


def log_in(login: LoginConfig, base_url: str) -> str:
    """Make the config's login request once; the token it returns (kept out of reports)."""
    url = urljoin(base_url.rstrip("/") + "/", login.path.lstrip("/"))
    data = login.body.encode("utf-8") if login.body is not None else None
    # The base URL was validated as http(s) with the config.
    request = urllib.request.Request(  # noqa: S310
        url, data=data, method=login.method, headers=login.headers
    )
    try:
        with urllib.request.urlopen(request, timeout=LOGIN_TIMEOUT) as response:  # noqa: S310
            payload = json.loads(response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        raise TargetError(f"login {login.method} {url} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise TargetError(f"login {login.method} {url} failed: {exc}") from exc
    except ValueError as exc:
        raise TargetError(f"login {login.method} {url} did not answer JSON") from exc
    return login.extract_token(payload)


def with_headers(scenario: Scenario, headers: dict[str, str]) -> Scenario:
    """The scenario with ``headers`` added to every request and WebSocket connect."""
    endpoints = [
        e.model_copy(update={"headers": {**e.headers, **headers}}) for e in scenario.endpoints
    ]
    ws = scenario.ws
    if ws is not None:
        ws = ws.model_copy(update={"headers": {**ws.headers, **headers}})
    return scenario.model_copy(update={"endpoints": endpoints, "ws": ws})


def split_runnable(
    planned: Sequence[PlannedScenario],
) -> tuple[list[PlannedScenario], dict[str, str]]:
    """Scenarios whose tools work, and why the others are skipped.

    Only a scenario marked optional (``requires``, e.g. db-pool needs pgbench) may be
    skipped; a missing tool for any other scenario stops the suite before it starts.
    """
    runnable: list[PlannedScenario] = []
    skipped: dict[str, str] = {}
    for item in planned:
        try:
            require_tool(item.tool, item.scenario)
        except (ToolNotFoundError, ConfigError) as exc:
            if item.requires is None:
                raise
            skipped[item.scenario.name] = f"skipped: {exc}"
            continue
        runnable.append(item)
    return runnable, skipped


def run_suite_command(
    name: str,
    *,
    config_path: Path | None,
    scale: float,
    only: Sequence[str],
    skip: Sequence[str],
    report_dir: Path | None,
    sample_interval: float,
    quiet: bool,
) -> int:
    """Run every scenario of a suite against one target; the exit code is the verdict."""
    from orchestrator import sla
    from orchestrator.config import load_config
    from orchestrator.suites import build_suite
    from reports.console import print_verdicts
    from reports.writer import write_report

    config = load_config(config_path)
    suite = build_suite(name, config, scale=scale, only=only, skip=skip)
    runnable, skipped = split_runnable(suite.scenarios)
    out_dir = new_run_dir(report_dir or Path(config.report_dir), f"suite-{suite.name}")
    # The tools' raw output goes to each scenario's tool.log; the console shows progress.
    settings = RunSettings(sample_interval=sample_interval, sink=None, progress=not quiet)
    results: list[LoadTestResult] = []
    suite_checks = []
    secrets = config.secrets()
    code = ExitCode.TOOL_OR_TARGET_FAILED
    try:
        with open_target(config.target, config.target.base_url, out_dir) as (target, reason):
            auth: dict[str, str] = {}
            if config.login is not None:
                token = log_in(config.login, config.target.base_url)
                secrets = (*secrets, token)
                auth = config.login.auth_headers(token)
            for index, planned in enumerate(runnable, start=1):
                scenario = with_headers(planned.scenario, auth) if auth else planned.scenario
                LOG.warning(
                    "[%d/%d] %s with %s (%.0f s)",
                    index,
                    len(runnable),
                    scenario.name,
                    planned.tool,
                    scenario.shape.total_duration,
                )
                result = run_scenario(
                    scenario,
                    planned.tool,
                    out_dir / scenario.name,
                    target,
                    settings,
                    unsampled_reason=reason,
                )
                result = result.model_copy(
                    update={"thresholds": sla.evaluate(result, planned.thresholds, scenario)}
                )
                results.append(result)
                if result.status is Status.INTERRUPTED:
                    break
        suite_checks = sla.evaluate_suite(results, suite.suite_thresholds)
        code = sla.suite_exit_code(results, skipped, suite_checks)
    finally:
        write_report(
            out_dir,
            f"orchestrate suite {suite.name}",
            results,
            skipped=skipped,
            suite_checks=suite_checks,
            exit_code=int(code),
            secrets=secrets,
        )
        print_verdicts(results, skipped, suite_checks, f"suite {suite.name}")
        print(f"report: {out_dir}", file=sys.stderr)
    return int(code)
