"""Secrets at rest: none is ever written in clear, shown on the console, or on a command line.

One real suite, every engine that holds a secret, against real servers: the reference
target with ``--require-auth`` (the config's login step must work, or nothing succeeds)
and a throwaway PostgreSQL whose password is unique to this test. Unique secrets are seeded
in the login step, a header, a request body and the database URL; while the suite runs,
every process's ``/proc/PID/cmdline`` is read ten times a second; afterwards the report
directory (every file, gzip'd ones opened), the run's temp folder and the console output
are searched for every secret and for any token the target issued.
"""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from conftest import RunningTarget
from fault_helpers import orchestrate, run_dirs
from pg_server import PgServer, find_bindir, start_postgres

from orchestrator.models import LoadTestResult, Status
from orchestrator.reference_target.db import Database, hash_password

# Every token the reference target signs starts with this header (json.dumps' spacing).
TOKEN_HEADER = base64.urlsafe_b64encode(b'{"alg": "HS256", "typ": "JWT"}').rstrip(b"=")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    if find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl/postgres/psql) on this machine")
    with start_postgres() as server:
        yield server


def seed_user(db_file: Path, email: str, password: str) -> None:
    """A reference-target database whose one extra user logs in with ``password``."""
    Database(str(db_file))  # creates the schema and the seed data
    salt = uuid.uuid4().bytes
    with sqlite3.connect(db_file) as conn:
        conn.execute(
            "INSERT INTO users (email, salt, password_hash) VALUES (?, ?, ?)",
            (email, salt, hash_password(password, salt)),
        )


class CmdlineWatch:
    """Reads every process's command line until stopped; keeps those holding a needle."""

    def __init__(self, needles: list[bytes]) -> None:
        self.needles = needles
        self.hits: list[str] = []
        self.reads = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._halt.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._halt.wait(0.1):
            for pid in psutil.pids():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                self.reads += 1
                if any(needle in cmdline for needle in self.needles):
                    shown = cmdline.replace(b"\0", b" ")[:300]
                    self.hits.append(f"{pid}: {shown!r}")


def file_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data += gzip.decompress(data)
        except (EOFError, OSError) as exc:
            raise AssertionError(f"{path} is not a whole gzip file: {exc}") from exc
    return data


def found_in(folder: Path, needles: list[bytes]) -> list[str]:
    return [
        f"{path}: {needle!r}"
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
        for needle in needles
        if needle in file_bytes(path)
    ]


@pytest.mark.load
def test_no_secret_is_written_shown_or_passed_on_a_command_line(
    tmp_path: Path,
    target_factory: Callable[..., RunningTarget],
    postgres: PgServer,
    node_tools: Path,
) -> None:
    tag = uuid.uuid4().hex[:12]
    secrets = {
        "LOGIN_PASSWORD": f"login-pw-{tag}",
        "API_KEY": f"api-key-{tag}",
        "BODY_SECRET": f"body-secret-{tag}",
        "PG_PASSWORD": f"pg-pw-{tag}",
    }
    literal_key = f"literal-key-{tag}"  # written in the config file itself, not from ${VAR}
    email = f"load-{tag}@example.com"
    db_file = tmp_path / "target.sqlite"
    seed_user(db_file, email, secrets["LOGIN_PASSWORD"])
    target = target_factory("--require-auth", "--db", str(db_file))
    postgres.psql(f"ALTER ROLE bench PASSWORD '{secrets['PG_PASSWORD']}'")
    database = f"postgresql://bench:${{PG_PASSWORD}}@127.0.0.1:{postgres.port}/bench"
    config = {
        "target": {"base_url": target.url, "port": target.port},
        "login": {
            "path": "/api/auth/login",
            "body": {"email": email, "password": "${LOGIN_PASSWORD}"},
        },
        "endpoints": {
            "start": {
                "method": "POST",
                "path": "/api/session/start",
                "headers": {"X-Api-Key": "${API_KEY}"},
            },
            "transcribe": {
                "method": "POST",
                "path": "/api/transcription",
                "headers": {"Api-Key": literal_key},
                "body": {"text": "${BODY_SECRET}", "password": "${BODY_SECRET}"},
            },
        },
        "database": {"url": database},
        "scenarios": {
            f"sec-{tool}": {"tool": tool, "users": 2, "hold": 2}
            for tool in ("autocannon", "k6", "artillery", "pgbench")
        },
        "suites": {"secrets": [f"sec-{t}" for t in ("autocannon", "k6", "artillery", "pgbench")]},
        "thresholds": [],
        "report_dir": "load-reports",
    }
    (tmp_path / "orchestrate.yaml").write_text(json.dumps(config))  # JSON is YAML
    needles = [s.encode() for s in [*secrets.values(), literal_key]] + [TOKEN_HEADER]

    args = ["suite", "secrets", "--config", str(tmp_path / "orchestrate.yaml")]
    with CmdlineWatch(needles) as watch, orchestrate(args, tmp_path, secrets) as run:
        code = run.finish(timeout=240)
    assert watch.reads > 100  # it did look while the tools ran
    assert code == 0, run.stderr

    (run_dir,) = run_dirs(tmp_path / "load-reports")
    for tool in ("autocannon", "k6", "artillery", "pgbench"):
        result = LoadTestResult.model_validate_json(
            (run_dir / f"sec-{tool}" / "result.json").read_text()
        )
        # The secrets really went to the servers: authenticated requests succeeded.
        assert result.status is Status.COMPLETED, (tool, result.status_detail)
        assert result.successful_requests, tool
        assert result.failed_requests == 0, (tool, result.errors)

    assert watch.hits == []
    assert found_in(run_dir, needles) == []
    assert list(run.tmp.glob("orchestrate-*")) == []  # the private folders are gone
    assert found_in(run.tmp, needles) == []
    console = (run.stdout + run.stderr).encode()
    assert [n for n in needles if n in console] == []
    assert run.left_behind() == []
