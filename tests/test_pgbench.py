"""pgbench adapter: the generated plan, and real pgbench runs against a throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from engine_helpers import run_engine
from pg_server import MAX_CONNECTIONS, PASSWORD, PgServer, find_bindir, start_postgres

from orchestrator import histogram as hist
from orchestrator.engines import pgbench
from orchestrator.engines.base import Invocation
from orchestrator.engines.pgbench import output as parser
from orchestrator.engines.pgbench import scripts
from orchestrator.errors import ConfigError, ParseError
from orchestrator.models import LoadTestResult, Status
from orchestrator.scenarios import LoadShape, PoolInFront, Scenario, Stage

FIXTURES = Path(__file__).parent / "fixtures" / "pgbench"
PG15 = "pgbench (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL (max_connections=20) on a free 127.0.0.1 port."""
    if find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl/postgres/psql) on this machine")
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def bench_url(pg_server: PgServer) -> str:
    """A database whose pgbench tables exist already (scale 10), with the password URL."""
    url = pg_server.create_database("loaded")
    db = pgbench.parse_database_url(url)
    argv = [pgbench_path(), *pgbench.connection_args(db), "-i", "-s", "10", "-q", db.dbname]
    subprocess.run(argv, env={**os.environ, **db.env}, capture_output=True, check=True)
    return url


def pgbench_path() -> str:

    return pgbench.executable()


def make_scenario(url: str, shape: LoadShape | None = None, **kw: Any) -> Scenario:
    return Scenario(
        name="db-test",
        protocol="postgres",
        base_url=url,
        shape=shape or LoadShape.constant(10, 2.0),
        **kw,
    )


def run_scenario(
    scenario: Scenario, workdir: Path, timeout: float | None = None
) -> tuple[LoadTestResult, Invocation]:
    engine_run = run_engine("pgbench", scenario, workdir, timeout=timeout)
    return engine_run.result, engine_run.invocation


# ---- plan (no load) ----


def test_plan_for_ramp_then_hold_is_golden(tmp_path: Path) -> None:
    url = "postgresql://app:p%40ss@db.local:6543/shop?sslmode=disable"
    # Behind a PgBouncer in transaction mode (as the pool monitor would find it), looking
    # for the limit: stop at the first step over 1% errors or 250 ms p95.
    scenario = make_scenario(
        url,
        LoadShape(start=0, stages=[Stage(duration=4, target=4), Stage(duration=3, target=4)]),
        pool=PoolInFront(source="pgbouncer", pool_mode="transaction"),
        stop_when_error_rate=1,
        stop_when_p95=250,
    )
    db = pgbench.parse_database_url(url)
    plan = pgbench.build_plan(scenario, db, "/pg/pgbench", Path("/w"), Path("/w/o.json"), PG15, 2)
    conn = ["-h", "db.local", "-p", "6543", "-U", "app"]
    shipped = scripts.script_path

    def step_argv(clients: int, seconds: int, first: bool, n: int) -> list[str]:
        return [
            "/pg/pgbench", *conn, "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(seconds), "-M", "extended", "-f", f"{shipped('read')}@7",
            "-f", f"{shipped('write')}@2", "-f", f"{shipped('transaction')}@1",
            "--progress", "1", "-l", "--log-prefix", f"/w/pgbench_log_s{n}",
            "--failures-detailed", *([] if first else ["-n"]), "shop",
        ]  # fmt: skip

    assert plan == {
        "database": "app@db.local:6543/shop",
        "pgbenchVersion": PG15,
        "workload": scripts.describe_workload("mixed", mode="extended"),
        "probe": ["/pg/pgbench", *conn, "-n", "-c", "1", "-t", "1", "-b", "select-only", "shop"],
        "init": ["/pg/pgbench", *conn, "-i", "-s", "4", "-q", "shop"],
        "initScale": 4,
        # The runner adds -s with the scale the probe reports, before the database name.
        "scaleFromProbe": True,
        # A 4 s ramp from 0 climbs in 2 s steps; the last one runs on through the hold.
        "steps": [
            {"index": 0, "clients": 2, "seconds": 2, "argv": step_argv(2, 2, True, 1),
             "logPrefix": "/w/pgbench_log_s1"},
            {"index": 1, "clients": 4, "seconds": 5, "argv": step_argv(4, 5, False, 2),
             "logPrefix": "/w/pgbench_log_s2"},
        ],
        "stopRules": {"errorRate": 1.0, "p95": 250.0, "poolWait": None},
        "stepFacts": True,
        "poolSamples": "/w/pool-samples.jsonl",
        "workdir": "/w",
        "output": "/w/o.json",
    }  # fmt: skip
    assert plan["workload"] == (
        "query type mixed, each transaction one script drawn by weight: read.sql weighted 7 "
        "(one point SELECT by primary key (pgbench's select-only)); write.sql weighted 2 (one "
        "autocommitted UPDATE of a random account); transaction.sql weighted 1 (a TPC-B-like "
        "transaction (BEGIN, 3 UPDATEs, a SELECT, an INSERT, END; pgbench's tpcb-like)); "
        "-M extended"
    )
    assert db.env == {"PGCONNECT_TIMEOUT": "10", "PGSSLMODE": "disable", "PGPASSWORD": "p@ss"}


