"""What to run: a suite planned into concrete scenarios, each with its tool and SLA gates.

A suite is a list of scenario names. Each name is a built-in scenario, a config scenario,
or both (the config's fields override the built-in's). Planning turns each into a concrete
:class:`Scenario` against the config's target, with its tool and SLA gates; ``scale``
shortens every stage (never the user counts) for a quick rehearsal of a long suite.
``orchestrate run`` plans a suite of one (:mod:`orchestrator.options`); every command then
goes through the same steps (:mod:`orchestrator.workflow`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.config_file import format_validation
from orchestrator.engines import default_engine, get_engine
from orchestrator.errors import ConfigError
from orchestrator.flows import FlowConfig
from orchestrator.models import Transport
from orchestrator.scenarios import Endpoint, LoadShape, Scenario, SqlFile, Stage
from orchestrator.sla import ThresholdSpec
from orchestrator.sla_endpoints import check_endpoint_names

if TYPE_CHECKING:
    from orchestrator.config import Config, ScenarioConfig, WsFlowConfig

# The config's models and the built-in scenarios (built from them) are imported by the
# functions that plan a suite: `orchestrate run` plans its one scenario without them.

# Scenario fields a config scenario passes to the Scenario as they are.
PASSED_THROUGH = (
    "think_time", "timeout", "max_rate", "pipelining", "workers", "stop_when_error_rate",
    "shards", "query_type", "query_weights", "stop_when_p95", "stop_when_pool_wait",
)  # fmt: skip


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlannedScenario(Frozen):
    scenario: Scenario
    tool: str
    thresholds: list[ThresholdSpec]
    description: str
    # An external program the scenario needs (an engine the OS provides): without it, the
    # scenario is skipped with the reason instead of stopping the suite.
    requires: str | None = None

    @property
    def name(self) -> str:
        return self.scenario.name


class Suite(Frozen):
    name: str
    scenarios: list[PlannedScenario]
    suite_thresholds: list[ThresholdSpec]
    scale: float = 1.0  # every stage's duration multiplied by this (see scale_shape)
    # Scenarios of the suite left out by --only/--skip, with their transport: a suite-wide
    # gate about only those is not applicable (suite_gates.evaluate_suite).
    left_out: dict[str, Transport] = {}

    @property
    def total_duration(self) -> float:
        """Seconds of load (tool start-up and target start not counted)."""
        return sum(p.scenario.shape.total_duration for p in self.scenarios)


def suite_names(config: Config) -> list[str]:
    from orchestrator.builtins import BUILTIN_SUITES

    return sorted({*BUILTIN_SUITES, *config.suites})


def scenario_names(config: Config) -> list[str]:
    from orchestrator.builtins import BUILTIN_SCENARIOS

    return sorted({*BUILTIN_SCENARIOS, *config.scenarios})


def resolve_scenario(name: str, config: Config) -> ScenarioConfig:
    """The config's scenario over the built-in of the same name (either may be absent)."""
    from orchestrator.builtins import BUILTIN_SCENARIOS

    builtin, own = BUILTIN_SCENARIOS.get(name), config.scenarios.get(name)
    if own is not None:
        return own if builtin is None else own.merged_over(builtin)
    if builtin is None:
        known = ", ".join(scenario_names(config))
        raise ConfigError(f"unknown scenario {name!r}; known: {known}")
    return builtin


def scale_shape(shape: LoadShape, scale: float) -> LoadShape:
    """Every stage ``scale`` times as long (at least 1 s); the levels stay as they are."""
    if scale == 1.0:
        return shape
    stages = [
        Stage(duration=max(1.0, round(s.duration * scale, 3)), target=s.target)
        for s in shape.stages
    ]
    return shape.model_copy(update={"stages": stages})


