"""Orchestration failures: each becomes one clear line and an exit code at the CLI boundary.

A load tool that reports failed requests is not an error here: that is a result with a status.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    SLA_FAILED = 1
    USAGE = 2
    TOOL_OR_TARGET_FAILED = 3
    INTERRUPTED = 130  # Ctrl-C, SIGTERM or SIGHUP (orchestrator.interrupts)


class FatalError(Exception):
    """An orchestration failure; its message is shown to the user as one line."""

    exit_code: ExitCode = ExitCode.TOOL_OR_TARGET_FAILED


class ConfigError(FatalError):
    """Bad configuration or usage, found before anything starts."""

    exit_code = ExitCode.USAGE


class ToolNotFoundError(FatalError):
    """A load tool (or Node) is not installed where orchestrate looks for it."""


class ToolError(FatalError):
    """A tool could not be started, or its output could not be read."""


class ParseError(ToolError):
    """A tool's output file is malformed; names the file and where it broke."""

    def __init__(self, path: str, where: str, why: str) -> None:
        super().__init__(f"cannot parse {path} ({where}): {why}")
        self.path = path
        self.where = where


class TargetError(FatalError):
    """The target could not be found, started or reached."""


class ReportError(FatalError):
    """Part of the report could not be written (disk full, read-only, no permission).

    Raised only after what could be written was written; the message names what is missing.
    """
