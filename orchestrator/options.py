"""The options of one load test, defined once: ``orchestrate run`` and ``api.load_test``.

The CLI builds a :class:`RunOptions` from its parameters (their help and defaults come from
here) and the Python API validates its keyword arguments through it, so a new option is one
field here (plus its flag in :mod:`orchestrator.cli`). :meth:`RunOptions.planned` turns the
options into the one scenario of the suite that ``run`` is.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.config_file import format_validation
from orchestrator.engines import ENGINES, default_engine, known_tools
from orchestrator.errors import ConfigError
from orchestrator.models import Transport
from orchestrator.plan import PlannedScenario
from orchestrator.scenarios import (
    Endpoint,
    HttpMethod,
    LoadShape,
    Scenario,
    Stage,
    WsFlow,
    WsMessage,
)
from orchestrator.sla import ThresholdSpec, parse_threshold
from orchestrator.sla_endpoints import check_endpoint_names
from orchestrator.targets import TargetSpec

DEFAULT_URL = "http://127.0.0.1:8000/health"
DEFAULT_WS_MESSAGES = ('{"type":"ping"}',)


def parse_headers(raw: Any) -> Any:
    """``['Name: value', ...]`` (the CLI's form) as a mapping; a mapping as it is."""
    if not isinstance(raw, list | tuple):
        return raw
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = str(item).partition(":")
        if not sep or not name.strip():
            raise ValueError(f"bad header {item!r}: expected 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def transport_of(url: str) -> Transport:
    scheme = urlsplit(url).scheme
    if scheme in {"ws", "wss"}:
        return "ws"
    if scheme.startswith("postgres"):
        return "postgres"
    return "http"


class RunOptions(BaseModel):
    """One load test against one URL. Field descriptions are the CLI's ``--help``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(DEFAULT_URL, description="Target URL (http://, ws://, postgres://).")
    tool: str | None = Field(
        None,
        description=f"Engine: {', '.join(known_tools())} "
        "(default: the default engine for the URL's scheme).",
    )
    connections: int = Field(10, ge=1, description="Concurrent connections / users.")
    duration: float = Field(10.0, ge=0.1, description="Seconds.")
    method: HttpMethod = Field("GET", description="HTTP method.")
    headers: dict[str, str] = Field(default_factory=dict, description="'Name: value', repeatable.")
    body: str | None = Field(None, description="Request body, or @FILE to read one.")
    messages: list[str] = Field(
        default_factory=list,
        description="WebSocket message to send (repeatable; ws:// URLs).",
    )
    ramp: float = Field(0.0, ge=0, description="Seconds to ramp up first.")
    rate: float | None = Field(
        None, gt=0, description="Cap on total req/s (with --open: the arrival rate)."
    )
    open_model: bool = Field(
        False, description="Open model: --rate arrivals/s whatever the latency."
    )
    pipelining: int = Field(1, ge=1, description="HTTP requests in flight per connection.")
    workers: int = Field(0, ge=0, description="Generator worker threads (0: one process).")
    timeout: float = Field(10.0, gt=0, description="Per-request timeout (s).")
    thresholds: list[ThresholdSpec] = Field(
        default_factory=list,
        description="SLA such as 'p95 < 500ms' (repeatable); exit 1 if broken.",
    )
    pid: int | None = Field(None, gt=0, description="PID of the target to sample.")
    container: str | None = Field(
        None, description="Docker container (name or id) to sample as the target."
    )
    target_cmd: str | None = Field(None, description="Start the target with this command.")
    sample_interval: float = Field(1.0, ge=0.05, description="Seconds between samples.")
    name: str = Field("run", description="Scenario name in the report.")
    report_dir: Path = Field(Path("load-reports"), description="Where report directories go.")
    quiet: bool = Field(False, description="Hide the tool's output.")
    shards: int = Field(
        1, ge=1, le=64, description="k6: split the load over N k6 instances, merged exactly."
    )
    agents: list[str] = Field(
        default_factory=list,
        description="k6: run the shards on these `orchestrate agent` URLs (repeatable).",
    )
    baseline: Path | None = Field(
        None, description="A report directory this run must be no worse than (exit 1 if so)."
    )
    json_output: bool = Field(
        False, description="Print summary.json to stdout (tables go to stderr), for scripts."
    )
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts besides loopback this run may load (wildcards: *.staging.example.com).",
    )

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> RunOptions:
        """Validated options; ConfigError (exit 2) naming each bad field otherwise."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            raise ConfigError(format_validation(exc)) from None

    @field_validator("tool")
    @classmethod
    def _known_tool(cls, tool: str | None) -> str | None:
        if tool is not None and tool not in ENGINES:
            raise ValueError(f"unknown tool {tool!r}: choose one of {', '.join(known_tools())}")
        return tool

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, raw: Any) -> Any:
        return parse_headers(raw)

    @field_validator("body")
    @classmethod
    def _read_body(cls, body: str | None) -> str | None:
        if body is None or not body.startswith("@"):
            return body
        path = Path(body[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read body file {path}: {exc.strerror or exc}") from exc

    @field_validator("thresholds", mode="before")
    @classmethod
    def _scenario_thresholds(cls, raw: Any) -> Any:
        if not isinstance(raw, list | tuple):
            return raw
        try:
            # A single run has no suite: suite-wide metrics are refused here.
            return [parse_threshold(item, scope="scenario") for item in raw]
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _consistent(self) -> RunOptions:
        if self.open_model and self.rate is None:
            raise ValueError("--open (open_model) needs --rate (rate): arrivals per second")
        given = [f"--{n.replace('_', '-')} ({n})" for n in ("pid", "container", "target_cmd")
                 if getattr(self, n) is not None]  # fmt: skip
        if len(given) > 1:
            raise ValueError(f"give only one of {' and '.join(given)}")
        return self

    @property
    def transport(self) -> Transport:
        return transport_of(self.url)

    def scenario(self) -> Scenario:
        """The one scenario these options describe; ConfigError if it is not a valid one."""
        parts = urlsplit(self.url)
        transport = self.transport
        level = round(self.rate) if self.open_model and self.rate else self.connections
        stages = [Stage(duration=self.duration, target=level)]
        if self.ramp > 0:
            stages.insert(0, Stage(duration=self.ramp, target=level))
        # A database URL names the database in its path: it is the whole target.
        base = self.url if transport == "postgres" else parts._replace(path="", query="").geturl()
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        try:
            return Scenario(
                name=self.name,
                protocol=transport,
                base_url=base,
                endpoints=[
                    Endpoint(method=self.method, path=path, headers=self.headers, body=self.body)
                ]
                if transport == "http"
                else [],
                ws=WsFlow(
                    path=path,
                    headers=self.headers,
                    messages=[WsMessage(payload=m) for m in self.messages or DEFAULT_WS_MESSAGES],
                    loops=1,  # closed model: each user repeats the flow until the end
                )
                if transport == "ws"
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

    def planned(self) -> PlannedScenario:
        """The one scenario of the suite that ``orchestrate run`` is, with its engine and SLA.

        No scenario of a single run is optional: a missing tool stops it before it starts.
        """
        scenario = self.scenario()
        check_endpoint_names(self.thresholds, scenario, "--threshold")
        return PlannedScenario(
            scenario=scenario,
            tool=self.tool or default_engine(scenario.protocol),
            thresholds=list(self.thresholds),
            description="",
        )

    def target_spec(self) -> TargetSpec:
        command = shlex.split(self.target_cmd) if self.target_cmd else None
        return TargetSpec(pid=self.pid, command=command, container=self.container)