def _endpoints(name: str, spec: ScenarioConfig, config: Config) -> list[Endpoint]:
    from orchestrator.builtins import PREFERRED_ENDPOINTS

    available = config.endpoints
    if spec.endpoints is not None:
        unknown = [e for e in spec.endpoints if e not in available]
        if unknown:
            raise ConfigError(
                f"scenarios.{name}.endpoints: unknown endpoint(s) {', '.join(unknown)}; "
                f"known: {', '.join(available) or 'none'}"
            )
        names = list(spec.endpoints)
    else:
        preferred = PREFERRED_ENDPOINTS.get(name, ())
        names = (
            list(preferred) if preferred and set(preferred) <= available.keys() else list(available)
        )
    return [available[e].to_endpoint(e) for e in names]


def _flow(name: str, spec: ScenarioConfig, config: Config) -> FlowConfig | None:
    """The scenario's own flow; else, for a built-in of the seed's, the seed's journey when
    the config defines its endpoints and the scenario names no ``endpoints:`` (nor says
    ``journey: false``)."""
    from orchestrator.builtins import JOURNEY_ENDPOINTS, JOURNEY_SCENARIOS, seed_journey

    if spec.flow is not None:
        return spec.flow
    if name not in JOURNEY_SCENARIOS or spec.endpoints is not None or spec.journey is False:
        return None
    if not set(JOURNEY_ENDPOINTS) <= config.endpoints.keys():
        return None
    return seed_journey(config.login)


def fit_message_rate(flow: WsFlowConfig, rate: float) -> WsFlowConfig:
    """Scale the flow's think times so each connection sends about ``rate`` messages/s."""
    loop_seconds = len(flow.messages) / rate
    thinks = [m.think for m in flow.messages]
    total = sum(thinks)
    new = (
        [t * loop_seconds / total for t in thinks]
        if total
        else [loop_seconds / len(thinks)] * len(thinks)
    )
    messages = [
        m.model_copy(update={"think": round(t, 3)}) for m, t in zip(flow.messages, new, strict=True)
    ]
    return flow.model_copy(update={"messages": messages})


def _loops(name: str, flow: WsFlowConfig, duration: float) -> int:
    if flow.loops != "fill":
        return flow.loops
    loop_seconds = sum(m.think for m in flow.messages)
    if loop_seconds <= 0:
        raise ConfigError(f"scenarios.{name}.ws.loops: 'fill' needs think time in the flow")
    return max(1, math.ceil(duration / loop_seconds))


def _sql_files(spec: ScenarioConfig, config: Config) -> list[SqlFile]:
    """The scenario's own SQL files, relative paths read from the config file's folder."""
    folder = config.source.parent if config.source is not None else Path.cwd()
    files = spec.sql_files or []
    return [f.model_copy(update={"path": folder / f.path.expanduser()}) for f in files]


def _transport(spec: ScenarioConfig) -> Transport:
    if spec.protocol is not None:
        return spec.protocol
    if spec.tool is not None:
        transports = get_engine(spec.tool).TRANSPORTS
        if len(transports) == 1:
            return next(iter(transports))
    return "ws" if spec.ws else "http"


def plan_scenario(
    name: str, spec: ScenarioConfig, config: Config, scale: float = 1.0
) -> PlannedScenario:
    """A runnable scenario from its config; ConfigError naming ``scenarios.<name>``."""
    shape = spec.load_shape()
    if shape is None:
        raise ConfigError(f"scenarios.{name}: needs a shape, or users and hold")
    shape = scale_shape(shape, scale)
    protocol = _transport(spec)
    tool = spec.tool or default_engine(protocol)
    fields: dict[str, Any] = {k: v for k in PASSED_THROUGH if (v := getattr(spec, k)) is not None}
    fields.update(name=name, protocol=protocol, shape=shape, base_url=config.target.base_url)
    flow = _flow(name, spec, config) if protocol == "http" else None
    if flow is not None:
        from orchestrator.flow_plan import flow_endpoints, resolve_flow

        folder = config.source.parent if config.source is not None else Path.cwd()
        fields["flow"] = resolve_flow(name, flow, dict(config.endpoints), folder)
        fields["endpoints"] = flow_endpoints(fields["flow"])
    elif protocol == "http":
        fields["endpoints"] = _endpoints(name, spec, config)
    elif protocol == "ws":
        ws = spec.ws or config.ws
        if spec.ws_message_rate is not None:
            ws = fit_message_rate(ws, spec.ws_message_rate)
        fields["ws"] = ws.to_flow(_loops(name, ws, shape.total_duration))
    else:
        fields["base_url"] = config.database.url
        fields["sql_files"] = _sql_files(spec, config)
    try:
        scenario = Scenario.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(f"scenarios.{name}: {format_validation(exc)}") from None
    thresholds = list(spec.thresholds or [])
    check_endpoint_names(thresholds, scenario, f"scenarios.{name}.thresholds")
    if scenario.shards > 1:
        from orchestrator.engines.k6.sharding import check_shardable

        try:
            check_shardable(tool, scenario)
        except ConfigError as exc:
            raise ConfigError(f"scenarios.{name}.shards: {exc}") from None
    if protocol == "postgres":
        # The query choices against the shipped scripts, before anything starts.
        from orchestrator.engines.pgbench import query_scripts

        try:
            query_scripts(scenario)
        except ConfigError as exc:
            raise ConfigError(f"scenarios.{name}: {exc}") from None
    return PlannedScenario(
        scenario=scenario,
        tool=tool,
        thresholds=thresholds,
        description=spec.description or "",
        requires=tool if get_engine(tool).EXTERNAL else None,
    )


