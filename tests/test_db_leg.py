"""The database leg end to end, on real servers: pool metrics while pgbench runs, query
types, the exhaustion search, faults through the CLI and the password kept out of sight.

A private PostgreSQL (max_connections=20, 3 reserved for superusers) with pgbench's tables
at scale 10, and a PgBouncer (pool_size 10, transaction mode) in front of it; scenarios run
through :func:`orchestrator.execute.run_scenario` (the pool monitor, the engine, the
analysis) or the ``orchestrate`` command itself. Each load step lasts 1-2 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pg_server import MAX_CONNECTIONS, PASSWORD, USER, PgServer, find_bindir, start_postgres
from pgbouncer_server import PgBouncer, find_pgbouncer, start_pgbouncer

from orchestrator.config import parse_config
from orchestrator.db_limit import StopRules, find_limit
from orchestrator.db_models import DatabaseStep, QueryType
from orchestrator.engines import pgbench
from orchestrator.engines.pgbench import output as parser
from orchestrator.errors import ConfigError
from orchestrator.execute import RunSettings, run_scenario
from orchestrator.models import LoadTestResult, PoolFigure, PoolMetrics, PoolSample, Status
from orchestrator.plan import build_suite, load_config
from orchestrator.scenarios import LoadShape, Scenario, SqlFile, Stage
from reports.summary import database_rows

SCALE = 10
POOL_SIZE = 10
RESERVED = 3  # PostgreSQL's default superuser_reserved_connections
FREE_SLOTS = MAX_CONNECTIONS - RESERVED
PASSWORD_FORMS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD))
SETTINGS = RunSettings(sample_interval=0.1, sink=None)


@contextmanager
def loaded_postgres() -> Iterator[PgServer]:
    """A throwaway PostgreSQL with pgbench's tables at scale 10."""
    if find_bindir() is None:
        pytest.skip("no PostgreSQL server binaries (initdb/pg_ctl/postgres/psql)")
    with start_postgres() as server:
        db = pgbench.parse_database_url(server.url())
        argv = [pgbench.executable(), *pgbench.connection_args(db), "-i", "-s", str(SCALE),
                "-q", USER]  # fmt: skip
        subprocess.run(argv, env={**os.environ, **db.env}, capture_output=True, check=True)
        yield server


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    with loaded_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def bouncer() -> Iterator[PgBouncer]:
    """PgBouncer in front of a PostgreSQL of its own: its pool's server connections (kept
    open between tests) must not take the slots the direct tests count."""
    if find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed (scripts/setup.sh installs it as root)")
    with loaded_postgres() as behind, start_pgbouncer(behind, pool_size=POOL_SIZE) as server:
        # Open the pool's server connections: their first logins make clients wait too.
        warm = db_scenario(server.url(), LoadShape.constant(POOL_SIZE, 1))
        result = run_scenario(warm, "pgbench", Path(server.root) / "warm", None, SETTINGS)
        assert result.status is Status.COMPLETED, result.status_detail
        yield server


def db_scenario(url: str, shape: LoadShape, **fields: Any) -> Scenario:
    return Scenario(name="db", protocol="postgres", base_url=url, shape=shape, **fields)


def steps_of(*levels: int, seconds: int = 1) -> LoadShape:
    """Each level held ``seconds``: pgbench runs a 1 s climb as a step at its new level,
    and the hold after it joins that step."""
    stages = [Stage(duration=seconds, target=levels[0])]
    for level in levels[1:]:
        stages.append(Stage(duration=1, target=level))
        if seconds > 1:
            stages.append(Stage(duration=seconds - 1, target=level))
    return LoadShape(start=levels[0], stages=stages)


def peak(pool: PoolMetrics | None, figure: str) -> float:
    assert pool is not None
    value = pool.summary[figure].peak
    assert value is not None, figure
    return value


# ---- query types: exact percentiles and pool metrics ----


