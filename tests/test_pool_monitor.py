"""Pool monitor, query-type scripts and the throwaway PgBouncer, on real servers.

A private PostgreSQL (max_connections=20, 3 reserved) with pgbench's tables at scale 10,
and a PgBouncer (pool_size 10, transaction mode) in front of it; real pgbench runs of a
few seconds while the monitor samples.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from pg_server import MAX_CONNECTIONS, PASSWORD, USER, PgServer, find_bindir, start_postgres
from pgbouncer_server import PgBouncer, find_pgbouncer, start_pgbouncer

from orchestrator.engines import pgbench
from orchestrator.engines.pgbench import scripts as pgbench_scripts
from orchestrator.errors import ConfigError, ExitCode, TargetError
from orchestrator.models import PoolMetrics
from orchestrator.pool_connect import MONITOR_APP, describe_error
from orchestrator.pool_monitor import open_pool_monitor

SCALE = 10
POOL_SIZE = 10
RESERVED = 3  # PostgreSQL's default superuser_reserved_connections
PASSWORD_FORMS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD))


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    if find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl/postgres/psql)")
    with start_postgres() as server:
        db = pgbench.parse_database_url(server.url())
        argv = [pgbench_path(), *pgbench.connection_args(db), "-i", "-s", str(SCALE), "-q", USER]
        subprocess.run(argv, env={**os.environ, **db.env}, capture_output=True, check=True)
        yield server


@pytest.fixture(scope="module")
def bouncer(pg: PgServer) -> Iterator[PgBouncer]:
    if find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed (scripts/setup.sh installs it as root)")
    with start_pgbouncer(pg, pool_size=POOL_SIZE) as server:
        yield server


def pgbench_path() -> str:

    return pgbench.executable()


def run_pgbench(port: int, clients: int, seconds: int, args: list[str]) -> str:
    """pgbench against 127.0.0.1:port as bench (password from the environment); stdout."""
    argv = [pgbench_path(), "-h", "127.0.0.1", "-p", str(port), "-U", USER, "-n",
            "-c", str(clients), "-j", "2", "-T", str(seconds), *args, USER]  # fmt: skip
    env = {**os.environ, "PGPASSWORD": PASSWORD}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-1000:]
    return done.stdout


def monitored(url: str, clients: int, port: int, args: list[str], seconds: int = 3) -> PoolMetrics:
    monitor = open_pool_monitor(url, interval=0.1)
    monitor.start()
    try:
        run_pgbench(port, clients, seconds, args)
    finally:
        monitor.stop()
    return monitor.metrics()


def peak(metrics: PoolMetrics, figure: str) -> float:
    value = metrics.summary[figure].peak
    assert value is not None, figure
    return value


# ---- query types: arguments (no load) ----


def test_script_args_for_each_query_type(tmp_path: Path) -> None:
    def path(name: str) -> str:
        return str(pgbench_scripts.script_path(name))  # type: ignore[arg-type]

    assert pgbench_scripts.script_args("read") == ["-f", f"{path('read')}@1"]
    assert pgbench_scripts.script_args("transaction", scale=10) == [
        "-f", f"{path('transaction')}@1", "-s", "10",
    ]  # fmt: skip
    assert pgbench_scripts.script_args("mixed") == [
        "-f", f"{path('read')}@7", "-f", f"{path('write')}@2", "-f", f"{path('transaction')}@1",
    ]  # fmt: skip
    own = tmp_path / "my@queries.sql"
    own.write_text("SELECT 1;\n")
    assert pgbench_scripts.script_args("mixed", {"read": 3, "write": 0}, [(own, 2)]) == [
        "-f", f"{path('read')}@3", "-f", f"{own}@2",
    ]  # fmt: skip
    assert pgbench_scripts.script_args("custom", custom=[(own, 5)]) == ["-f", f"{own}@5"]
    for name in pgbench_scripts.BUILTIN_SCRIPTS:
        text = pgbench_scripts.script_path(name).read_text()
        assert "pgbench_accounts" in text and ":scale" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query_type": "bulk"}, "unknown query type 'bulk'"),
        ({"query_type": "read", "weights": {"read": 1}}, "weights apply to query type 'mixed'"),
        ({"query_type": "mixed", "weights": {"reads": 1}}, r"unknown script\(s\) reads"),
        ({"query_type": "mixed", "weights": {"read": -1}}, "weight of read must be"),
        ({"query_type": "mixed", "weights": {"read": 0}}, "every script has weight 0"),
        ({"query_type": "custom"}, "needs at least one SQL file"),
        ({"query_type": "custom", "custom": [(Path("/nope.sql"), 1)]}, "'/nope.sql' not found"),
        ({"query_type": "write", "custom": [(Path("/nope.sql"), 1)]}, "'custom' or 'mixed'"),
        ({"query_type": "read", "scale": 0}, "scale must be >= 1"),
    ],
)
def test_bad_query_choices_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pgbench_scripts.script_args(**kwargs)  # type: ignore[arg-type]


def test_query_mode_avoids_named_statements_behind_a_transaction_pooler() -> None:
    assert pgbench_scripts.query_mode(None) == "prepared"
    assert pgbench_scripts.query_mode("session") == "prepared"
    assert pgbench_scripts.query_mode("transaction") == "extended"
    assert pgbench_scripts.query_mode("statement", max_prepared_statements=0) == "extended"
    assert pgbench_scripts.query_mode("transaction", max_prepared_statements=200) == "prepared"


# ---- the monitor on PostgreSQL ----


@pytest.mark.load
def test_postgres_monitor_counts_clients_but_not_itself(pg: PgServer) -> None:
    monitor = open_pool_monitor(pg.url(), interval=0.1)
    try:
        # Its connection is there, under its own name ...
        names = pg.psql("SELECT application_name FROM pg_stat_activity").splitlines()
        assert names.count(MONITOR_APP) == 1
        monitor.start()
        run_pgbench(pg.port, 12, 2, pgbench_scripts.script_args("transaction", scale=SCALE))
    finally:
        monitor.stop()
    metrics = monitor.metrics()
    assert metrics.source == "postgres" and metrics.server == f"{USER}@127.0.0.1:{pg.port}/bench"
    assert metrics.max_connections == MAX_CONNECTIONS
    assert metrics.reserved_connections == RESERVED
    assert metrics.monitor_connections == 1
    # ... and out of the figures: nothing else was connected before pgbench.
    first = metrics.series[0]
    assert first.total_connections == 0 and first.utilization_percent == 0
    assert peak(metrics, "totalConnections") == 12
    assert peak(metrics, "databaseConnections") == 12
    assert peak(metrics, "utilizationPercent") == round(100 * 12 / (MAX_CONNECTIONS - RESERVED), 2)
    assert 1 <= peak(metrics, "activeConnections") <= 12
    for sample in metrics.series:
        assert sample.total_connections is not None
        assert sample.total_connections <= MAX_CONNECTIONS - RESERVED
        parts = (sample.active_connections or 0) + (sample.idle_connections or 0)
        assert parts + (sample.idle_in_transaction or 0) <= sample.total_connections
        assert sample.waiting_clients is None
    assert "waitingClients" in metrics.missing and "series" not in metrics.missing
    times = [s.t for s in metrics.series]
    assert times == sorted(times) and len(times) >= 10
    assert not any(f in metrics.model_dump_json() for f in PASSWORD_FORMS)


@pytest.mark.load
def test_lost_monitor_connection_loses_samples_not_the_run(pg: PgServer) -> None:
    monitor = open_pool_monitor(pg.url(), interval=0.1)
    monitor.start()
    time.sleep(0.3)
    pg.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{MONITOR_APP}'")  # fmt: skip
    time.sleep(0.3)
    monitor.stop()
    metrics = monitor.metrics()
    assert len(metrics.series) >= 2
    assert "samples could not be read" in metrics.missing["series"]


# ---- the monitor on PgBouncer ----


@pytest.mark.load
def test_pgbouncer_pool_queues_clients_and_waits_grow(pg: PgServer, bouncer: PgBouncer) -> None:
    mode = pgbench_scripts.query_mode(bouncer.pool_mode)
    args = ["-M", mode, *pgbench_scripts.script_args("transaction", scale=SCALE)]
    run_pgbench(bouncer.port, POOL_SIZE, 1, args)  # open the pool's server connections
    runs: dict[int, PoolMetrics] = {}
    server_side: dict[int, PoolMetrics] = {}
    for clients in (20, 40):
        # PostgreSQL's own view at the same time, through its own URL.
        pg_monitor = open_pool_monitor(pg.url(), interval=0.1)
        pg_monitor.start()
        try:
            runs[clients] = monitored(bouncer.url(), clients, bouncer.port, args)
        finally:
            pg_monitor.stop()
        server_side[clients] = pg_monitor.metrics()
    for clients, metrics in runs.items():
        assert metrics.source == "pgbouncer"
        assert metrics.pool_size == POOL_SIZE and metrics.pool_mode == "transaction"
        assert metrics.server_version and metrics.server_version.startswith("1.")
        assert 0 < peak(metrics, "waitingClients") <= clients - POOL_SIZE
        assert peak(metrics, "activeConnections") <= POOL_SIZE
        assert peak(metrics, "totalConnections") <= POOL_SIZE
        assert peak(metrics, "utilizationPercent") == 100
        assert metrics.total_transactions and metrics.total_transactions > 100
        assert metrics.wait_per_transaction and metrics.wait_per_transaction > 0
        assert "series" not in metrics.missing
        # 20 or 40 clients, yet PostgreSQL saw only the pool's server connections.
        assert peak(server_side[clients], "totalConnections") == POOL_SIZE
        print(
            f"{clients} clients: waiting peak {peak(metrics, 'waitingClients'):.0f}, "
            f"maxwait peak {peak(metrics, 'maxWait') * 1000:.1f} ms "
            f"mean {metrics.summary['maxWait'].mean * 1000:.1f} ms, "  # type: ignore[operator]
            f"wait/xact {metrics.wait_per_transaction * 1000:.2f} ms, "
            f"{metrics.total_transactions} xacts"
        )
    assert peak(runs[40], "waitingClients") > peak(runs[20], "waitingClients")
    # The oldest waiter's wait, sampled every 0.1 s: its mean over the run (a single peak
    # is one sample, at the mercy of a scheduler hiccup on a busy machine) and PgBouncer's
    # own count of wait time per transaction both grow with the queue.
    assert runs[40].summary["maxWait"].mean > runs[20].summary["maxWait"].mean  # type: ignore[operator]
    assert runs[40].wait_per_transaction > runs[20].wait_per_transaction  # type: ignore[operator]


# ---- faults: one clear line ----


def assert_one_line(exc: TargetError, *needles: str) -> None:
    text = str(exc)
    assert "\n" not in text and exc.exit_code is ExitCode.TOOL_OR_TARGET_FAILED
    assert not any(f in text for f in PASSWORD_FORMS)
    for needle in needles:
        assert needle in text, text


@pytest.mark.load
def test_wrong_password_is_one_line(pg: PgServer, bouncer: PgBouncer) -> None:
    with pytest.raises(TargetError) as through_bouncer:
        open_pool_monitor(bouncer.url(password=PASSWORD + "x"))
    assert_one_line(
        through_bouncer.value,
        f"cannot connect to the database at bench@127.0.0.1:{bouncer.port}/bench",
        "SASL authentication failed (wrong user or password?)",
    )
    with pytest.raises(TargetError) as direct:
        open_pool_monitor(pg.url(password=PASSWORD + "x"))
    assert_one_line(direct.value, 'password authentication failed for user "bench"')


@pytest.mark.load
def test_user_without_admin_console_rights_is_told_what_to_add(pg: PgServer) -> None:
    with start_pgbouncer(pg, admin_users="") as server, pytest.raises(TargetError) as exc:
        open_pool_monitor(server.url())
    assert_one_line(exc.value, "not allowed (add bench to PgBouncer's stats_users or admin_users)")


def test_unreachable_pgbouncer_and_unknown_host_are_one_line(closed_port: int) -> None:
    url = f"postgresql://bench:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port}/bench"
    with pytest.raises(TargetError) as refused:
        open_pool_monitor(url, pooler="pgbouncer")
    assert_one_line(refused.value, f"127.0.0.1:{closed_port}/pgbouncer: Connection refused")
    with pytest.raises(TargetError) as unknown:
        open_pool_monitor("postgresql://bench:pw@db.invalid:6432/bench")
    assert_one_line(unknown.value, "db.invalid", "failed to resolve host")


@pytest.mark.load
def test_pgbouncer_flag_against_postgres_says_so(pg: PgServer) -> None:
    with pytest.raises(TargetError) as exc:
        open_pool_monitor(pg.url(), pooler="pgbouncer")
    assert_one_line(exc.value, 'database "pgbouncer" does not exist')
    monitor = open_pool_monitor(pg.url(), pooler="postgres")
    monitor.close()
    assert monitor.source == "postgres"


def test_error_line_drops_libpq_decoration() -> None:
    text = (
        'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection '
        "refused\n\tIs the server running on that host and accepting TCP/IP connections?"
    )
    assert describe_error(Exception(text)) == "Connection refused"
    fatal = 'connection failed: x failed: FATAL:  password "hunter22" bad'
    assert describe_error(Exception(fatal), "hunter22") == 'password "***" bad'


# ---- the throwaway PgBouncer itself ----


@pytest.mark.load
def test_throwaway_pgbouncer_is_gone_even_after_a_failure(pg: PgServer) -> None:
    seen: list[PgBouncer] = []
    with pytest.raises(RuntimeError, match="test failed"), start_pgbouncer(pg) as server:
        seen.append(server)
        monitor = open_pool_monitor(server.url())
        monitor.close()
        assert monitor.source == "pgbouncer"
        raise RuntimeError("test failed")
    server = seen[0]
    assert server.process.poll() is not None
    assert not server.root.exists()
    assert not Path(f"/proc/{server.process.pid}").exists()
    # Its secret was PostgreSQL's SCRAM verifier, never the password itself.
    assert not any(f in " ".join(server.process.args) for f in PASSWORD_FORMS)  # type: ignore[arg-type]
