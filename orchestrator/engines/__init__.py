"""The engines: the only list of load tools orchestrate drives.

Config validation, ``--tool`` help and errors, ``tools doctor``, ``import`` and the suites'
default engine per transport all read :data:`ENGINES`. Adding a fifth engine is one new
package satisfying :class:`orchestrator.engines.base.Engine`, one line here, one test file
(see the README, "Adding an engine").

Where a tool is still named outside its package, on purpose:

- k6's execution segments are the only way to split one test across machines, so sharding
  (``--shards``, ``--agent``, ``orchestrate agent``, ``k8s render``) lives in
  :mod:`orchestrator.engines.k6` and the planner and workflow dispatch a sharded scenario to
  it by that package's name; ``orchestrate merge`` reads raw k6 output through the same
  package.
- A database scenario's pool monitor runs beside whichever engine loads the database; it
  shares only the URL parser (:mod:`orchestrator.database_url`), and pgbench's query
  scripts are checked at planning time through the pgbench package.
- :mod:`orchestrator.tools` installs the Node packages (autocannon, Artillery) that two
  engines run on; field descriptions and docstrings name tools where they document a
  tool's own figure (k6 ``dropped_iterations``, autocannon workers).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from orchestrator.engines.base import Engine
    from orchestrator.models import Transport
    from orchestrator.scenarios import Scenario

# Name -> module. Modules are imported on first use so that `orchestrate --help` stays fast.
ENGINES: dict[str, str] = {
    "autocannon": "orchestrator.engines.autocannon",
    "artillery": "orchestrator.engines.artillery",
    "k6": "orchestrator.engines.k6",
    "pgbench": "orchestrator.engines.pgbench",
}


def known_tools() -> list[str]:
    return sorted(ENGINES)


def get_engine(tool: str) -> Engine:
    try:
        module = ENGINES[tool]
    except KeyError:
        raise ConfigError(
            f"unknown tool {tool!r}: choose one of {', '.join(known_tools())}"
        ) from None
    return cast("Engine", importlib.import_module(module))


def all_engines() -> list[Engine]:
    return [get_engine(name) for name in known_tools()]


def engines_for(transport: Transport) -> list[str]:
    return [e.NAME for e in all_engines() if transport in e.TRANSPORTS]


def default_engine(transport: Transport) -> str:
    """The engine a scenario runs on when it names none."""
    # One at a time, in registry order: a run imports the engines it looked at, not all four.
    for name in ENGINES:
        engine = get_engine(name)
        if transport in engine.DEFAULT_FOR:
            return engine.NAME
    raise ConfigError(f"no engine runs {transport} load")


def check_supports(tool: str, scenario: Scenario) -> Engine:
    engine = get_engine(tool)
    if scenario.protocol not in engine.TRANSPORTS:
        able = engines_for(scenario.protocol)
        raise ConfigError(
            f"{tool} cannot run {scenario.protocol} load (scenario {scenario.name!r}); "
            f"use one of: {', '.join(able)}"
        )
    return engine


def require_tool(tool: str, scenario: Scenario) -> Engine:
    """Fail before anything starts when the tool cannot run this scenario or is missing."""
    engine = check_supports(tool, scenario)
    engine.executable()
    return engine