@pytest.mark.load
@pytest.mark.parametrize("query_type", ["read", "write", "transaction", "mixed", "custom"])
def test_every_query_type_gives_exact_percentiles_and_pool_metrics(
    pg: PgServer, tmp_path: Path, query_type: QueryType
) -> None:
    files: list[SqlFile] = []
    if query_type == "custom":
        own = tmp_path / "own.sql"
        own.write_text("UPDATE pgbench_branches SET filler = 'custom-script' WHERE bid = 2;\n")
        files = [SqlFile(path=own)]
    scenario = db_scenario(
        pg.url(), LoadShape.constant(4, 1), query_type=query_type, sql_files=files
    )
    result = run_scenario(scenario, "pgbench", tmp_path / "run", None, SETTINGS)
    assert result.status is Status.COMPLETED, result.status_detail
    assert result.errors == {} and result.failed_requests == 0
    rt = result.response_time
    assert rt.source == "histogram"
    assert rt.p50 is not None and rt.p95 is not None and rt.p99 is not None
    assert 0 < rt.p50 <= rt.p95 <= rt.p99
    assert result.successful_requests is not None and result.successful_requests > 50
    assert f"Workload: query type {query_type}" in result.latency_measures
    assert "-M prepared" in result.latency_measures
    summary = parser.read_summary(tmp_path / "run" / "pgbench_s1.out")
    assert summary["processed"] == result.successful_requests
    # The shipped scripts draw from every account: pgbench got the scale the probe found.
    assert summary["scale"] == (1 if query_type == "custom" else SCALE)
    logs = sorted((tmp_path / "run").glob("pgbench_log_s1.*"))
    used = {line.split()[3] for log in logs for line in log.read_text().splitlines()}
    assert used == ({"0", "1", "2"} if query_type == "mixed" else {"0"})
    # The pool while it ran: pgbench's 4 connections, the monitor's own left out.
    pool = result.pool
    assert pool is not None and pool.source == "postgres"
    assert len(pool.series) >= 5 and "series" not in pool.missing
    assert peak(pool, "totalConnections") == 4
    assert peak(pool, "utilizationPercent") == round(100 * 4 / FREE_SLOTS, 2)
    assert pool.monitor_connections == 1
    assert result.database_limit is None  # one step: no limit searched
    (row,) = [v for k, v in database_rows(result) if k == "pool"]
    assert "connections peak 4 of 17 free slots" in row and "1 taken by the monitor" in row
    print(f"{query_type}: {result.throughput:.0f} tps, p50 {rt.p50} ms, p99 {rt.p99} ms")
    if query_type == "custom":
        assert pg.psql("SELECT trim(filler) FROM pgbench_branches WHERE bid = 2", USER) == (
            "custom-script"
        )


@pytest.mark.load
def test_mixed_through_a_transaction_pooler_uses_unnamed_statements(
    bouncer: PgBouncer, tmp_path: Path
) -> None:
    # Named prepared statements fail through a transaction pooler ("prepared statement
    # P_1 already exists"): the monitor found PgBouncer, so the plan says -M extended.
    scenario = db_scenario(bouncer.url(), LoadShape.constant(4, 1), query_type="mixed")
    result = run_scenario(scenario, "pgbench", tmp_path, None, SETTINGS)
    assert result.status is Status.COMPLETED, result.status_detail
    assert result.errors == {} and result.failed_requests == 0
    assert result.response_time.p95 is not None
    assert result.latency_measures.endswith(
        "-M extended. Failed transactions have no latency. Raw (no coordinated-omission "
        "correction)."
    )
    pool = result.pool
    assert pool is not None and pool.source == "pgbouncer" and pool.pool_size == POOL_SIZE
    assert peak(pool, "totalConnections") <= POOL_SIZE
    # PgBouncer counted pgbench's transactions, and the few of its set-up (the probe, the
    # vacuum before the first step) that ran while the monitor watched.
    assert pool.total_transactions is not None and result.successful_requests is not None
    assert 0 <= pool.total_transactions - result.successful_requests <= 10


# ---- the exhaustion search ----


