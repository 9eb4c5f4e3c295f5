"""Reading a YAML config file: syntax errors with file and line, ``${VAR}`` from the
environment, and pydantic's errors as one line of key paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import ConfigError

_VAR = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def substitute_env(
    data: Any, env: Mapping[str, str], path: tuple[str | int, ...] = ()
) -> tuple[Any, list[str]]:
    """``data`` with every ``${VAR}`` in its strings replaced, and the values used."""
    used: list[str] = []
    if isinstance(data, dict):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            out[key], found = substitute_env(value, env, (*path, str(key)))
            used += found
        return out, used
    if isinstance(data, list):
        items = []
        for index, value in enumerate(data):
            item, found = substitute_env(value, env, (*path, index))
            items.append(item)
            used += found
        return items, used
    if not isinstance(data, str) or "${" not in data:
        return data, used

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        where = ".".join(str(p) for p in path)
        if not _VAR_NAME.match(name):
            raise ConfigError(f"{where}: bad variable name ${{{name}}}")
        if name not in env:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        used.append(env[name])
        return env[name]

    return _VAR.sub(replace, data), used


def format_validation(exc: ValidationError) -> str:
    """All of pydantic's errors as one line, each naming its key path."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def read_yaml(path: Path, label: str) -> Any:
    import yaml  # only when a config file is read: `orchestrate run` reads none

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {label} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {label}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: YAML error: {' '.join(str(exc).split())}") from None