def _suite_scenarios(name: str, config: Config) -> list[str]:
    from orchestrator.builtins import BUILTIN_SUITES

    if name in config.suites:
        return list(config.suites[name].scenarios)
    if name in BUILTIN_SUITES:
        return BUILTIN_SUITES[name]
    raise ConfigError(f"unknown suite {name!r}; known: {', '.join(suite_names(config))}")


def _suite_thresholds(name: str, config: Config) -> list[ThresholdSpec]:
    own = config.suites.get(name)
    if own is not None and own.thresholds is not None:
        return list(own.thresholds)
    # The seed's suite-wide targets are for the full load; a smoke run cannot meet them.
    return [] if name == "ci" else list(config.thresholds)


def _pick(names: list[str], only: Sequence[str], skip: Sequence[str], suite: str) -> list[str]:
    unknown = [n for n in (*only, *skip) if n not in names]
    if unknown:
        raise ConfigError(
            f"suite {suite!r} has no scenario {', '.join(map(repr, unknown))}; "
            f"its scenarios: {', '.join(names)}"
        )
    picked = [n for n in names if (not only or n in only) and n not in skip]
    if not picked:
        raise ConfigError(f"--only/--skip leave no scenario of suite {suite!r} to run")
    return picked


def build_suite(
    name: str,
    config: Config,
    *,
    scale: float = 1.0,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> Suite:
    """The planned scenarios of suite ``name``; ConfigError before anything starts."""
    if not scale > 0:
        raise ConfigError(f"--scale must be > 0, got {scale}")
    every = _suite_scenarios(name, config)
    names = _pick(every, only, skip, name)
    planned = [plan_scenario(n, resolve_scenario(n, config), config, scale) for n in names]
    left_out = {n: _transport(resolve_scenario(n, config)) for n in every if n not in names}
    return Suite(
        name=name,
        scenarios=planned,
        suite_thresholds=_suite_thresholds(name, config),
        scale=scale,
        left_out=left_out,
    )


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The config (see :func:`orchestrator.config.read_config`) with its cross-references
    checked: suites name known scenarios, scenarios known endpoints and a shape."""
    from orchestrator.config import read_config

    config = read_config(path, env)
    problems = check_config(config)
    if problems:
        raise ConfigError(f"{config.label}: {'; '.join(problems)}")
    return config


def check_config(config: Config) -> list[str]:
    """Problems (each naming its key path) in what the config defines: suites naming
    unknown scenarios, scenarios naming unknown endpoints or missing a shape."""
    problems: list[str] = []
    known = scenario_names(config)
    for suite, spec in config.suites.items():
        problems += [
            f"suites.{suite}.scenarios.{i}: unknown scenario {n!r}; known: {', '.join(known)}"
            for i, n in enumerate(spec.scenarios)
            if n not in known
        ]
    for name in config.scenarios:
        try:
            plan_scenario(name, resolve_scenario(name, config), config)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems
