"""Run one engine against a local server the way the product's runner does, for engine tests.

prepare -> run the tool through :func:`orchestrator.process.run_tool` (cwd and ``tool.log`` in
the run's folder, no console echo) -> remove the folder of real secrets -> parse. No samplers
and no result file: engine tests judge the parsed result alone. Imported as ``engine_helpers``
(pytest puts ``tests/`` on ``sys.path``, as for ``conftest`` and ``pg_server``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.engines import get_engine
from orchestrator.engines.base import Invocation
from orchestrator.models import LoadTestResult
from orchestrator.process import ToolRun, run_tool
from orchestrator.scenarios import Endpoint, LoadShape, Scenario


@dataclass
class EngineRun:
    result: LoadTestResult
    invocation: Invocation
    run: ToolRun


def run_invocation(
    invocation: Invocation,
    *,
    timeout: float | None = None,
    on_start: Callable[[int], None] | None = None,
) -> ToolRun:
    """Run a prepared tool to its end, or for ``timeout`` seconds instead of its own limit."""
    try:
        return run_tool(
            invocation.argv,
            timeout=invocation.timeout if timeout is None else timeout,
            log_path=invocation.workdir / "tool.log",
            env={**os.environ, **invocation.env},
            cwd=invocation.workdir,
            sink=None,
            on_start=on_start,
        )
    finally:
        # Real secrets live there; a test must not leave them behind (the runner removes it too).
        if invocation.private_dir is not None:
            shutil.rmtree(invocation.private_dir, ignore_errors=True)


def run_prepared(
    tool: str,
    scenario: Scenario,
    invocation: Invocation,
    *,
    timeout: float | None = None,
    on_start: Callable[[int], None] | None = None,
) -> EngineRun:
    """Run what ``tool``'s prepare made (e.g. with engine-specific options) and parse it."""
    run = run_invocation(invocation, timeout=timeout, on_start=on_start)
    return EngineRun(get_engine(tool).parse(scenario, invocation, run), invocation, run)


def run_engine(
    tool: str, scenario: Scenario, workdir: Path, *, timeout: float | None = None
) -> EngineRun:
    """Prepare ``scenario`` for ``tool`` in ``workdir``, run it and parse its output."""
    invocation = get_engine(tool).prepare(scenario, workdir)
    return run_prepared(tool, scenario, invocation, timeout=timeout)


def http_scenario(
    url: str, *paths: str, shape: LoadShape, name: str = "engine-test", **fields: Any
) -> Scenario:
    """GET ``paths`` (``/health`` when none) on ``url``; ``fields`` are other Scenario fields."""
    return Scenario(
        name=name,
        base_url=url,
        endpoints=[Endpoint(path=p) for p in (paths or ("/health",))],
        shape=shape,
        **fields,
    )
