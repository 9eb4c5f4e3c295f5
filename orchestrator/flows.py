"""User journeys: a scenario's ``flow``, ordered steps that carry values from reply to request.

A flow is what a real user does: log in, start a session with the token, ask for a LiveKit
token for that session... Each step is a request (a named endpoint of the config, or one
written inline) with optional ``think`` seconds after it (fixed, or ``[min, max]`` drawn
uniformly), ``capture`` rules that take values from the reply into variables, and
``expect`` checks. ``{{var}}`` in a later step's path, headers or body is replaced by the
variable's value. Per-user ``data`` rows (from a CSV file, user N takes row N mod rows)
seed the variables. Every engine runs the same flow; the values stay data (JSON or YAML
given to the tool), never code or a shell word.

Failure kinds of a step (its errors in the result): ``capture_failed`` when a capture rule
found nothing in the reply, ``expect_failed`` when an ``expect`` check did not hold. Either
ends the iteration at that step, and the result's ``flow.failures`` names the step, the
kind and, for a failed capture, the rule (``json sessionId``). After a failed capture, each
later step that uses a value this iteration did not capture (directly, or through a step
that itself was not sent) is counted under its own name as a failed request of kind
``capture_missing``: not sent, so no latency, but an error the error rate includes. A step
using a variable nothing sets is refused before anything starts.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from orchestrator.errors import ConfigError

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
VAR_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ERROR_KINDS = ("capture_failed", "expect_failed", "capture_missing")
# A CSV of per-user data is read whole into the plan: keep it to a size a config may hold.
MAX_DATA_ROWS = 100_000


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


Method = Annotated[
    Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], BeforeValidator(_upper)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capture(Strict):
    """One value taken from a reply: exactly one of ``json``, ``header``, ``regex``."""

    var: str = Field(pattern=VAR_NAME, alias="as")
    json_path: str | None = Field(default=None, alias="json", description="Dotted path.")
    header: str | None = None
    regex: str | None = Field(default=None, description="On the body; one group.")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def one_source(self) -> Capture:
        given = [k for k in ("json_path", "header", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a capture takes exactly one of json, header, regex")
        if self.regex is not None:
            try:
                groups = re.compile(self.regex).groups
            except re.error as exc:
                raise ValueError(f"regex {self.regex!r}: {exc}") from None
            if groups != 1:
                raise ValueError(f"regex {self.regex!r} needs exactly one group")
        if self.json_path is not None and not all(self.json_path.split(".")):
            raise ValueError(f"json path {self.json_path!r} has an empty part")
        return self

    @property
    def kind(self) -> str:
        return "json" if self.json_path else "header" if self.header else "regex"

    @property
    def source(self) -> str:
        return self.json_path or self.header or self.regex or ""


class Expect(Strict):
    """Checks on a step's reply; a failed one counts as the step's ``expect_failed`` error."""

    status: int | None = Field(default=None, ge=100, le=599)
    json_path: str | None = Field(default=None, alias="json")
    equals: str | int | float | bool | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def check(self) -> Expect:
        if self.status is None and self.json_path is None:
            raise ValueError("expect needs status or json")
        if self.equals is not None and self.json_path is None:
            raise ValueError("equals needs json")
        return self


def _think(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (float(value), float(value))
    if isinstance(value, list | tuple) and len(value) == 2:
        return tuple(value)
    raise ValueError("think is seconds or [min, max]")


Think = Annotated[tuple[float, float], BeforeValidator(_think)]


class FlowStep(Strict):
    """One request of a flow as it runs: resolved method, path, headers and body."""

    name: str = Field(min_length=1)
    method: Method = "GET"
    path: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    think: Think = (0.0, 0.0)
    capture: list[Capture] = Field(default_factory=list)
    expect: Expect | None = None

    @field_validator("think")
    @classmethod
    def check_think(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("think needs 0 <= min <= max")
        return value

    def variables(self) -> list[str]:
        """The variables this step's request uses, in order of appearance."""
        texts = [self.path, *self.headers.keys(), *self.headers.values(), self.body or ""]
        return list(dict.fromkeys(m.group(1) for t in texts for m in VARIABLE.finditer(t)))


