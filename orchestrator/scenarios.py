"""What load to put on a target, independent of the engine that puts it there.

A scenario says the protocol, the endpoints or WebSocket flow, and the load shape
(stages in the style of k6: each stage moves linearly from the previous level to its
``target`` over its ``duration``). Each adapter maps it natively onto its tool.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from orchestrator.db_models import QueryType
from orchestrator.flows import Flow
from orchestrator.models import Transport, WorkloadModel


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


# Written in any case ("post"), kept upper case.
HttpMethod = Annotated[
    Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], BeforeValidator(_upper)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(Strict):
    name: str | None = None
    method: HttpMethod = "GET"
    path: str = Field(description="Path below the scenario's base URL, or a full URL.")
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    weight: int = Field(default=1, ge=1, le=100)

    @property
    def label(self) -> str:
        return self.name or f"{self.method} {self.path}"


def unique_names(labels: list[str]) -> list[str]:
    """The labels, the second and later of equal ones numbered (``GET /x #2``)."""
    seen: dict[str, int] = {}
    names: list[str] = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        names.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return names


class Stage(Strict):
    duration: float = Field(gt=0, description="Seconds.")
    target: int = Field(ge=0, description="Users (closed model) or arrivals/s (open model).")


class LoadShape(Strict):
    model: WorkloadModel = "closed"
    start: int | None = Field(
        default=None,
        ge=0,
        description="Level at t=0; default: the first stage's target (the first stage holds).",
    )
    stages: list[Stage] = Field(min_length=1)

    @classmethod
    def constant(cls, level: int, duration: float, model: WorkloadModel = "closed") -> LoadShape:
        return cls(model=model, stages=[Stage(duration=duration, target=level)])

    @property
    def initial(self) -> int:
        return self.stages[0].target if self.start is None else self.start

    @property
    def total_duration(self) -> float:
        return sum(stage.duration for stage in self.stages)

    @property
    def peak(self) -> int:
        return max([self.initial, *(stage.target for stage in self.stages)])

    def segments(self) -> list[tuple[float, int, int]]:
        """(duration, from_level, to_level) for every stage."""
        out: list[tuple[float, int, int]] = []
        level = self.initial
        for stage in self.stages:
            out.append((stage.duration, level, stage.target))
            level = stage.target
        return out

    def describe(self) -> str:
        """The shape in words, as it will run: '0->50 users in 10 s, 50 for 290 s'."""
        unit = "users" if self.model == "closed" else "arrivals/s"
        segments = self.segments()
        if len(segments) > 4:
            return (
                f"{len(segments)} stages from {self.initial} to a peak of {self.peak} {unit} "
                f"over {_seconds(self.total_duration)}"
            )
        parts = [
            f"{high} {unit} for {_seconds(d)}" if low == high else f"{low}->{high} in {_seconds(d)}"
            for d, low, high in segments
        ]
        return ", ".join(parts)

    def steps(self, step_seconds: float = 2.0) -> list[tuple[float, int]]:
        """Constant-level steps approximating the shape, for engines with no native ramp.

        A hold stays one step (it must really hold for its whole time); a ramp becomes
        steps of about ``step_seconds`` whose levels climb to the stage's target. Levels of
        0 are kept: they are pauses (e.g. after a spike) that the engine must honour.
        """
        out: list[tuple[float, int]] = []
        for duration, low, high in self.segments():
            if low == high:
                out.append((duration, high))
                continue
            count = max(1, min(abs(high - low), math.ceil(duration / step_seconds)))
            for i in range(1, count + 1):
                level = round(low + (high - low) * i / count)
                out.append((duration / count, level))
        merged: list[tuple[float, int]] = []
        for duration, level in out:
            if merged and merged[-1][1] == level:
                merged[-1] = (merged[-1][0] + duration, level)
            else:
                merged.append((duration, level))
        return merged


class WsMessage(Strict):
    payload: str = Field(description="Text frame to send (usually JSON).")
    think: float = Field(default=0.0, ge=0, description="Seconds to wait after the reply.")
    expect_reply: bool = True


class WsFlow(Strict):
    path: str = "/ws"
    headers: dict[str, str] = Field(default_factory=dict)
    messages: list[WsMessage] = Field(min_length=1)
    loops: int = Field(default=1, ge=1, description="Times each user repeats the messages.")

    @property
    def message_names(self) -> list[str]:
        """What results call each message (its round trips are that "endpoint"): the
        JSON payload's ``type``, else ``message N``; numbered when two share one."""
        labels = []
        for number, message in enumerate(self.messages, start=1):
            try:
                payload = json.loads(message.payload)
            except ValueError:
                payload = None
            kind = payload.get("type") if isinstance(payload, dict) else None
            labels.append(kind if isinstance(kind, str) and kind else f"message {number}")
        return unique_names(labels)


class SqlFile(Strict):
    """A user's own SQL script (pgbench syntax) and its weight in the mix."""

    path: Path
    weight: int = Field(default=1, ge=0)


class PoolInFront(Strict):
    """What the pool monitor found at a database URL before the load (set by the run)."""

    source: Literal["postgres", "pgbouncer"]
    pool_mode: str | None = None
    max_prepared_statements: int | None = None


class Scenario(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    protocol: Transport = "http"
    base_url: str
    endpoints: list[Endpoint] = Field(default_factory=list)
    ws: WsFlow | None = None
    flow: Flow | None = Field(
        default=None, description="A user journey: its steps are the endpoints, in order."
    )
    shape: LoadShape
    pipelining: int = Field(default=1, ge=1, le=128)
    workers: int = Field(default=0, ge=0, le=64, description="autocannon worker threads.")
    timeout: float = Field(default=10.0, gt=0, description="Per-request timeout (s).")
    max_rate: float | None = Field(
        default=None, gt=0, description="Cap on total requests per second (closed model)."
    )
    think_time: float = Field(default=0.0, ge=0, description="Pause between a user's requests (s).")
    shards: int = Field(
        default=1,
        ge=1,
        le=64,
        description="k6 instances sharing the load (execution segments), merged exactly.",
    )
    stop_when_error_rate: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Stop the run (percent): after a constant-load step in which more than "
        "this share of requests failed, run no further steps (a stress test's breaking "
        "point). Engines that run native ramps ignore it with a warning.",
    )
    # The database leg (postgres scenarios only).
    query_type: QueryType | None = Field(
        default=None, description="Database workload; None: the engine's default (mixed)."
    )
    query_weights: dict[str, int] | None = Field(
        default=None, description="query_type 'mixed': weight of read, write, transaction."
    )
    sql_files: list[SqlFile] = Field(default_factory=list, description="The user's own scripts.")
    stop_when_p95: float | None = Field(
        default=None, gt=0, description="Stop after a constant-load step whose p95 is over it (ms)."
    )
    stop_when_pool_wait: float | None = Field(
        default=None,
        ge=0,
        description="Stop after a step in which a client waited longer than this (s) for a "
        "server connection (PgBouncer); 0: any wait.",
    )
    pool: PoolInFront | None = Field(
        default=None, description="Set by the run from the pool monitor, not by a config."
    )

    @field_validator("base_url")
    @classmethod
    def check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https", "ws", "wss", "postgres", "postgresql"}:
            raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {value!r}")
        if not parts.hostname:
            raise ValueError(f"URL has no host: {value!r}")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port out of range 1-65535 in {value!r}")
        return value

    @model_validator(mode="after")
    def check_protocol_parts(self) -> Scenario:
        if self.protocol == "http" and not self.endpoints:
            raise ValueError("an http scenario needs at least one endpoint")
        if self.flow is not None and self.protocol != "http":
            raise ValueError("a flow is for http scenarios")
        if self.protocol == "ws" and self.ws is None:
            raise ValueError("a ws scenario needs a 'ws' flow")
        database_only = ("query_type", "query_weights", "sql_files", "stop_when_p95",
                         "stop_when_pool_wait")  # fmt: skip
        given = [name for name in database_only if getattr(self, name) not in (None, [])]
        if self.protocol != "postgres" and given:
            raise ValueError(f"{', '.join(given)}: for postgres scenarios only")
        return self

    @property
    def endpoint_names(self) -> list[str]:
        """What results call each endpoint: its label, numbered when two share one."""
        return unique_names([endpoint.label for endpoint in self.endpoints])

    @property
    def request_names(self) -> list[str]:
        """What a result breaks the run down by (its ``endpoints``): the endpoints' names,
        or for a WebSocket flow those of its messages that expect a reply."""
        if self.protocol == "ws" and self.ws is not None:
            names = zip(self.ws.message_names, self.ws.messages, strict=True)
            return [name for name, message in names if message.expect_reply]
        return self.endpoint_names if self.protocol == "http" else []

    def request_targets(self) -> dict[str, tuple[str | None, str | None]]:
        """Each of :attr:`request_names` with its method and path (None for a message)."""
        if self.protocol != "http":
            return dict.fromkeys(self.request_names, (None, None))
        return {
            name: (e.method, self.request_path(e))
            for name, e in zip(self.endpoint_names, self.endpoints, strict=True)
        }

    def url_for(self, endpoint: Endpoint) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", endpoint.path.lstrip("/"))

    def request_path(self, endpoint: Endpoint) -> str:
        """The path (and query) the endpoint's requests ask for on their origin."""
        parts = urlsplit(self.url_for(endpoint))
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def ws_url(self) -> str:
        assert self.ws is not None
        parts = urlsplit(self.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        base = parts._replace(scheme=scheme, path="", query="", fragment="").geturl()
        return base.rstrip("/") + "/" + self.ws.path.lstrip("/")


def _seconds(value: float) -> str:
    if value >= 120:
        return f"{value / 60:g} min"
    return f"{value:.3g} s"
