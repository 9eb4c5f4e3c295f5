"""Pieces every parser uses to turn counts into a truthful LoadTestResult."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import ParseError
from orchestrator.models import Status
from orchestrator.process import ToolRun

M = TypeVar("M", bound=BaseModel)


class Wire(BaseModel):
    """Base of a tool's output models: read what we need, ignore the rest, never change."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def rate_percent(part: int, total: int) -> float | None:
    return None if total <= 0 else 100.0 * part / total


def per_second(count: int, seconds: float) -> float | None:
    return None if seconds <= 0 else count / seconds


def judge(
    total: int, successful: int, run: ToolRun | None, errors: dict[str, int] | None = None
) -> tuple[Status, str | None]:
    """Status from what was measured; the tool's exit code alone is never the verdict.

    Load tools exit 0 even when every request failed, so a run in which nothing succeeded
    is a target failure; a non-zero exit with data is still a result, flagged as such.
    """
    if run is not None and run.interrupted:
        return Status.INTERRUPTED, "stopped by Ctrl-C; the result holds what was measured"
    if total > 0 and successful == 0:
        kinds = ", ".join(f"{k}={v}" for k, v in sorted((errors or {}).items()) if v)
        return Status.TARGET_FAILED, f"no request succeeded ({kinds or 'all failed'})"
    if run is not None and run.timed_out:
        return Status.TOOL_FAILED, "the tool ran past its time limit and was stopped"
    if run is not None and run.returncode not in (0, None):
        return Status.TOOL_FAILED, run.describe_failure()
    if total == 0:
        return Status.TOOL_FAILED, "the tool made no request"
    return Status.COMPLETED, None


def read_json(path: Path) -> Any:
    """A whole JSON file, or a ParseError naming the file and the line/column it broke at."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ParseError(str(path), "open", exc.strerror or str(exc)) from exc
    if not text.strip():
        raise ParseError(str(path), "line 1", "file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(str(path), f"line {exc.lineno} column {exc.colno}", exc.msg) from exc


def validated(model: type[M], value: Any, path: Path) -> M:
    """``value`` as ``model``, or a ParseError naming the file and the first bad key path."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level"
        raise ParseError(str(path), where, first["msg"]) from exc
