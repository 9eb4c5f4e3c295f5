"""Query types as pgbench scripts: ``read``, ``write``, ``transaction``, ``mixed``, ``custom``.

The scripts ship in ``tool_configs/pgbench/*.sql`` and work on pgbench's own schema
(``pgbench -i``): ``read`` is one point SELECT (pgbench's select-only), ``write`` one
autocommitted UPDATE, ``transaction`` pgbench's tpcb-like BEGIN..END. ``mixed`` draws
each transaction from the three by weight; ``custom`` runs the user's own files, which can
also be mixed into ``mixed``. One pgbench transaction is one run of one script, so a
latency is a whole script's time.

:func:`script_args` turns a choice into pgbench arguments (``-f FILE@WEIGHT``, and ``-s``:
with only ``-f`` scripts pgbench sets ``:scale`` to 1 instead of counting pgbench_branches,
so the scale found in the database must be passed). :func:`query_mode` picks ``-M``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, get_args

from orchestrator import tools
from orchestrator.db_models import QueryType
from orchestrator.errors import ConfigError

BuiltinScript = Literal["read", "write", "transaction"]
BUILTIN_SCRIPTS: tuple[BuiltinScript, ...] = get_args(BuiltinScript)
QUERY_TYPES: tuple[QueryType, ...] = get_args(QueryType)
# Mostly reads, some single writes, a few multi-statement transactions.
DEFAULT_MIX: dict[BuiltinScript, int] = {"read": 7, "write": 2, "transaction": 1}
DEFAULT_QUERY_TYPE: QueryType = "mixed"
# PgBouncer pool modes that hand a client a different server connection per transaction.
SHARED_SERVER_MODES = frozenset({"transaction", "statement"})
# What one transaction of each shipped script is.
SCRIPT_WORDS: dict[str, str] = {
    "read": "one point SELECT by primary key (pgbench's select-only)",
    "write": "one autocommitted UPDATE of a random account",
    "transaction": "a TPC-B-like transaction (BEGIN, 3 UPDATEs, a SELECT, an INSERT, END; "
    "pgbench's tpcb-like)",
}
# A connection check that needs no table: the probe of a run of the user's own scripts only.
CONNECT_SCRIPT = "connect.sql"


def script_path(name: BuiltinScript) -> Path:
    """The shipped script of a query type."""
    return tools.tool_configs_dir() / "pgbench" / f"{name}.sql"


def _check_weight(weight: int, what: str) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise ConfigError(f"pgbench: weight of {what} must be a whole number >= 0, got {weight!r}")


def _custom_file(path: Path) -> Path:
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise ConfigError(f"pgbench: SQL script {str(path)!r} not found")
    if not os.access(resolved, os.R_OK):
        raise ConfigError(f"pgbench: SQL script {str(path)!r} is not readable")
    return resolved


def script_weights(
    query_type: QueryType,
    weights: Mapping[str, int] | None = None,
    custom: Sequence[tuple[Path, int]] = (),
) -> list[tuple[Path, int]]:
    """(script file, weight) for a query type; ConfigError names what is wrong."""
    if query_type not in QUERY_TYPES:
        raise ConfigError(
            f"pgbench: unknown query type {query_type!r} (known: {', '.join(QUERY_TYPES)})"
        )
    if weights is not None and query_type != "mixed":
        raise ConfigError(f"pgbench: weights apply to query type 'mixed', not {query_type!r}")
    if custom and query_type not in {"mixed", "custom"}:
        raise ConfigError(
            f"pgbench: SQL files run with query type 'custom' or 'mixed', not {query_type!r}"
        )
    chosen: list[tuple[Path, int]] = []
    if query_type in BUILTIN_SCRIPTS:
        chosen.append((script_path(query_type), 1))
    elif query_type == "mixed":
        mix = dict(DEFAULT_MIX if weights is None else weights)
        unknown = sorted(set(mix) - set(BUILTIN_SCRIPTS))
        if unknown:
            raise ConfigError(
                f"pgbench: unknown script(s) {', '.join(unknown)} in the mix "
                f"(known: {', '.join(BUILTIN_SCRIPTS)})"
            )
        for name in BUILTIN_SCRIPTS:
            weight = mix.get(name, 0)
            _check_weight(weight, name)
            if weight:
                chosen.append((script_path(name), weight))
    elif not custom:
        raise ConfigError("pgbench: query type 'custom' needs at least one SQL file")
    for path, weight in custom:
        _check_weight(weight, str(path))
        if weight:
            chosen.append((_custom_file(path), weight))
    if not chosen:
        raise ConfigError("pgbench: every script has weight 0: nothing to run")
    return chosen


def script_args(
    query_type: QueryType,
    weights: Mapping[str, int] | None = None,
    custom: Sequence[tuple[Path, int]] = (),
    scale: int | None = None,
) -> list[str]:
    """pgbench arguments for a query type: ``-f FILE@WEIGHT``... and ``-s SCALE``.

    The weight is always written, so a file name holding ``@`` still parses (pgbench splits
    at the last one). ``scale`` is pgbench_branches' row count (the probe's "scaling
    factor"); without it the scripts' ``:scale`` is 1 and only the first 100000 accounts
    are drawn.
    """
    args: list[str] = []
    for path, weight in script_weights(query_type, weights, custom):
        args += ["-f", f"{path}@{weight}"]
    if scale is not None:
        if scale < 1:
            raise ConfigError(f"pgbench: scale must be >= 1, got {scale}")
        args += ["-s", str(scale)]
    return args


def query_mode(pool_mode: str | None, max_prepared_statements: int | None = None) -> str:
    """``-M`` for pgbench: ``prepared`` unless a pooler shares server connections.

    PgBouncer in transaction/statement mode gives a client another server connection per
    transaction, where pgbench's named prepared statements do not exist (or already exist:
    'prepared statement "P_1" already exists'), unless it tracks them itself (PgBouncer
    1.21+ with ``max_prepared_statements`` > 0). ``extended`` keeps the same protocol
    messages without naming statements.
    """
    if pool_mode in SHARED_SERVER_MODES and not max_prepared_statements:
        return "extended"
    return "prepared"


def describe_workload(
    query_type: QueryType,
    weights: Mapping[str, int] | None = None,
    custom: Sequence[tuple[Path, int]] = (),
    mode: str = "prepared",
) -> str:
    """What one measured transaction is, for the result's ``latencyMeasures``."""
    chosen = script_weights(query_type, weights, custom)
    if query_type in BUILTIN_SCRIPTS:
        what = f"query type {query_type}: {SCRIPT_WORDS[query_type]}"
    else:
        shipped = {script_path(name): SCRIPT_WORDS[name] for name in BUILTIN_SCRIPTS}
        parts = [
            f"{path.name} weighted {weight}"
            + (f" ({shipped[path]})" if path in shipped else " (the user's script)")
            for path, weight in chosen
        ]
        what = f"query type {query_type}, each transaction one script drawn by weight: " + (
            "; ".join(parts)
        )
    return f"{what}; -M {mode}"


def connect_script() -> Path:
    return tools.tool_configs_dir() / "pgbench" / CONNECT_SCRIPT