class Flow(Strict):
    steps: list[FlowStep] = Field(min_length=1)
    data: list[dict[str, str]] = Field(
        default_factory=list, description="Per-user rows: user N takes row N mod rows."
    )

    @model_validator(mode="after")
    def check_variables(self) -> Flow:
        known = set(self.data[0]) if self.data else set()
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"step names must be unique: {', '.join(names)}")
        for number, step in enumerate(self.steps):
            missing = [v for v in step.variables() if v not in known]
            if missing:
                raise ValueError(
                    f"steps.{number} ({step.name}) uses {', '.join(missing)} before any "
                    "capture or data column sets it"
                )
            known |= {c.var for c in step.capture}
        return self

    @property
    def has_think(self) -> bool:
        return any(s.think[1] > 0 for s in self.steps)

    @property
    def think_seconds(self) -> float:
        """Mean think time of one iteration."""
        return sum((s.think[0] + s.think[1]) / 2 for s in self.steps)


class FlowStepConfig(Strict):
    """A step as the config writes it: an ``endpoint`` name or an inline request."""

    endpoint: str | None = None
    name: str | None = None
    method: Method | None = None
    path: str | None = None
    headers: dict[str, str] | None = None
    body: Any = None
    think: Think = (0.0, 0.0)
    capture: list[Capture] = Field(default_factory=list)
    expect: Expect | None = None

    @model_validator(mode="after")
    def endpoint_or_inline(self) -> FlowStepConfig:
        if self.endpoint is None and self.path is None:
            raise ValueError("a step needs an endpoint name or an inline path")
        return self


class FlowConfig(Strict):
    steps: list[FlowStepConfig] = Field(min_length=1)
    data: Path | None = Field(default=None, description="CSV file; columns become variables.")

    @model_validator(mode="before")
    @classmethod
    def from_list(cls, data: Any) -> Any:
        return {"steps": data} if isinstance(data, list) else data


def read_data(path: Path, where: str) -> list[dict[str, str]]:
    """The CSV's rows (the header row names the columns), read here and passed on as data."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise ConfigError(f"{where}: row {reader.line_num} of {path} is ragged")
                rows.append(dict(row))
                if len(rows) > MAX_DATA_ROWS:
                    raise ConfigError(f"{where}: {path} has more than {MAX_DATA_ROWS} rows")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where}: {path} is not a UTF-8 CSV file: {exc}") from None
    if not rows:
        raise ConfigError(f"{where}: {path} has no data rows")
    bad = [c for c in rows[0] if not re.match(VAR_NAME, c)]
    if bad:
        raise ConfigError(f"{where}: column(s) {', '.join(map(repr, bad))} are not variable names")
    return rows


def step_checks(step: FlowStep) -> dict[str, Any]:
    """A step's captures, checks and think range as the engines' scripts read them."""
    expect = step.expect
    return {
        "name": step.name,
        "capture": [{"var": c.var, "kind": c.kind, "source": c.source} for c in step.capture],
        # What the step needs: after a failed capture, the steps using a missing value are
        # counted as capture_missing instead of being sent.
        "uses": step.variables(),
        "expect": None
        if expect is None
        else {"status": expect.status, "json": expect.json_path, "equals": expect.equals},
        "thinkMin": step.think[0],
        "thinkMax": step.think[1],
    }


SECRET_COLUMN = re.compile(r"pass|secret|token|key|credential|auth", re.IGNORECASE)


def secret_values(flow: Flow) -> list[str]:
    """Data values of columns named like secrets (password, api_key, ...): masked in
    everything saved (the plan, the tools' saved configs)."""
    columns = [c for c in (flow.data[0] if flow.data else {}) if SECRET_COLUMN.search(c)]
    return [row[c] for row in flow.data for c in columns if row[c]]


def json_at(value: Any, path: str) -> Any:
    """The value at a dotted path (list indexes as numbers), else None."""
    for key in path.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value
