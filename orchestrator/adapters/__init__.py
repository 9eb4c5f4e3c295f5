"""Registry of tool adapters: adding a tool is one module, one line here, one parser."""

from __future__ import annotations

from orchestrator.adapters.base import Adapter
from orchestrator.errors import ConfigError
from orchestrator.scenarios import Scenario

ADAPTERS: dict[str, Adapter] = {}


def _register() -> None:
    # Imported here so that `orchestrate --help` does not import every adapter.
    from orchestrator.adapters import artillery, autocannon, k6, pgbench

    ADAPTERS.update(
        {"autocannon": autocannon, "artillery": artillery, "k6": k6, "pgbench": pgbench}
    )


def known_tools() -> list[str]:
    if not ADAPTERS:
        _register()
    return sorted(ADAPTERS)


def get_adapter(tool: str) -> Adapter:
    if not ADAPTERS:
        _register()
    try:
        return ADAPTERS[tool]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(f"unknown tool {tool!r}: choose one of {known}") from None


def check_supports(tool: str, scenario: Scenario) -> Adapter:
    adapter = get_adapter(tool)
    if scenario.protocol not in adapter.PROTOCOLS:
        able = sorted(name for name, a in ADAPTERS.items() if scenario.protocol in a.PROTOCOLS)
        raise ConfigError(
            f"{tool} cannot run {scenario.protocol} load (scenario {scenario.name!r}); "
            f"use one of: {', '.join(able)}"
        )
    return adapter
