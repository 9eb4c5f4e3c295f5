"""A throwaway PostgreSQL server for tests: private data dir, free 127.0.0.1 port, small
``max_connections`` (so connection-pool exhaustion can be provoked), stopped afterwards.

Uses the machine's server binaries (``initdb``, ``pg_ctl``, ``psql``): on PATH or under
``/usr/lib/postgresql/*/bin``. Never touches a server already running on the machine.
initdb/postgres refuse to run as root, so as root they run as ``nobody`` via ``setpriv``
(or ``runuser``), in a temp dir that user owns.

Roles: ``postgres`` (superuser, trusted on the unix socket and 127.0.0.1) and ``bench``
(owner of database ``bench``, SCRAM password over TCP) so tests can check that a password
never leaks.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

UNPRIVILEGED = "nobody"
# Characters that must be percent-encoded in a URL, to test that decoding.
PASSWORD = "S3cret pw@x:y/z"
USER = "bench"
# PostgreSQL keeps 3 of these for superusers: 17 for `bench`.
MAX_CONNECTIONS = 20


@dataclass
class PgServer:
    port: int
    bindir: Path
    root: Path
    run_as: list[str]

    def url(self, dbname: str = USER, password: str | None = PASSWORD) -> str:
        auth = f"{USER}:{quote(password, safe='')}" if password is not None else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; returns psql's unaligned output."""
        out = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.root / "sock"), "-p", str(self.port), "-U", "postgres",
             "-d", dbname, "-c", sql],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return out.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new empty database owned by ``bench``; returns its URL (with the password)."""
        self.psql(f"CREATE DATABASE {name} OWNER {USER}")
        return self.url(name)


def find_bindir() -> Path | None:
    """A folder holding initdb, pg_ctl and psql, or None."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "psql")):
            return folder
    return None


def _run_as_prefix() -> list[str]:
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={UNPRIVILEGED}", "--regid=nogroup", "--clear-groups"]
    return ["runuser", "-u", UNPRIVILEGED, "--"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, UNPRIVILEGED, "nogroup")


@contextmanager
def start_postgres(max_connections: int = MAX_CONNECTIONS) -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl, postgres, psql)")
    # Not under pytest's tmp dir: its parents are 0700 root, closed to the server's user.
    root = Path(tempfile.mkdtemp(prefix="orchestrate-pg-"))
    root.chmod(0o755)
    run_as = _run_as_prefix()
    data, sock, pwfile = root / "data", root / "sock", root / "pw"
    sock.mkdir()
    pwfile.write_text("unused-superuser-password\n", encoding="utf-8")
    for path in (root, sock, pwfile):
        _own(path)
    server = PgServer(port=_free_port(), bindir=bindir, root=root, run_as=run_as)
    env = {**os.environ, "HOME": str(root), "LC_ALL": "C"}
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--pwfile", str(pwfile), "-E", "UTF8", "--no-sync", "--auth-local=trust"],
            capture_output=True, text=True, timeout=120, check=True, env=env, cwd=root,
        )  # fmt: skip
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all postgres 127.0.0.1/32 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n",
            encoding="utf-8",
        )
        options = (
            f"-p {server.port} -k {sock} -c listen_addresses=127.0.0.1 "
            f"-c max_connections={max_connections} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
             "-w", "-t", "60", "-o", options, "start"],
            capture_output=True, text=True, timeout=90, check=True, env=env, cwd=root,
        )  # fmt: skip
        server.psql(f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'")
        server.psql(f"CREATE DATABASE {USER} OWNER {USER}")
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True, timeout=60, check=False, env=env, cwd=root,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