def test_plan_before_pgbench_15_has_no_failures_detailed() -> None:
    scenario = make_scenario("postgresql://u@127.0.0.1/d")
    db = pgbench.parse_database_url(scenario.base_url)
    old = "pgbench (PostgreSQL) 14.11"
    plan = pgbench.build_plan(scenario, db, "pgbench", Path("/w"), Path("/w/o"), old, 8)
    argv = plan["steps"][0]["argv"]
    assert "--failures-detailed" not in argv
    assert argv[argv.index("-j") + 1] == "8"
    assert pgbench.major_version(old) == 14
    assert pgbench.major_version(PG15) == 15


def test_prepare_refuses_what_pgbench_cannot_do(tmp_path: Path) -> None:
    url = "postgresql://u@127.0.0.1/d"
    with pytest.raises(ConfigError, match="closed model"):
        pgbench.prepare(make_scenario(url, LoadShape.constant(5, 2, model="open")), tmp_path)
    with pytest.raises(ConfigError, match="max_rate"):
        pgbench.prepare(make_scenario(url, max_rate=10), tmp_path)
    with pytest.raises(ConfigError, match="unsupported URL parameter 'target_session_attrs'"):
        pgbench.parse_database_url(url + "?target_session_attrs=any")


def test_connection_errors_are_classified() -> None:
    kinds = {
        "FATAL:  sorry, too many clients already": "too_many_connections",
        "FATAL:  remaining connection slots are reserved for non-replication superuser "
        "connections": "too_many_connections",
        "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER "
        "attribute": "too_many_connections",
        "Connection refused": "connection_refused",
        'FATAL:  password authentication failed for user "bench"': "auth_failed",
        'FATAL:  database "nope" does not exist': "database_missing",
        "timeout expired": "timeout",
    }
    for message, kind in kinds.items():
        assert parser.classify_connection_error(message) == kind, message
    line = "progress: 2.0 s, 10816.3 tps, lat 0.891 ms stddev 1.620, 3 failed, 0 retried"
    assert parser.progress_figures(line) == "2.0 s: 10816.3 req/s, 3 failed, lat avg 0.891 ms"


def test_recorded_exhaustion_run_parses(tmp_path: Path) -> None:
    """A real run (1 client for 1 s, then 30 clients against max_connections=20)."""
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "exhaustion", folder)
    scenario = make_scenario("postgresql://bench:pw@127.0.0.1:5/fixture")
    result = parser.parse_output(scenario, folder / "pgbench-output.json")
    log_lines = (folder / "pgbench_log_s1.6119").read_text().count("\n")
    assert result.successful_requests == log_lines == 3363
    assert result.errors == {"too_many_connections": 30}
    assert result.total_requests == log_lines + 30
    assert [s.concurrency for s in result.steps] == [1, 30]
    assert [(s.total_requests, s.failed_requests) for s in result.steps] == [(3363, 0), (30, 30)]
    assert result.status is Status.COMPLETED
    assert result.error_rate is not None and 0 < result.error_rate < 1
    assert "created them with `pgbench -i -s 10`" in (result.status_detail or "")
    assert "remaining connection slots are reserved" in (result.status_detail or "")
    assert result.histogram is not None
    assert hist.decode(result.histogram).get_total_count() == 3363
    assert sum(b.requests for b in result.time_series) == 3363
    assert result.target == "postgresql://bench:***@127.0.0.1:5/fixture"


