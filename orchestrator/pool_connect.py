"""The pool monitor's one connection: opened in-process with psycopg 3, errors in one line.

The password goes to libpq in-process (from the URL, or libpq's own environment and
files), never to a command line. A connection that cannot be opened is a
:class:`TargetError` whose line names PgBouncer's admin console only where PgBouncer is known
to be the one answering.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from orchestrator import redact
from orchestrator.database_url import Database
from orchestrator.errors import TargetError

MONITOR_APP = "orchestrate-monitor"
ADMIN_DB = "pgbouncer"
# The monitor must not hang a run: a short connect limit.
MAX_CONNECT_TIMEOUT = 10
Connection = psycopg.Connection[DictRow]


def describe_error(exc: BaseException, password: str | None = None) -> str:
    """libpq's reason on one line: 'Connection refused', 'SASL authentication failed'."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    reason = line.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    return redact.redact_text(reason, (password,) if password else ())


def connect(db: Database, dbname: str, admin: bool, console: bool = False) -> Connection:
    """One autocommit connection (no snapshot held between samples); TargetError if none."""
    timeout = int(db.env.get("PGCONNECT_TIMEOUT", MAX_CONNECT_TIMEOUT))
    kwargs: dict[str, Any] = {
        "host": db.host,
        "port": db.port,
        "dbname": dbname,
        "application_name": MONITOR_APP,
        "connect_timeout": max(2, min(timeout, MAX_CONNECT_TIMEOUT)),
    }
    if db.user:
        kwargs["user"] = db.user
    if db.password:
        kwargs["password"] = db.password
    if "PGSSLMODE" in db.env:
        kwargs["sslmode"] = db.env["PGSSLMODE"]
    if "PGOPTIONS" in db.env and not admin:
        kwargs["options"] = db.env["PGOPTIONS"]
    try:
        conn = psycopg.connect(autocommit=True, row_factory=dict_row, **kwargs)
    except psycopg.Error as exc:
        raise _unreachable(db, dbname, admin, console, exc) from None
    # PgBouncer's admin console speaks only the simple query protocol; psycopg would switch
    # a query repeated 5 times to a prepared (extended protocol) one.
    conn.prepare_threshold = None
    return conn


def _unreachable(
    db: Database, dbname: str, admin: bool, console: bool, exc: BaseException
) -> TargetError:
    """One line; it names PgBouncer's console only where PgBouncer is known to answer."""
    who = f"{db.user}@" if db.user else ""
    reason = describe_error(exc, db.password)
    where = f"the database at {who}{db.host}:{db.port}/{db.dbname}"
    hint = ""
    if admin and (console or reason == "not allowed"):
        where = f"PgBouncer's admin console {who}{db.host}:{db.port}/{dbname}"
    if "authentication failed" in reason.lower():
        hint = " (wrong user or password?)"
    elif admin and reason == "not allowed":
        hint = f" (add {db.user or 'the user'} to PgBouncer's stats_users or admin_users)"
    return TargetError(f"pool monitor: cannot connect to {where}: {reason}{hint}")
