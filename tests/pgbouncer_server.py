"""A throwaway PgBouncer for tests, in front of a throwaway PostgreSQL (:mod:`pg_server`).

Debian's ``pgbouncer`` on a free 127.0.0.1 port (no unix socket), in a private temp dir,
stopped and removed afterwards even when the test fails. PgBouncer refuses to run as root,
so as root it runs as ``nobody`` like the PostgreSQL server.

Auth: ``scram-sha-256`` against an auth_file that holds the ``bench`` role's SCRAM secret
read from ``pg_authid`` (never the clear password): PgBouncer checks the client's password
with it and reuses the client's SCRAM keys to log in to PostgreSQL (pass-through, 1.14+).
``bench`` is an admin user, so it can read ``SHOW POOLS``/``SHOW STATS`` on the admin
console (database ``pgbouncer``). Pools run in transaction mode by default.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pg_server import PASSWORD, USER, PgServer, _free_port, _own, _run_as_prefix

STOP_GRACE = 10.0


@dataclass
class PgBouncer:
    port: int
    pool_size: int
    pool_mode: str
    root: Path
    process: subprocess.Popen[bytes]

    def url(self, dbname: str = USER, password: str | None = PASSWORD) -> str:
        auth = f"{USER}:{quote(password, safe='')}" if password is not None else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").is_file() else None
    )


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited with {proc.returncode}:\n{text[-2000:]}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port} within {timeout} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    # SIGINT is PgBouncer's "safe shutdown" (waits for clients); SIGTERM is immediate.
    proc.terminate()
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def start_pgbouncer(
    pg: PgServer,
    pool_size: int = 10,
    pool_mode: str = "transaction",
    max_client_conn: int = 200,
    admin_users: str = USER,
) -> Iterator[PgBouncer]:
    """PgBouncer on a free loopback port forwarding every database to ``pg``."""
    binary = find_pgbouncer()
    if binary is None:
        raise FileNotFoundError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    secret = pg.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{USER}'")
    if not secret.startswith("SCRAM-SHA-256$"):
        raise RuntimeError(f"role {USER} has no SCRAM secret")
    root = Path(tempfile.mkdtemp(prefix="orchestrate-pgbouncer-"))
    root.chmod(0o755)
    port = _free_port()
    userlist, config, log = root / "userlist.txt", root / "pgbouncer.ini", root / "pgbouncer.log"
    userlist.write_text(f'"{USER}" "{secret}"\n', encoding="utf-8")
    userlist.chmod(0o600)
    config.write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={pg.port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {userlist}\n"
        f"admin_users = {admin_users}\n"
        f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n"
        f"max_client_conn = {max_client_conn}\n"
        f"logfile = {log}\npidfile = {root / 'pgbouncer.pid'}\n"
        # A stuck test fails fast rather than queueing for PgBouncer's default 120 s.
        "query_wait_timeout = 30\n",
        encoding="utf-8",
    )
    for path in (root, userlist, config):
        _own(path)
    proc = subprocess.Popen(
        [*_run_as_prefix(), binary, str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=root,
        start_new_session=True,
    )
    try:
        _wait_listening(port, proc, log, timeout=30)
        yield PgBouncer(port, pool_size, pool_mode, root, proc)
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)
