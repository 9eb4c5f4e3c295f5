"""The database connection pool, sampled while the load runs (psycopg 3, one connection).

:func:`open_pool_monitor` connects once, before the load, and finds out what the URL
points at: PgBouncer answers ``SHOW VERSION`` on its admin console (database
``pgbouncer``, same user, who must be in ``admin_users`` or ``stats_users``); PostgreSQL
says that database does not exist. The returned sampler then reads, every ``interval``
seconds on the run's timeline (``t`` since the shared ``t0``, like the resource samplers):

* PostgreSQL: ``pg_stat_activity`` (client backends of the whole server, since
  ``max_connections`` is server-wide) and the slot settings, read once;
* PgBouncer: ``SHOW POOLS`` and ``SHOW STATS`` for the target database's pools, and
  ``SHOW DATABASES``/``SHOW CONFIG`` once for pool size and mode. pg_stat_activity is not
  read through PgBouncer: that would take a server connection from the pool measured.

The monitor's own connection (application_name ``orchestrate-monitor``) is left out of
every figure; on PostgreSQL it still takes a slot, which :class:`PoolMetrics` says. The
password comes from the URL (passed to libpq in-process) or libpq's own environment and
files, never a command line. A connection that fails up front is a :class:`TargetError`.

A ``journal`` gets every sample as a JSON line with its wall-clock time, as it is taken
(a stepped engine judges its steps by them); :meth:`PoolMonitor.in_front` tells the engine
what it talks to (PgBouncer's pool mode decides pgbench's ``-M``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Literal

import psycopg

from orchestrator import redact
from orchestrator.database_url import Database, parse_database_url
from orchestrator.errors import TargetError
from orchestrator.models import PoolFigure, PoolMetrics, PoolSample
from orchestrator.pool_connect import ADMIN_DB, MONITOR_APP, Connection, connect, describe_error
from orchestrator.samplers import IntervalSampler
from orchestrator.scenarios import PoolInFront

LOG = logging.getLogger(__name__)

Pooler = Literal["auto", "pgbouncer", "postgres"]
STATEMENT_TIMEOUT_MS = 5000  # the monitor must not hang a run

_ACTIVITY = """
SELECT count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE state = 'idle') AS idle,
       count(*) FILTER (WHERE state LIKE 'idle in transaction%%') AS idle_in_transaction,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_on_lock,
       count(*) FILTER (WHERE wait_event = 'ClientRead' AND state <> 'idle')
           AS waiting_on_client,
       count(*) FILTER (WHERE state IS NULL) AS state_hidden,
       count(*) FILTER (WHERE datname = %(dbname)s) AS database_connections,
       count(*) AS total
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND application_name IS DISTINCT FROM %(app)s
"""
_SLOTS = """
SELECT current_setting('server_version') AS version,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       current_setting('reserved_connections', true)::int AS reserved,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser
"""
# Figures summarised as peak and mean (PoolSample's fields but t).
FIGURES = [name for name in PoolSample.model_fields if name != "t"]


def _pgbouncer_version(conn: Connection) -> str | None:
    """'1.18.0' when the other end is PgBouncer's admin console, else None."""
    try:
        row = conn.execute("SHOW VERSION").fetchone()
    except psycopg.Error:
        return None  # PostgreSQL has no 'version' setting
    text = str(next(iter(row.values()))) if row else ""
    return text.removeprefix("PgBouncer").strip() if text.startswith("PgBouncer") else None


def _is_postgres_refusing_admin_db(exc: TargetError) -> bool:
    """PostgreSQL's answer to a login to database 'pgbouncer' (PgBouncer words it otherwise)."""
    text = str(exc)
    return f'database "{ADMIN_DB}" does not exist' in text or "no pg_hba.conf entry" in text


def open_pool_monitor(
    url: str,
    *,
    interval: float = 1.0,
    t0: float | None = None,
    pooler: Pooler = "auto",
    journal: Path | None = None,
) -> PoolMonitor:
    """Connect and read the limits, ready to ``start()``; TargetError when it cannot."""
    db = parse_database_url(url)
    if db.password:
        redact.remember_secret(db.password)
    monitor: PoolMonitor | None = None
    if pooler != "postgres":
        try:
            conn = connect(db, ADMIN_DB, admin=True, console=pooler == "pgbouncer")
        except TargetError as exc:
            if pooler == "pgbouncer" or not _is_postgres_refusing_admin_db(exc):
                raise
        else:
            version = _pgbouncer_version(conn)
            if version is not None:
                monitor = PgBouncerMonitor(conn, db, version, interval, t0)
            else:
                conn.close()
            if version is None and pooler == "pgbouncer":
                raise TargetError(f"pool monitor: {db.host}:{db.port} is not PgBouncer")
    monitor = monitor or PostgresMonitor(connect(db, db.dbname, admin=False), db, interval, t0)
    monitor.journal = journal
    return monitor


