"""Run a named suite: every scenario against one target, judged, with one verdict.

Steps: load config -> build suite -> resolve tools (optional scenarios are skipped with
the reason) -> start/locate the target -> log in -> run each scenario -> judge ->
write the report (in ``finally:``) -> exit code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urljoin

from orchestrator.config import LoginConfig
from orchestrator.engines import known_tools, require_tool
from orchestrator.errors import ConfigError, ExitCode, TargetError, ToolNotFoundError
from orchestrator.models import LoadTestResult, Status
from orchestrator.pipeline import open_target, say
from orchestrator.redact import remember_secret
from orchestrator.runner import RunSettings, new_run_dir, run_scenario
from orchestrator.scenarios import Scenario
from orchestrator.suites import PlannedScenario
from orchestrator.targets import locate_target, url_port

LOGIN_TIMEOUT = 10.0


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
            why = str(exc)
            if item.tool not in known_tools():
                why = f"this version of orchestrate has no {item.tool} adapter yet"
            skipped[item.scenario.name] = (
                f"skipped: {why} (--skip {item.scenario.name} to leave it out)"
            )
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
    from orchestrator.suites import build_suite, load_config
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
                remember_secret(token)
                secrets = (*secrets, token)
                auth = config.login.auth_headers(token)
            scaled = f" at --scale {scale:g}" if scale != 1 else ""
            service = url_port(config.target.base_url)
            for index, planned in enumerate(runnable, start=1):
                scenario = with_headers(planned.scenario, auth) if auth else planned.scenario
                say(
                    f"[{index}/{len(runnable)}] {scenario.name} with {planned.tool} "
                    f"({scenario.shape.total_duration:.0f} s{scaled}): {planned.description}"
                )
                sampled, why = target, reason
                if url_port(scenario.base_url) != service:
                    # Another server (db-pool's database): sample the one at its address.
                    sampled, why = locate_target(None, scenario.base_url)
                result = run_scenario(
                    scenario,
                    planned.tool,
                    out_dir / scenario.name,
                    sampled,
                    settings,
                    unsampled_reason=why,
                    thresholds=planned.thresholds,
                )
                results.append(result)
                if result.status is Status.INTERRUPTED:
                    break
        suite_checks = sla.evaluate_suite(results, suite.suite_thresholds)
        code = sla.suite_exit_code(results, skipped, suite_checks)
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
        raise
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
        say(f"report: {out_dir}")
    return int(code)
