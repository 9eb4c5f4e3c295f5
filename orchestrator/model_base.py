"""The base of every wire model (camelCase on the wire) and the small types they share."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    """Base for result models: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        ser_json_inf_nan="null",
    )


class Status(StrEnum):
    COMPLETED = "completed"
    TOOL_FAILED = "tool_failed"
    TARGET_FAILED = "target_failed"
    INTERRUPTED = "interrupted"


Transport = Literal["http", "ws", "postgres"]
WorkloadModel = Literal["closed", "open"]
LatencySource = Literal["histogram", "tool_summary", "approximate"]
