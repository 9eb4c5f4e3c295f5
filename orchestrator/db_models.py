"""The database leg's models: query types, and the limit a stepped database run found.

:class:`DatabaseLimit` is what ``db-exhaustion`` reports: concurrency was raised step by
step until connections were refused, clients waited too long for a server connection, or
the p95 SLA broke. Its ``maxDatabaseConnections`` is the seed's
``CapacityReport.capacityLimits.maxDatabaseConnections``; the steps behind it are kept, each
with its own evidence, so the number can be checked. The pool monitor's own models
(:class:`~orchestrator.models.PoolMetrics`) stay with the result.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.model_base import Model

# The seed's DatabaseLoadTestConfig.queryType, plus the user's own SQL files.
QueryType = Literal["read", "write", "transaction", "mixed", "custom"]
# Why a step did not hold, in the order they are checked.
FailReason = Literal["connections_refused", "errors", "pool_wait", "p95"]


class DatabaseStep(Model):
    """One constant-load step of a database run, as the limit search judged it."""

    clients: int
    requests: int = Field(
        description="Transactions attempted; a client that could not connect counts as one."
    )
    failed: int
    error_rate: float | None = Field(description="failed / requests, in percent.")
    p95: float | None = Field(
        default=None, description="Exact p95 of the step's transactions (ms), from pgbench's log."
    )
    refused: str | None = Field(
        default=None, description="The server's words when it refused connections in the step."
    )
    refused_kind: str | None = Field(
        default=None, description="too_many_connections, connection_refused, timeout, ..."
    )
    total_connections: int | None = Field(
        default=None,
        description="Peak of the pool monitor's totalConnections while the step ran.",
    )
    waiting_clients: int | None = Field(
        default=None, description="PgBouncer: peak of clients queued for a server connection."
    )
    max_wait: float | None = Field(
        default=None,
        description="PgBouncer: the longest any client had waited for a server connection, "
        "as sampled during the step (s).",
    )
    wait_per_transaction: float | None = Field(
        default=None,
        description="PgBouncer: seconds waited for a server per transaction in the step "
        "(SHOW STATS, between the step's first and last samples).",
    )
    pool_samples: int = Field(default=0, description="Pool monitor samples inside the step.")
    failed_by: FailReason | None = Field(
        default=None, description="The rule the step broke; None: it held."
    )
    detail: str | None = Field(default=None, description="Why it did not hold, in words.")


class DatabaseLimit(Model):
    """The most concurrent database clients that held, and what gave out above it."""

    max_database_connections: int | None = Field(
        description="maxDatabaseConnections: the highest client count of a step that held "
        "(no connection refused, error rate, longest wait and p95 within their limits). "
        "When no step failed it is the highest tested, so a lower bound (see firstFailing). "
        "None: the first step already failed."
    )
    first_failing: int | None = Field(
        default=None, description="Clients of the first step that did not hold; None: none."
    )
    reason: FailReason | None = None
    evidence: str = Field(description="What was seen, with the server's limits.")
    component: str | None = Field(
        default=None,
        description="What gave out: 'PostgreSQL connection slots (max_connections=20, 3 "
        "reserved)', 'PgBouncer pool (pool_size=10, transaction mode)', ...",
    )
    tested_up_to: int = Field(description="Clients of the highest step run.")
    stopped_early: bool = Field(
        default=False, description="The run stopped after the first failing step."
    )
    error_rate_limit: float | None = Field(default=None, description="Percent.")
    p95_limit: float | None = Field(default=None, description="ms.")
    pool_wait_limit: float | None = Field(default=None, description="Seconds.")
    steps: list[DatabaseStep] = Field(default_factory=list)
