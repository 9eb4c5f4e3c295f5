"""The config file ``orchestrate.yaml``: target, login, endpoints, scenarios, suites, SLAs.

Everything is validated before anything starts: unknown keys are rejected and every error
names its key path, all in one line. ``${VAR}`` in a value reads the environment (for
secrets; ``$${`` writes a literal ``${``); the values read are kept so writers can redact
them. With no file, the defaults describe the reference target and the seed plan's API.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.config_file import format_validation, read_yaml, substitute_env
from orchestrator.config_requests import (
    Body,
    BodyRequest,
    EndpointConfig,
    LoginConfig,
    Strict,
    WsFlowConfig,
    WsMessageConfig,
    serialise_body,
)
from orchestrator.db_config import DatabaseConfig, DatabaseLoadConfig
from orchestrator.errors import ConfigError
from orchestrator.flows import FlowConfig
from orchestrator.models import Transport
from orchestrator.redact import remember_secret
from orchestrator.scenarios import LoadShape
from orchestrator.sla import ThresholdSpec
from orchestrator.targets import TargetSpec

# Re-exported: the config's request models are part of its public shape.
__all__ = [
    "Body",
    "BodyRequest",
    "EndpointConfig",
    "LoginConfig",
    "WsFlowConfig",
    "WsMessageConfig",
    "serialise_body",
]

CONFIG_FILE = "orchestrate.yaml"
STARTER_FILE = "orchestrate.example.yaml"
REFERENCE_URL = "http://127.0.0.1:8000"


def _known_tool(value: str) -> str:
    from orchestrator.engines import ENGINES, known_tools

    if value not in ENGINES:
        raise ValueError(f"unknown tool {value!r}: choose one of {', '.join(known_tools())}")
    return value


Tool = Annotated[str, AfterValidator(_known_tool)]
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class TargetConfig(TargetSpec):
    """The service under load: its URL, and how to find or start its process to sample it."""

    base_url: str = REFERENCE_URL

    @field_validator("base_url")
    @classmethod
    def check_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"base_url must be an http(s) URL with a host, got {value!r}")
        return value.rstrip("/")

    def spec(self) -> TargetSpec:
        return TargetSpec.model_validate(self.model_dump(exclude={"base_url"}))


def reference_target() -> TargetConfig:
    return TargetConfig(
        base_url=REFERENCE_URL,
        command=[sys.executable, "-m", "orchestrator.reference_target", "--port", "8000"],
        ready_url=f"{REFERENCE_URL}/health",
    )


def _in_scenario(spec: ThresholdSpec) -> ThresholdSpec:
    if spec.scope != "scenario":
        raise ValueError(f"{spec.metric} is suite-wide: put it in a suite's thresholds")
    return spec


def _in_suite(spec: ThresholdSpec) -> ThresholdSpec:
    if spec.scope != "suite":
        raise ValueError(
            f"{spec.metric} is a per-scenario metric: put it in a scenario's thresholds"
        )
    return spec


ScenarioThreshold = Annotated[ThresholdSpec, AfterValidator(_in_scenario)]
SuiteThreshold = Annotated[ThresholdSpec, AfterValidator(_in_suite)]


class ScenarioConfig(DatabaseLoadConfig):
    """A scenario of the config file; fields left out inherit from a built-in of that name."""

    tool: Tool | None = Field(
        default=None, description="Default: the registry's default engine for the protocol."
    )
    protocol: Transport | None = Field(default=None, description="Default: from the tool/flow.")
    description: str | None = None
    endpoints: list[str] | None = Field(default=None, description="Names; default: all.")
    shape: LoadShape | None = None
    users: int | None = Field(default=None, ge=1, description="Shorthand: users after the ramp.")
    ramp: float | None = Field(default=None, ge=0, description="Shorthand: seconds from 0 up.")
    hold: float | None = Field(default=None, gt=0, description="Shorthand: seconds at full load.")
    ws: WsFlowConfig | None = None
    flow: FlowConfig | None = Field(
        default=None, description="A user journey of steps, looped for the whole shape."
    )
    journey: bool | None = Field(
        default=None,
        description="Built-in HTTP scenarios: run the seed's journey when the config defines "
        "its endpoints (default); false: weighted independent requests.",
    )
    ws_message_rate: float | None = Field(
        default=None,
        gt=0,
        description="Messages/s per connection: the flow's think times are "
        "scaled to send about this many (reply time not counted).",
    )
    thresholds: list[ScenarioThreshold] | None = None
    think_time: float | None = Field(default=None, ge=0)
    timeout: float | None = Field(default=None, gt=0)
    max_rate: float | None = Field(default=None, gt=0)
    pipelining: int | None = Field(default=None, ge=1, le=128)
    workers: int | None = Field(default=None, ge=0, le=64)
    stop_when_error_rate: float | None = Field(
        default=None, gt=0, le=100, description="Percent; see Scenario.stop_when_error_rate."
    )
    shards: int | None = Field(
        default=None, ge=1, le=64, description="k6 only: instances sharing the load."
    )

    @model_validator(mode="after")
    def one_shape(self) -> ScenarioConfig:
        if self.shape is not None and self.users is not None:
            raise ValueError("give either shape or users/ramp/hold, not both")
        if (self.users is None) != (self.hold is None):
            raise ValueError("the shorthand needs both users and hold (ramp is optional)")
        if self.ramp is not None and self.users is None:
            raise ValueError("ramp needs users and hold")
        if self.flow is not None and self.endpoints is not None:
            raise ValueError("give either flow or endpoints, not both")
        return self

    def load_shape(self) -> LoadShape | None:
        if self.shape is not None:
            return self.shape
        if self.users is None or self.hold is None:
            return None
        if not self.ramp:
            return LoadShape.constant(self.users, self.hold)
        return LoadShape.model_validate(
            {
                "start": 0,
                "stages": [
                    {"duration": self.ramp, "target": self.users},
                    {"duration": self.hold, "target": self.users},
                ],
            }
        )

    def merged_over(self, base: ScenarioConfig) -> ScenarioConfig:
        """This scenario's fields over a built-in's; a new shape (or query type) replaces the
        old one whole."""
        given = self.model_dump(exclude_unset=True, by_alias=False)
        update = {k: getattr(self, k) for k in given}
        if {"shape", "users", "ramp", "hold"} & given.keys():
            update = {"shape": None, "users": None, "ramp": None, "hold": None, **update}
        if "query_type" in given:  # a new query type starts from its own weights and files
            update = {"query_weights": None, "sql_files": None, **update}
        return base.model_copy(update=update)


class SuiteConfig(Strict):
    scenarios: list[Name] = Field(min_length=1)
    thresholds: list[SuiteThreshold] | None = Field(
        default=None, description="Suite-wide gates; default: the top-level thresholds."
    )

    @model_validator(mode="before")
    @classmethod
    def from_list(cls, data: Any) -> Any:
        return {"scenarios": data} if isinstance(data, list) else data


def _seed_endpoints() -> dict[str, EndpointConfig]:
    login = {"email": "test@example.com", "password": "TestPassword123!"}
    text = {"text": "What is the Pythagorean theorem?"}
    raw: dict[str, dict[str, Any]] = {
        "health": {"method": "GET", "path": "/health"},
        "login": {"method": "POST", "path": "/api/auth/login", "body": login},
        "session-start": {"method": "POST", "path": "/api/session/start"},
        "livekit-token": {"method": "POST", "path": "/api/livekit/token"},
        "transcription": {"method": "POST", "path": "/api/transcription", "body": text},
        "textbooks-hierarchy": {"method": "GET", "path": "/api/textbooks/hierarchy"},
    }
    return {name: EndpointConfig.model_validate(spec) for name, spec in raw.items()}


def _seed_login() -> LoginConfig:
    body = {"email": "test@example.com", "password": "TestPassword123!"}
    return LoginConfig.model_validate({"path": "/api/auth/login", "body": body})


def _seed_ws_flow() -> WsFlowConfig:
    return WsFlowConfig.model_validate(
        {
            "messages": [
                {"send": {"type": "ping"}, "think": 2},
                {"send": {"type": "student_message", "content": "Hello"}, "think": 5},
                {"send": {"type": "session_update"}, "think": 10},
            ]
        }
    )


def _seed_suite_thresholds() -> list[ThresholdSpec]:
    texts = ["aggregateThroughput > 50/s", "aggregateWsMessageRate > 100/s",
             "memoryDeltaPer100Users < 20MB"]  # fmt: skip
    return [ThresholdSpec.model_validate(t) for t in texts]


class Config(Strict):
    target: TargetConfig = Field(default_factory=reference_target)
    login: LoginConfig | None = Field(default_factory=_seed_login)
    endpoints: dict[Name, EndpointConfig] = Field(default_factory=_seed_endpoints)
    ws: WsFlowConfig = Field(default_factory=_seed_ws_flow)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    scenarios: dict[Name, ScenarioConfig] = Field(default_factory=dict)
    suites: dict[Name, SuiteConfig] = Field(default_factory=dict)
    thresholds: list[SuiteThreshold] = Field(
        default_factory=_seed_suite_thresholds,
        description="Suite-wide gates of the full suite and of config suites.",
    )
    report_dir: Path = Path("load-reports")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts besides loopback that may be loaded (wildcards: *.staging.example.com).",
    )

    _secrets: tuple[str, ...] = PrivateAttr(default=())
    _source: Path | None = PrivateAttr(default=None)
    _label: str = PrivateAttr(default="<defaults>")

    def secrets(self) -> tuple[str, ...]:
        """Values read from ``${VAR}``: writers must mask them."""
        return self._secrets

    @property
    def source(self) -> Path | None:
        """The file this config came from (None: the built-in defaults)."""
        return self._source

    @property
    def label(self) -> str:
        """How errors name this config: its file, or ``<defaults>``."""
        return self._label


def parse_config(
    data: Any, label: str = "<defaults>", env: Mapping[str, str] | None = None
) -> Config:
    """Validate already-loaded YAML data; errors are prefixed with ``label``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a mapping of keys")
    try:
        data, used = substitute_env(data, os.environ if env is None else env)
        config = Config.model_validate(data)
    except ConfigError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(f"{label}: {format_validation(exc)}") from None
    config._label = label
    config._secrets = tuple(dict.fromkeys(v for v in used if v))
    for value in config._secrets:
        remember_secret(value)
    return config


def read_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """The config from ``path``, else ``./orchestrate.yaml``, else the built-in defaults.

    Cross-references (endpoint and scenario names, built-ins included) are checked by
    :func:`orchestrator.plan.load_config`, which the commands use.
    """
    if path is None:
        default = Path.cwd() / CONFIG_FILE
        if not default.is_file():
            return parse_config({}, env=env)
        path, label = default, CONFIG_FILE
    else:
        label = str(path)
    config = parse_config(read_yaml(path, label), label, env)
    config._source = path
    return config


def render_starter_config() -> str:
    """The commented starter file that ``orchestrate init`` writes."""
    return resources.files("tool_configs").joinpath(STARTER_FILE).read_text(encoding="utf-8")