def test_log_cut_mid_line_is_a_parse_error_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURES / "exhaustion", folder)
    log = folder / "pgbench_log_s1.6119"
    text = log.read_text()
    log.write_text(text[: len(text) // 2].rsplit(" ", 2)[0])
    scenario = make_scenario("postgresql://bench@127.0.0.1/fixture")
    with pytest.raises(ParseError, match=r"pgbench_log_s1\.6119 \(line \d+\)"):
        parser.parse_output(scenario, folder / "pgbench-output.json")
    log.write_text(text.replace("\n", "\ngarbage\n", 1))
    with pytest.raises(ParseError, match=r"pgbench_log_s1\.6119 \(line 2\)"):
        parser.parse_output(scenario, folder / "pgbench-output.json")


# ---- real runs ----


@pytest.mark.load
def test_db_pool_like_run_creates_tables_and_measures(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.create_database("pool")
    result, _ = run_scenario(make_scenario(url, stop_when_error_rate=50), tmp_path)
    assert result.status is Status.COMPLETED, result.status_detail
    assert result.errors == {}
    assert result.failed_requests == 0 and result.error_rate == 0
    assert result.successful_requests and result.successful_requests > 100
    assert result.throughput and result.throughput > 0
    rt = result.response_time
    assert rt.source == "histogram"
    assert rt.p50 is not None and rt.p95 is not None and rt.p99 is not None
    assert 0 < rt.p50 <= rt.p95 <= rt.p99
    assert result.duration == 2.0 and result.concurrency == 10
    assert "whole transaction" in result.latency_measures
    assert "created them with `pgbench -i -s 10`" in (result.status_detail or "")
    assert sum(b.requests for b in result.time_series) == result.total_requests
    assert {b.concurrency for b in result.time_series} == {10}
    summary = parser.read_summary(tmp_path / "pgbench_s1.out")
    assert summary["processed"] == result.successful_requests


@pytest.mark.load
def test_more_clients_than_max_connections_shows_exhaustion(bench_url: str, tmp_path: Path) -> None:
    over = MAX_CONNECTIONS + 10
    # 5 clients for 2 s, then more than the server's connection slots (the third step,
    # even more, is not run: stop_when_error_rate).
    stages = [Stage(duration=2, target=5), Stage(duration=1, target=over),
              Stage(duration=1, target=over + 5)]  # fmt: skip
    scenario = make_scenario(bench_url, LoadShape(stages=stages), stop_when_error_rate=50)
    result, _ = run_scenario(scenario, tmp_path / "ramp")
    assert result.status is Status.COMPLETED, result.status_detail
    assert result.errors == {"too_many_connections": over}
    assert result.error_rate is not None and result.error_rate > 0
    assert [s.concurrency for s in result.steps] == [5, over]
    assert result.steps[0].failed_requests == 0
    assert result.steps[1].failed_requests == result.steps[1].total_requests == over
    assert "stopped early after step 2 of 3" in (result.status_detail or "")
    assert "the database refused connections" in (result.status_detail or "")

    alone, _ = run_scenario(make_scenario(bench_url, LoadShape.constant(over, 1)), tmp_path / "b")
    assert alone.status is Status.TARGET_FAILED
    assert alone.errors == {"too_many_connections": over} and alone.error_rate == 100.0
    assert "no request succeeded" in (alone.status_detail or "")


@pytest.mark.load
def test_password_never_reaches_argv_or_saved_files(bench_url: str, tmp_path: Path) -> None:
    result, invocation = run_scenario(make_scenario(bench_url, LoadShape.constant(2, 1)), tmp_path)
    assert result.status is Status.COMPLETED, result.status_detail
    assert invocation.env["PGPASSWORD"] == PASSWORD
    forms = {PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD)}
    plan = (tmp_path / pgbench.PLAN_NAME).read_text()
    argvs = [invocation.argv, *(s["argv"] for s in json.loads(plan)["steps"])]
    for argv in argvs:
        for arg in argv:
            assert not any(f in arg for f in forms), arg
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for path in files:
        data = path.read_bytes()
        assert not any(f.encode() in data for f in forms), path
    assert PASSWORD not in result.to_json() and "***" in result.target


@pytest.mark.load
def test_closed_port_and_bad_password_are_target_failures(
    pg_server: PgServer, closed_port: int, tmp_path: Path
) -> None:
    url = f"postgresql://bench:x@127.0.0.1:{closed_port}/bench"
    closed, _ = run_scenario(make_scenario(url, LoadShape.constant(2, 1)), tmp_path / "closed")
    assert closed.status is Status.TARGET_FAILED
    assert closed.errors == {"connection_refused": 1}
    assert closed.steps == [] and closed.response_time.p50 is None
    assert "responseTime" in closed.missing

    wrong = pg_server.url(password="wrong-password")
    denied, _ = run_scenario(make_scenario(wrong, LoadShape.constant(2, 1)), tmp_path / "auth")
    assert denied.status is Status.TARGET_FAILED
    assert denied.errors == {"auth_failed": 1}


@pytest.mark.load
def test_serialization_failures_are_counted_by_kind(bench_url: str, tmp_path: Path) -> None:
    # Repeatable read makes concurrent tpcb-like updates of the same branch row fail.
    options = quote("-c default_transaction_isolation=repeatable\\ read", safe="")
    url = f"{bench_url}?options={options}"
    result, _ = run_scenario(make_scenario(url, LoadShape.constant(10, 2)), tmp_path)
    assert result.status is Status.COMPLETED, result.status_detail
    assert set(result.errors) == {"serialization_failure"}
    failed = result.errors["serialization_failure"]
    summary = parser.read_summary(tmp_path / "pgbench_s1.out")
    assert failed == summary["failed"] > 0
    assert result.failed_requests == failed
    assert sum(b.errors for b in result.time_series) == failed


@pytest.mark.load
def test_time_limit_keeps_what_was_measured(bench_url: str, tmp_path: Path) -> None:
    scenario = make_scenario(bench_url, LoadShape.constant(4, 20))
    result, _ = run_scenario(scenario, tmp_path, timeout=3)
    assert result.status is Status.TOOL_FAILED
    assert "time limit" in (result.status_detail or "")
    assert result.successful_requests and result.successful_requests > 0
    assert result.response_time.p95 is not None
    assert 0 < result.duration < 5
