"""The requests of the config file: endpoints, the login step and the WebSocket flow.

A body may be written as a YAML mapping or list: it is sent as JSON, with a
``Content-Type: application/json`` header unless one is given.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from orchestrator.errors import ConfigError
from orchestrator.scenarios import Endpoint, HttpMethod, WsFlow, WsMessage


def serialise_body(value: object) -> object:
    """Bodies may be written as YAML mappings/lists: they are sent as JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if value is not None and not isinstance(value, str):
        raise ValueError("body must be text or a mapping (sent as JSON)")
    return value


Body = Annotated[str | None, BeforeValidator(serialise_body)]


def _json_headers(body: object, headers: dict[str, str]) -> dict[str, str]:
    if isinstance(body, dict | list) and not any(k.lower() == "content-type" for k in headers):
        return {**headers, "Content-Type": "application/json"}
    return headers


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BodyRequest(Strict):
    """Shared by endpoints and the login step: a mapping body is sent as JSON."""

    method: HttpMethod = "GET"
    path: str = Field(min_length=1)
    body: Body = None
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def add_json_header(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("headers", {}), dict):
            return {**data, "headers": _json_headers(data.get("body"), data.get("headers", {}))}
        return data


class EndpointConfig(BodyRequest):
    weight: int = Field(default=1, ge=1, le=100)

    def to_endpoint(self, name: str) -> Endpoint:
        return Endpoint(name=name, **self.model_dump())


class LoginConfig(BodyRequest):
    """A request made once before the load to obtain a token for every later request."""

    method: HttpMethod = "POST"
    token_path: str = Field(
        default="token", description="Dotted path to the token in the JSON response."
    )
    header: str = "Authorization"
    template: str = "Bearer {token}"

    @field_validator("template")
    @classmethod
    def check_template(cls, value: str) -> str:
        if "{token}" not in value:
            raise ValueError("template must contain {token}")
        return value

    def extract_token(self, response: Any) -> str:
        """The token at ``token_path`` of the decoded JSON response."""
        value = response
        for key in self.token_path.split("."):
            if isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            elif isinstance(value, dict) and key in value:
                value = value[key]
            else:
                raise ConfigError(f"login response has no {self.token_path!r}")
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            raise ConfigError(f"login response's {self.token_path!r} is not a token")
        return str(value)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {self.header: self.template.replace("{token}", token)}


class WsMessageConfig(Strict):
    send: Body = Field(description="Text frame; a mapping is sent as JSON.")
    think: float = Field(default=0.0, ge=0, description="Seconds to wait after the reply.")
    expect_reply: bool = True

    @field_validator("send")
    @classmethod
    def not_empty(cls, value: str | None) -> str:
        if not value:
            raise ValueError("send needs a message")
        return value


class WsFlowConfig(Strict):
    path: str = "/ws"
    headers: dict[str, str] = Field(default_factory=dict)
    messages: list[WsMessageConfig] = Field(min_length=1)
    loops: int | Literal["fill"] = Field(
        default="fill",
        description="Times each connection repeats the messages; 'fill': for the scenario's "
        "whole length.",
    )

    @field_validator("loops")
    @classmethod
    def positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("loops must be >= 1 or 'fill'")
        return value

    def to_flow(self, loops: int) -> WsFlow:
        messages = [
            WsMessage(payload=m.send or "", think=m.think, expect_reply=m.expect_reply)
            for m in self.messages
        ]
        return WsFlow(path=self.path, headers=self.headers, messages=messages, loops=loops)