@pytest.mark.load
def test_exhaustion_finds_the_limit_within_the_reserved_slot_margin(
    pg: PgServer, tmp_path: Path
) -> None:
    scenario = db_scenario(
        pg.url(),
        steps_of(4, 8, 12, 14, 16, 18, 20),
        query_type="read",
        stop_when_error_rate=1,
        stop_when_p95=2000,
    )
    result = run_scenario(scenario, "pgbench", tmp_path, None, SETTINGS)
    assert result.status is Status.COMPLETED, result.status_detail
    limit = result.database_limit
    assert limit is not None
    print(f"limit {limit.max_database_connections}: {limit.evidence}")
    # 17 slots are free for non-superusers; the monitor holds one of them.
    assert limit.max_database_connections is not None
    assert FREE_SLOTS - 1 - 2 <= limit.max_database_connections <= FREE_SLOTS - 1
    assert limit.first_failing == limit.tested_up_to > limit.max_database_connections
    assert limit.reason == "connections_refused" and limit.stopped_early
    assert limit.evidence.startswith(f"connections refused at {limit.first_failing} clients (")
    assert limit.evidence.endswith(
        f"; max_connections={MAX_CONNECTIONS} with {RESERVED} reserved (1 used by the monitor)"
    )
    assert result.pool is not None and result.pool.superuser is False
    assert limit.component == (
        f"PostgreSQL connection slots (max_connections={MAX_CONNECTIONS}, {RESERVED} reserved)"
    )
    # It stopped at the first step that did not hold; those before all held.
    assert [s.clients for s in limit.steps] == [s.concurrency for s in result.steps]
    assert [s.failed_by for s in limit.steps[:-1]] == [None] * (len(limit.steps) - 1)
    assert limit.steps[-1].refused_kind == "too_many_connections"
    assert limit.steps[-1].failed == limit.steps[-1].clients
    assert f"stopped early after step {len(limit.steps)} of 7" in (result.status_detail or "")
    # The p95 of each step is the exact one the result shows for it.
    assert [s.p95 for s in limit.steps[:-1]] == [s.response_time.p95 for s in result.steps[:-1]]
    assert result.pool is not None and result.pool.series[0].total_connections == 0
    # The server never had more client backends than the slots let in.
    assert peak(result.pool, "totalConnections") == limit.max_database_connections
    assert result.capacity_limits is not None
    assert result.capacity_limits.max_concurrency == limit.max_database_connections
    assert [t.passed for t in result.thresholds] == []


@pytest.mark.load
def test_a_superuser_gets_the_reserved_slots_too(pg: PgServer, tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pg.port}/{USER}"
    scenario = db_scenario(url, steps_of(16, 18, 19, 20), query_type="read", stop_when_p95=2000)
    result = run_scenario(scenario, "pgbench", tmp_path, None, SETTINGS)
    limit = result.database_limit
    assert limit is not None and result.pool is not None and result.pool.superuser is True
    print(limit.evidence)
    # All 20 slots, less the monitor's; "too many clients", not "reserved", past them.
    assert (limit.max_database_connections, limit.first_failing) == (MAX_CONNECTIONS - 1, 20)
    assert limit.evidence == (
        "connections refused at 20 clients (sorry, too many clients already); "
        f"max_connections={MAX_CONNECTIONS} with {RESERVED} reserved, open to this superuser "
        "role (1 used by the monitor)"
    )


def slow_transactions(folder: Path) -> dict[str, Any]:
    """Transactions that hold a server connection 2 ms: the pool, not PgBouncer's own CPU
    (a 2-core machine), is then what makes clients queue."""
    script = folder / "slow.sql"
    script.write_text("SELECT pg_sleep(0.002);\n")
    return {"query_type": "custom", "sql_files": [SqlFile(path=script)]}


