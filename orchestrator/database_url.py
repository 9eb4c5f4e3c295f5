"""A PostgreSQL URL as libpq's parts: host, port, user, database, and the environment that
carries the password and the other parameters (never a command line)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from orchestrator import redact
from orchestrator.errors import ConfigError

# URL query parameters that libpq also reads from the environment.
QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
}


@dataclass(frozen=True)
class Database:
    """Where a database client connects; ``password`` only ever goes to its environment."""

    host: str
    port: int
    user: str | None
    dbname: str
    password: str | None
    env: dict[str, str]

    @property
    def label(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"{who}{self.host}:{self.port}/{self.dbname}"


def parse_database_url(url: str, timeout: float = 10.0) -> Database:
    """host/port/user/dbname/password of a postgres URL; ConfigError when it cannot be used."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ConfigError(f"a database URL must be postgresql://, got {redact.redact_url(url)!r}")
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigError(f"bad port in {redact.redact_url(url)!r}") from exc
    dbname = unquote(parts.path.lstrip("/")) or (unquote(parts.username or "") or "postgres")
    env = {"PGCONNECT_TIMEOUT": str(max(2, round(timeout)))}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in QUERY_ENV:
            known = ", ".join(sorted(QUERY_ENV))
            raise ConfigError(f"unsupported URL parameter {key!r} (supported: {known})")
        env[QUERY_ENV[key]] = value
    password = unquote(parts.password) if parts.password is not None else None
    if password:
        env["PGPASSWORD"] = password
    return Database(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username) if parts.username else None,
        dbname=dbname,
        password=password,
        env=env,
    )
