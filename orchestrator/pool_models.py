"""Connection-pool metrics of a database scenario (PostgreSQL or PgBouncer), sampled while
the load runs by :mod:`orchestrator.pool_monitor`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.model_base import Model


class PoolSample(Model):
    """One reading of the connection pool (the monitor's own connection left out).

    The seed's five figures come first; from PostgreSQL they count client backends in
    ``pg_stat_activity`` (the whole server: ``max_connections`` is server-wide), from
    PgBouncer the server connections of the target database's pools (``SHOW POOLS``).
    None: the source has no such figure.
    """

    t: float = Field(description="Seconds since the start of the run.")
    active_connections: int | None = Field(
        default=None, description="PostgreSQL: state 'active'. PgBouncer: sv_active."
    )
    idle_connections: int | None = Field(
        default=None, description="PostgreSQL: state 'idle'. PgBouncer: sv_idle + sv_used."
    )
    waiting_clients: int | None = Field(
        default=None,
        description="PgBouncer: cl_waiting, clients queued for a server connection. "
        "PostgreSQL does not queue clients (over its slots it refuses them): None.",
    )
    total_connections: int | None = Field(
        default=None,
        description="PostgreSQL: client backends. PgBouncer: server connections of the pools.",
    )
    utilization_percent: float | None = Field(
        default=None,
        description="Share of the limit not free for a new client. PostgreSQL: "
        "totalConnections / (max_connections - reserved slots). PgBouncer: sv_active / "
        "pool size (above 100 when the reserve pool is in use).",
    )
    idle_in_transaction: int | None = Field(
        default=None, description="PostgreSQL: in a transaction, waiting for the client."
    )
    waiting_on_lock: int | None = Field(
        default=None, description="PostgreSQL: backends waiting on a lock (wait_event_type Lock)."
    )
    waiting_on_client: int | None = Field(
        default=None,
        description="PostgreSQL: non-idle backends waiting to read from their client "
        "(wait_event ClientRead while active or idle in transaction).",
    )
    state_hidden: int | None = Field(
        default=None,
        description="PostgreSQL: other roles' backends whose state the monitor may not see "
        "(needs pg_read_all_stats); counted in totalConnections only.",
    )
    database_connections: int | None = Field(
        default=None, description="PostgreSQL: client backends of the target database."
    )
    clients_active: int | None = Field(
        default=None, description="PgBouncer: cl_active, clients linked to a server or idle."
    )
    max_wait: float | None = Field(
        default=None,
        description="PgBouncer: how long the oldest waiting client has waited, at this "
        "instant (maxwait + maxwait_us), in s.",
    )
    transactions: int | None = Field(
        default=None, description="PgBouncer: transactions since the previous sample (SHOW STATS)."
    )
    wait_time: float | None = Field(
        default=None,
        description="PgBouncer: seconds clients spent waiting for a server since the previous "
        "sample, summed over clients (SHOW STATS total_wait_time).",
    )


class PoolFigure(Model):
    peak: float | None = None
    mean: float | None = Field(default=None, description="Mean of the samples.")


class PoolMetrics(Model):
    """The connection pool while the load ran: a time series, and peak and mean of each figure."""

    source: Literal["postgres", "pgbouncer"]
    server: str = Field(description="user@host:port/database the monitor read (no password).")
    server_version: str | None = None
    interval: float = Field(description="Sampling interval (s).")
    monitor_connections: int = Field(
        default=1,
        description="Connections the monitor held (application_name 'orchestrate-monitor'): "
        "left out of every figure, though on PostgreSQL it takes one of the slots.",
    )
    max_connections: int | None = Field(default=None, description="PostgreSQL max_connections.")
    reserved_connections: int | None = Field(
        default=None,
        description="PostgreSQL superuser_reserved_connections (+ reserved_connections, 16+).",
    )
    superuser: bool | None = Field(
        default=None, description="PostgreSQL: the role is a superuser (may use reserved slots)."
    )
    pool_size: int | None = Field(
        default=None, description="PgBouncer: server connections per pool (pool_size)."
    )
    reserve_pool: int | None = None
    pool_mode: str | None = None
    max_client_conn: int | None = None
    max_prepared_statements: int | None = Field(
        default=None, description="PgBouncer 1.21+; None when the version has none."
    )
    total_transactions: int | None = Field(
        default=None, description="PgBouncer: transactions over the run (SHOW STATS)."
    )
    total_wait_time: float | None = Field(
        default=None,
        description="PgBouncer: seconds clients waited for a server over the run, summed.",
    )
    wait_per_transaction: float | None = Field(
        default=None,
        description="PgBouncer: totalWaitTime / totalTransactions, the mean wait for a server "
        "per transaction (per session in session mode), in s.",
    )
    series: list[PoolSample] = Field(default_factory=list)
    summary: dict[str, PoolFigure] = Field(
        default_factory=dict,
        description="Peak and mean per figure of the series, keyed by its camelCase name.",
    )
    missing: dict[str, str] = Field(default_factory=dict)