@pytest.mark.load
def test_exhaustion_through_pgbouncer_stops_when_clients_queue(
    bouncer: PgBouncer, tmp_path: Path
) -> None:
    # A wait over 1 ms for a server connection breaks the rule: the pool's size is the limit.
    scenario = db_scenario(
        bouncer.url(), steps_of(5, POOL_SIZE, 20, 30), stop_when_pool_wait=0.001,
        **slow_transactions(tmp_path),
    )  # fmt: skip
    result = run_scenario(scenario, "pgbench", tmp_path, None, SETTINGS)
    assert result.status is Status.COMPLETED, result.status_detail
    limit = result.database_limit
    assert limit is not None
    print(limit.evidence)
    assert (limit.max_database_connections, limit.first_failing) == (POOL_SIZE, 20)
    assert limit.reason == "pool_wait"
    assert limit.evidence.startswith("clients waited up to ")
    assert limit.evidence.endswith(
        f"for a server connection at 20 clients (limit 1 ms); pool_size={POOL_SIZE} "
        "(transaction mode)"
    )
    assert limit.component == f"PgBouncer pool (pool_size={POOL_SIZE}, transaction mode)"
    assert [s.clients for s in limit.steps] == [5, POOL_SIZE, 20]
    failing = limit.steps[-1]
    assert failing.waiting_clients is not None and failing.waiting_clients > 0
    assert result.errors == {}


@pytest.mark.load
def test_through_pgbouncer_waits_grow_with_clients(bouncer: PgBouncer, tmp_path: Path) -> None:
    shape = steps_of(POOL_SIZE, 20, 40, seconds=2)
    scenario = db_scenario(bouncer.url(), shape, **slow_transactions(tmp_path))
    result = run_scenario(scenario, "pgbench", tmp_path, None, SETTINGS)
    assert result.status is Status.COMPLETED, result.status_detail
    assert result.errors == {}
    assert peak(result.pool, "waitingClients") > 0
    assert peak(result.pool, "totalConnections") <= POOL_SIZE
    limit = result.database_limit
    assert limit is not None
    steps = {s.clients: s for s in limit.steps}
    for clients, step in steps.items():
        print(
            f"{clients} clients: waiting peak {step.waiting_clients}, longest wait "
            f"{step.max_wait}, wait/xact {step.wait_per_transaction}, p95 {step.p95}"
        )
        assert step.pool_samples >= 10  # 2 s at 0.1 s
    # Up to the pool's size nobody waits; past it, the queue and the waits grow.
    assert steps[POOL_SIZE].waiting_clients == 0 and steps[POOL_SIZE].max_wait == 0
    assert 0 < steps[20].waiting_clients <= 20 - POOL_SIZE  # type: ignore[operator]
    assert steps[20].waiting_clients < steps[40].waiting_clients <= 40 - POOL_SIZE  # type: ignore[operator]
    # The longest wait is one sampled instant (a scheduler hiccup can make it): past the
    # pool it is over a 2 ms transaction; PgBouncer's own sum of waits per transaction
    # is what grows step by step.
    assert steps[20].max_wait is not None and steps[40].max_wait is not None
    assert steps[20].max_wait > 0.002 and steps[40].max_wait > 0.002
    assert 0 < steps[20].wait_per_transaction < steps[40].wait_per_transaction  # type: ignore[operator]
    rows = dict(database_rows(result))
    print(rows)
    assert f"pool_size {POOL_SIZE} (transaction mode)" in rows["pool"]
    assert f"waiting clients peak {peak(result.pool, 'waitingClients'):.0f}" in rows["pool"]
    # No rule was set: nothing failed, and the evidence names the pool it ran through.
    assert limit.max_database_connections == 40 and limit.first_failing is None
    assert limit.evidence == (
        f"none found up to 40 clients; pool_size={POOL_SIZE} (transaction mode)"
    )


