"""The shape every engine has.

An engine is a plain package that satisfies :class:`Engine`: it (1) builds the tool's
command and config files from a :class:`Scenario`, (2) is run by the shared executor through
:mod:`orchestrator.process`, (3) hands the raw output to its parser, which feeds the one
result builder (:mod:`parsers.build`), and (4) imports output files made elsewhere.
"""

from __future__ import annotations

import contextvars
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol as TypingProtocol

from orchestrator.flows import secret_values
from orchestrator.models import LoadTestResult, Transport
from orchestrator.process import ToolRun
from orchestrator.redact import SECRET_HEADERS, redact_text
from orchestrator.scenarios import Scenario

# Seconds a tool may run past the scenario's length (start-up, drain, writing output).
DEFAULT_GRACE = 30.0
# The pool monitor's samples, one JSON line each with its wall-clock time, appended in the
# scenario's folder while a database scenario runs: a stepped engine judges its steps by them.
POOL_SAMPLES = "pool-samples.jsonl"


@dataclass
class Invocation:
    """A prepared tool run: everything the runner needs to start it and to parse it."""

    tool: str
    argv: list[str]
    workdir: Path
    output_path: Path
    timeout: float
    cpu_capacity_percent: float = 100.0
    env: dict[str, str] = field(default_factory=dict)
    # Holds configs with real secrets; removed by the runner after the run.
    private_dir: Path | None = None
    saved_configs: list[Path] = field(default_factory=list)


class Engine(TypingProtocol):
    """What the registry, the executor, ``tools doctor`` and ``import`` ask of an engine."""

    NAME: str
    # What it can load, and what it is the default engine for (at most one per transport).
    TRANSPORTS: frozenset[Transport]
    DEFAULT_FOR: frozenset[Transport]
    # Programs it runs on (shown by `tools doctor` before the engine itself).
    NEEDS: tuple[str, ...]
    # A program of the operating system rather than one orchestrate installs: a built-in
    # scenario that needs it is skipped, with the reason, when it is missing.
    EXTERNAL: bool

    def executable(self) -> str:
        """Path of what runs, or ToolNotFoundError with the way to install it."""
        ...

    def version(self) -> str | None: ...

    def prepare(self, scenario: Scenario, workdir: Path) -> Invocation: ...

    def parse(self, scenario: Scenario, invocation: Invocation, run: ToolRun) -> LoadTestResult: ...

    def import_file(self, path: Path) -> LoadTestResult:
        """An output file of a run made elsewhere; ConfigError when the tool has none."""
        ...


# The private dirs made in this context (thread, task): removed on its way out.
_PRIVATE_DIRS: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar(
    "private_dirs", default=None
)


@contextmanager
def private_dirs_removed() -> Iterator[None]:
    """Every private dir made inside is removed on the way out, whatever the way: also when
    ``prepare`` fails half-way (its Invocation, which names the dir, never returned)."""
    made: list[Path] = []
    token = _PRIVATE_DIRS.set(made)
    try:
        yield
    finally:
        _PRIVATE_DIRS.reset(token)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)


def make_private_dir() -> Path:
    """A 0700 temp dir for configs that carry real secrets (never the report dir)."""
    folder = Path(tempfile.mkdtemp(prefix="orchestrate-"))
    made = _PRIVATE_DIRS.get()
    if made is not None:
        made.append(folder)
    return folder


def write_config(
    private_dir: Path, workdir: Path, name: str, content: str, secrets: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Write a tool config: the real one privately, a redacted copy into the report dir.

    Returns (path the tool reads, path of the saved redacted copy).
    """
    real = private_dir / name
    # Created owner-only: never readable by others, not even for an instant.
    fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    real.chmod(0o600)  # an existing file keeps its mode through O_CREAT
    workdir.mkdir(parents=True, exist_ok=True)
    saved = workdir / name
    saved.write_text(redact_text(content, secrets), encoding="utf-8")
    return real, saved


def scenario_secrets(scenario: Scenario) -> tuple[str, ...]:
    """Header values that must never appear in clear text in anything we save."""
    values: list[str] = []
    headers = [e.headers for e in scenario.endpoints]
    if scenario.ws is not None:
        headers.append(scenario.ws.headers)
    for group in headers:
        values.extend(v for k, v in group.items() if k.lower() in SECRET_HEADERS)
    if scenario.flow is not None:
        values.extend(secret_values(scenario.flow))
    return tuple(v for v in values if v)
