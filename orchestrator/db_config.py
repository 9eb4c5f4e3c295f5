"""The config file's database parts: where the database is, and a scenario's workload on it.

:class:`DatabaseLoadConfig` holds the fields of the seed's ``DatabaseLoadTestConfig`` that a
scenario of ``orchestrate.yaml`` may set (``concurrentQueries`` and ``duration`` are its
``users`` and ``hold``), plus when a stepped run stops looking for the limit. The query
choices are checked against the shipped scripts when the suite is planned
(:func:`orchestrator.plan.plan_scenario`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from orchestrator.db_models import QueryType
from orchestrator.scenarios import SqlFile, Strict


def _sql_file(value: Any) -> Any:
    """``path.sql`` (weight 1) or ``{path: path.sql, weight: 3}``."""
    return {"path": value} if isinstance(value, str) else value


class DatabaseConfig(Strict):
    url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        pattern=r"^postgres(ql)?://",
        description="For the postgres scenarios (pgbench); put the password in ${PGPASSWORD}.",
    )


class DatabaseLoadConfig(Strict):
    """A postgres scenario's workload and limit search (``ScenarioConfig`` inherits them)."""

    query_type: QueryType | None = Field(
        default=None,
        description="read (point SELECT), write (one UPDATE), transaction (TPC-B-like), "
        "mixed (by query_weights), custom (sql_files only); default mixed.",
    )
    query_weights: dict[str, int] | None = Field(
        default=None, description="For mixed: weights of read, write, transaction (7/2/1)."
    )
    sql_files: list[Annotated[SqlFile, BeforeValidator(_sql_file)]] | None = Field(
        default=None,
        description="Own pgbench scripts (custom, or added to mixed); relative to the config.",
    )
    stop_when_p95: float | None = Field(
        default=None, gt=0, description="ms; stop after a step whose p95 is over it."
    )
    stop_when_pool_wait: float | None = Field(
        default=None,
        ge=0,
        description="s; stop after a step in which a client waited longer for a server "
        "connection (PgBouncer's maxwait).",
    )