def test_evidence_of_each_reason() -> None:
    def step(clients: int, **kw: Any) -> DatabaseStep:
        fields: dict[str, Any] = {"requests": 100, "failed": 0, "error_rate": 0.0, **kw}
        return DatabaseStep(clients=clients, **fields)

    rules = StopRules(error_rate=1, p95=500, pool_wait=1)
    pgb = PoolMetrics(source="pgbouncer", server="s", interval=1, pool_size=20,
                      pool_mode="transaction", max_client_conn=100)  # fmt: skip
    waited = [step(40), step(60, max_wait=2.3, waiting_clients=40)]
    limit = find_limit(waited, rules, pgb)
    assert limit.evidence == (
        "clients waited up to 2.3 s for a server connection at 60 clients (limit 1 s); "
        "pool_size=20 (transaction mode)"
    )
    slow = [step(10, p95=120.0), step(20, p95=812.0, waiting_clients=5, max_wait=0.04)]
    assert find_limit(slow, rules, pgb).evidence == (
        "p95 812 ms at 20 clients, over 500 ms; pool_size=20 (transaction mode), up to 5 "
        "clients waiting for a server, longest wait 40 ms"
    )
    failing = [step(10), step(20, failed=30, error_rate=30.0)]
    errors = find_limit(failing, rules)
    assert errors.evidence == "30% of transactions failed at 20 clients (limit 1%)"
    assert errors.component == "database errors" and errors.max_database_connections == 10
    # Connections already open when the load started (a pooler's) took slots too: said.
    before = [PoolSample(t=0, total_connections=20)]
    busy = PoolMetrics(source="postgres", server="s", interval=1, max_connections=100,
                       reserved_connections=3, series=before)  # fmt: skip
    full = find_limit([step(70), step(78, refused="sorry, too many clients already")], rules, busy)
    assert full.evidence == (
        "connections refused at 78 clients (sorry, too many clients already); max_connections="
        "100 with 3 reserved (1 used by the monitor, 20 held by other clients before the load)"
    )
    assert full.component == "PostgreSQL connection slots (max_connections=100, 3 reserved)"
    refused = find_limit([step(5, refused="sorry, too many clients already")], rules)
    assert refused.max_database_connections is None and refused.first_failing == 5
    assert refused.evidence == "connections refused at 5 clients (sorry, too many clients already)"


def test_database_limit_is_a_threshold_metric(tmp_path: Path) -> None:
    config = parse_config(
        {"scenarios": {"db-exhaustion": {"thresholds": ["maxDatabaseConnections >= 20"]}}},
        env={},
    )
    (planned,) = build_suite("full", config, only=["db-exhaustion"]).scenarios
    assert [(t.metric, t.op, t.limit) for t in planned.thresholds] == [
        ("maxDatabaseConnections", ">=", 20)
    ]


# ---- query types in the config ----


def test_query_types_in_the_config_reach_the_plan(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "mine.sql").write_text("SELECT 1;\n")
    config_path = tmp_path / "orchestrate.yaml"
    config_path.write_text(json.dumps({"scenarios": {
        "db-pool": {"query_type": "mixed", "query_weights": {"read": 1, "write": 3},
                    "sql_files": [{"path": "sql/mine.sql", "weight": 2}]},
        "db-own": {"protocol": "postgres", "users": 2, "hold": 1, "query_type": "custom",
                   "sql_files": ["sql/mine.sql"]},
    }, "suites": {"db": ["db-pool", "db-own"]}}))  # fmt: skip
    suite = build_suite("db", load_config(config_path))
    pool, own = (p.scenario for p in suite.scenarios)
    mine = (tmp_path / "sql" / "mine.sql").resolve()
    assert pool.query_weights == {"read": 1, "write": 3}
    assert pool.sql_files == [SqlFile(path=mine, weight=2)]
    plan = pgbench.build_plan(
        pool,
        pgbench.parse_database_url(pool.base_url),
        "pgbench",
        tmp_path,
        tmp_path / "o",
        None,
        2,
    )
    argv = plan["steps"][0]["argv"]
    shipped = pgbench.scripts.script_path
    assert argv[argv.index("-M") : argv.index("--progress")] == [
        "-M", "prepared", "-f", f"{shipped('read')}@1", "-f", f"{shipped('write')}@3",
        "-f", f"{mine}@2",
    ]  # fmt: skip
    own_plan = pgbench.build_plan(
        own, pgbench.parse_database_url(own.base_url), "pgbench", tmp_path, tmp_path / "o", None, 2
    )
    # The user's own scripts only: no pgbench table is checked, created or scaled.
    assert own_plan["init"] is None and own_plan["scaleFromProbe"] is False
    assert own_plan["probe"][-3:] == ["-f", str(pgbench.scripts.connect_script()), "postgres"]


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"query_type": "bulk"}, "scenarios.db-pool.query_type"),
        ({"query_type": "read", "query_weights": {"read": 1}},
         "scenarios.db-pool: pgbench: weights apply to query type 'mixed', not 'read'"),
        ({"query_type": "custom", "sql_files": ["nope.sql"]},
         "scenarios.db-pool: pgbench: SQL script"),
        ({"query_weights": {"reads": 1}}, "scenarios.db-pool: pgbench: unknown script(s) reads"),
        ({"stop_when_pool_wait": -1}, "scenarios.db-pool.stop_when_pool_wait"),
    ],
)  # fmt: skip
def test_bad_query_choices_name_the_key_path(
    tmp_path: Path, scenario: dict[str, Any], message: str
) -> None:
    config_path = tmp_path / "orchestrate.yaml"
    config_path.write_text(json.dumps({"scenarios": {"db-pool": scenario}}))
    with pytest.raises(ConfigError) as exc:
        build_suite("full", load_config(config_path), only=["db-pool"])
    assert message in str(exc.value)