def summarise(series: list[PoolSample]) -> dict[str, PoolFigure]:
    summary: dict[str, PoolFigure] = {}
    for name in FIGURES:
        values = [v for s in series if (v := getattr(s, name)) is not None]
        if values:
            key = PoolSample.model_fields[name].alias or name
            summary[key] = PoolFigure(peak=max(values), mean=round(sum(values) / len(values), 6))
    return summary


class PoolMonitor(IntervalSampler[PoolSample]):
    """The sampling thread over one connection; subclasses read one kind of server."""

    source: Literal["postgres", "pgbouncer"]

    def __init__(self, conn: Connection, db: Database, interval: float, t0: float | None) -> None:
        super().__init__(interval, t0, name=f"pool-monitor-{db.port}")
        self.conn = conn
        self.db = db
        self.server_version: str | None = None
        self.failed_samples = 0
        self.last_error: str | None = None
        self.journal: Path | None = None

    def stop(self) -> None:
        """Take the end sample and close the connection; calling it again does nothing."""
        try:
            super().stop()
        finally:
            self.close()

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.close()

    def in_front(self) -> PoolInFront:
        """What the database URL reaches, for the engine that loads it."""
        return PoolInFront(source=self.source)

    def _sample(self, t: float) -> PoolSample | None:
        try:
            sample = self._read(round(t, 4))
        except psycopg.Error as exc:
            # A lost connection mid-run loses samples, not the run; metrics() says so.
            self.failed_samples += 1
            self.last_error = describe_error(exc, self.db.password)
            if self.failed_samples == 1:
                LOG.warning("pool monitor: sample at t=%.2f failed: %s", t, self.last_error)
            return None
        if self.journal is not None:
            line = {"wall": time.time(), **sample.model_dump(mode="json", by_alias=True)}
            with self.journal.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        return sample

    def _read(self, t: float) -> PoolSample:
        raise NotImplementedError

    def _limits(self) -> dict[str, Any]:
        raise NotImplementedError

    def metrics(self) -> PoolMetrics:
        series = self.series
        missing = dict(self._missing())
        if self.failed_samples:
            taken = len(series) + self.failed_samples
            missing["series"] = (
                f"{self.failed_samples} of {taken} samples could not be read: {self.last_error}"
            )
        return PoolMetrics(
            source=self.source,
            server=self.db.label,
            server_version=self.server_version,
            interval=self.interval,
            series=series,
            summary=summarise(series),
            missing=missing,
            **self._limits(),
        )

    def _missing(self) -> dict[str, str]:
        return {}


class PostgresMonitor(PoolMonitor):
    source = "postgres"

    def __init__(self, conn: Connection, db: Database, interval: float, t0: float | None) -> None:
        super().__init__(conn, db, interval, t0)
        try:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            row = conn.execute(_SLOTS).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise TargetError(
                f"pool monitor: cannot read connection settings of {db.label}: "
                f"{describe_error(exc, db.password)}"
            ) from None
        assert row is not None
        self.server_version = str(row["version"])
        self.max_connections: int = row["max_connections"]
        self.reserved: int = row["superuser_reserved"] + (row["reserved"] or 0)
        self.superuser: bool | None = row["superuser"]

    def _read(self, t: float) -> PoolSample:
        row = self.conn.execute(
            _ACTIVITY, {"dbname": self.db.dbname, "app": MONITOR_APP}
        ).fetchone()
        assert row is not None
        available = self.max_connections - self.reserved
        total = int(row["total"])
        return PoolSample(
            t=t,
            active_connections=row["active"],
            idle_connections=row["idle"],
            total_connections=total,
            utilization_percent=round(100.0 * total / available, 2) if available > 0 else None,
            idle_in_transaction=row["idle_in_transaction"],
            waiting_on_lock=row["waiting_on_lock"],
            waiting_on_client=row["waiting_on_client"],
            state_hidden=row["state_hidden"],
            database_connections=row["database_connections"],
        )

    def _limits(self) -> dict[str, Any]:
        return {
            "max_connections": self.max_connections,
            "reserved_connections": self.reserved,
            "superuser": self.superuser,
        }

    def _missing(self) -> dict[str, str]:
        return {
            "waitingClients": "PostgreSQL does not queue clients: over its free slots it "
            "refuses them (too_many_connections errors); backends waiting on locks are "
            "waitingOnLock"
        }


