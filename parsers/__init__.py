"""Tool output -> LoadTestResult. ``import_file`` reads files from runs made elsewhere."""

from __future__ import annotations

from pathlib import Path

from orchestrator.errors import ConfigError, ParseError
from orchestrator.models import LoadTestResult

IMPORTABLE = ("autocannon", "artillery", "k6")


def import_file(tool: str, path: Path) -> LoadTestResult:
    """One existing output file of ``tool`` as a result; what the file lacks stays None."""
    if not path.is_file():
        raise ParseError(str(path), "open", "no such file")
    scenario = path.stem.removesuffix(".json")
    if tool == "autocannon":
        from parsers.autocannon import parse_cli_json

        return parse_cli_json(path, scenario_name=scenario)
    if tool == "artillery":
        from parsers.artillery import parse_output_file

        return parse_output_file(path, scenario_name=scenario)
    if tool == "k6":
        from parsers.k6 import import_file as import_k6

        return import_k6(path)
    raise ConfigError(f"cannot import {tool!r} output: choose one of {', '.join(IMPORTABLE)}")