def test_database_fields_on_an_http_scenario_are_refused() -> None:
    with pytest.raises(ConfigError, match="query_type, stop_when_p95: for postgres scenarios"):
        build_suite("x", parse_config({"scenarios": {"x": {
            "users": 1, "hold": 1, "query_type": "read", "stop_when_p95": 100,
        }}, "suites": {"x": ["x"]}}, env={}))  # fmt: skip


# ---- through the CLI: faults, the password, a suite of the database leg alone ----


def orchestrate(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd, env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert not any(form in done.stdout + done.stderr for form in PASSWORD_FORMS)
    return lines[0]


def run_args(url: str, reports: Path) -> list[str]:
    return ["run", "--tool", "pgbench", "--url", url, "-c", "2", "-d", "1", "-q",
            "--report-dir", str(reports)]  # fmt: skip


@pytest.mark.load
def test_wrong_password_is_one_line_and_exit_3(pg: PgServer, tmp_path: Path) -> None:
    done = orchestrate(*run_args(pg.url(password="not-" + PASSWORD), tmp_path / "r"), cwd=tmp_path)
    assert one_line(done) == (
        f"orchestrate: error: pool monitor: cannot connect to the database at "
        f'bench@127.0.0.1:{pg.port}/bench: password authentication failed for user "bench" '
        "(wrong user or password?)"
    )


def test_unreachable_database_is_one_line_and_exit_3(closed_port: int, tmp_path: Path) -> None:
    url = f"postgresql://bench:{quote(PASSWORD, safe='')}@127.0.0.1:{closed_port}/bench"
    line = one_line(orchestrate(*run_args(url, tmp_path / "r"), cwd=tmp_path))
    assert line.endswith(f"bench@127.0.0.1:{closed_port}/bench: Connection refused")
    # A host that is not loopback must be allowed first; allowed, it is refused as unknown.
    args = run_args("postgresql://bench@db.invalid/bench", tmp_path / "r")
    unknown = one_line(orchestrate(*args, "--allow-host", "db.invalid", cwd=tmp_path))
    assert "cannot resolve db.invalid" in unknown


@pytest.mark.load
def test_unreachable_pgbouncer_is_one_line_and_exit_3(pg: PgServer, tmp_path: Path) -> None:
    if find_pgbouncer() is None:
        pytest.skip("pgbouncer is not installed (scripts/setup.sh installs it as root)")
    with start_pgbouncer(pg) as stopped:
        url = stopped.url()
    # Its port is closed now: a config suite pointing its database at it.
    config = {"target": {"base_url": "http://127.0.0.1:9"}, "login": None,
              "database": {"url": url}, "suites": {"db": ["db-pool"]},
              "scenarios": {"db-pool": {"users": 2, "hold": 1}}}  # fmt: skip
    (tmp_path / "orchestrate.yaml").write_text(json.dumps(config))
    done = orchestrate("suite", "db", "-q", "--report-dir", "r", cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert errors == [
        f"orchestrate: error: pool monitor: cannot connect to the database at "
        f"bench@127.0.0.1:{stopped.port}/bench: Connection refused"
    ], done.stderr
    assert "Traceback" not in done.stderr


def test_missing_pgbench_is_one_line_and_exit_3(tmp_path: Path) -> None:
    # PATH without pgbench, and no Debian server binaries folder to fall back on.
    code = (
        "import sys, pathlib; from orchestrator.engines import pgbench; "
        f"pgbench.DEBIAN_BINDIRS = pathlib.Path({str(tmp_path)!r}); "
        "from orchestrator.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    url = "postgresql://bench@127.0.0.1:5432/bench"
    done = subprocess.run(
        [sys.executable, "-c", code, *run_args(url, tmp_path / "r")],
        cwd=tmp_path, env={**os.environ, "PATH": str(tmp_path)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert one_line(done) == (
        "orchestrate: error: pgbench not found: install PostgreSQL's client tools "
        "(Debian: `apt-get install postgresql-contrib`)"
    )
    assert not (tmp_path / "r").exists()  # nothing started


def cmdlines() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            found.append(
                (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except OSError:
            continue
    return found


@pytest.mark.load
def test_database_suite_alone_passes_and_the_password_stays_hidden(
    pg: PgServer, tmp_path: Path
) -> None:
    """`suite full --only db-pool --only db-exhaustion`: the service's gates are not
    applicable, the limit is found, and the password is in no command line and no file."""
    encoded = quote(PASSWORD, safe="")
    config = {
        "target": {"base_url": "http://127.0.0.1:9"}, "login": None,
        "database": {"url": f"postgresql://bench:${{DB_PW}}@127.0.0.1:{pg.port}/bench"},
        "scenarios": {
            "db-pool": {"users": 4, "hold": 2},
            "db-exhaustion": {"shape": {"start": 8, "stages": [
                {"duration": 1, "target": 8}, {"duration": 1, "target": 12},
                {"duration": 1, "target": 16}, {"duration": 1, "target": 18}]}},
        },
    }  # fmt: skip
    (tmp_path / "orchestrate.yaml").write_text(json.dumps(config))
    args = [sys.executable, "-m", "orchestrator", "suite", "full", "--only", "db-pool",
            "--only", "db-exhaustion", "-q", "--report-dir", "r",
            "--sample-interval", "0.1"]  # fmt: skip
    proc = subprocess.Popen(
        args, cwd=tmp_path, env={**os.environ, "COLUMNS": "200", "DB_PW": encoded},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen_pgbench = 0
    while proc.poll() is None:
        lines = cmdlines()
        leaked = [c for c in lines if any(form in c for form in PASSWORD_FORMS)]
        assert leaked == [], leaked
        seen_pgbench += sum(1 for c in lines if "pgbench " in c and " -c " in c)
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    assert seen_pgbench > 0  # the command lines were read while pgbench ran
    print(stdout, stderr, f"pgbench command lines seen: {seen_pgbench}")
    assert proc.returncode == 0, stdout + stderr
    suite_rows = [line for line in stdout.splitlines() if "(suite)" in line]
    assert len(suite_rows) == 3 and all("NOT APPLICABLE" in row for row in suite_rows), stdout
    (run_dir,) = [p for p in (tmp_path / "r").iterdir() if p.is_dir() and not p.is_symlink()]
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "pool-samples.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        assert not any(form.encode() in data for form in PASSWORD_FORMS), path
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exitCode"] == 0
    assert [(c["metric"], c["applicable"]) for c in summary["suiteThresholds"]] == [
        ("aggregateThroughput", False), ("aggregateWsMessageRate", False),
        ("memoryDeltaPer100Users", False),
    ]  # fmt: skip
    result = LoadTestResult.model_validate_json(
        (run_dir / "db-exhaustion" / "result.json").read_text()
    )
    limit = result.database_limit
    assert limit is not None and limit.max_database_connections == FREE_SLOTS - 1
    assert [(t.metric, t.measured, t.passed) for t in result.thresholds] == [
        ("maxDatabaseConnections", FREE_SLOTS - 1, True)
    ]
    markdown = (run_dir / "summary.md").read_text()
    assert f"{FREE_SLOTS - 1} clients held; connections refused at 18 clients" in markdown
    assert "NOT APPLICABLE aggregateThroughput" in markdown
    assert isinstance(result.pool, PoolMetrics) and isinstance(
        result.pool.summary["totalConnections"], PoolFigure
    )