class PgBouncerMonitor(PoolMonitor):
    source = "pgbouncer"

    def __init__(
        self, conn: Connection, db: Database, version: str, interval: float, t0: float | None
    ) -> None:
        super().__init__(conn, db, interval, t0)
        self.server_version = version
        try:
            config = {r["key"]: r["value"] for r in conn.execute("SHOW CONFIG").fetchall()}
            databases = {r["name"]: r for r in conn.execute("SHOW DATABASES").fetchall()}
        except psycopg.Error as exc:
            conn.close()
            raise TargetError(
                f"pool monitor: cannot read PgBouncer's settings at {db.host}:{db.port} "
                f"(is {db.user} in admin_users or stats_users?): "
                f"{describe_error(exc, db.password)}"
            ) from None
        # A database PgBouncer creates on first use (the '*' entry) has no row yet.
        entry = databases.get(db.dbname)
        self.pool_size = int(entry["pool_size"] if entry else config["default_pool_size"])
        self.reserve_pool = int(entry["reserve_pool"] if entry else config["reserve_pool_size"])
        self.pool_mode = str((entry and entry["pool_mode"]) or config["pool_mode"])
        self.max_client_conn = int(config["max_client_conn"])
        prepared = config.get("max_prepared_statements")
        self.max_prepared_statements = int(prepared) if prepared is not None else None
        self._stats: list[tuple[int, int]] = []  # (transactions, wait µs) per sample

    def _read(self, t: float) -> PoolSample:
        pools = [r for r in self.conn.execute("SHOW POOLS").fetchall()
                 if r["database"] == self.db.dbname]  # fmt: skip
        stats = [r for r in self.conn.execute("SHOW STATS").fetchall()
                 if r["database"] == self.db.dbname]  # fmt: skip
        total = {key: sum(int(r[key]) for r in pools) for key in
                 ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_tested",
                  "sv_login")}  # fmt: skip
        max_wait = max((r["maxwait"] + r["maxwait_us"] / 1e6 for r in pools), default=0.0)
        reading = (
            sum(int(r["total_xact_count"]) for r in stats),
            sum(int(r["total_wait_time"]) for r in stats),
        )
        previous = self._stats[-1] if self._stats else None
        self._stats.append(reading)
        # One pool per (database, user): each may hold pool_size server connections.
        capacity = self.pool_size * max(1, len(pools))
        servers = sum(
            total[k] for k in ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
        )
        return PoolSample(
            t=t,
            active_connections=total["sv_active"],
            idle_connections=total["sv_idle"] + total["sv_used"],
            waiting_clients=total["cl_waiting"],
            total_connections=servers,
            utilization_percent=round(100.0 * total["sv_active"] / capacity, 2)
            if capacity > 0
            else None,
            clients_active=total["cl_active"],
            max_wait=round(max_wait, 6),
            transactions=reading[0] - previous[0] if previous else None,
            wait_time=round((reading[1] - previous[1]) / 1e6, 6) if previous else None,
        )

    def in_front(self) -> PoolInFront:
        return PoolInFront(
            source="pgbouncer",
            pool_mode=self.pool_mode,
            max_prepared_statements=self.max_prepared_statements,
        )

    def _limits(self) -> dict[str, Any]:
        first, last = (self._stats[0], self._stats[-1]) if self._stats else (None, None)
        transactions = last[0] - first[0] if first and last else None
        wait = round((last[1] - first[1]) / 1e6, 6) if first and last else None
        return {
            "pool_size": self.pool_size,
            "reserve_pool": self.reserve_pool,
            "pool_mode": self.pool_mode,
            "max_client_conn": self.max_client_conn,
            "max_prepared_statements": self.max_prepared_statements,
            "total_transactions": transactions,
            "total_wait_time": wait,
            "wait_per_transaction": (
                round(wait / transactions, 6) if wait is not None and transactions else None
            ),
        }

    def _missing(self) -> dict[str, str]:
        why = (
            "not read through PgBouncer (it would take a server connection from the pool "
            "measured); monitor the PostgreSQL server's own URL for it"
        )
        return {"idleInTransaction": why, "waitingOnLock": why, "waitingOnClient": why}
