"""pgbench (PostgreSQL, closed model) through a small step runner.

pgbench has no ramp and one run has one client count, so the load shape becomes constant
steps (:meth:`LoadShape.steps`), each its own pgbench process, started one after another
by :mod:`.steps` (``python -m``, from one JSON plan; no shell).
Before the first step the runner checks that pgbench's tables exist and, only if they are
missing, creates them with ``pgbench -i`` (the result says so).

The workload is the scenario's query type (:mod:`.scripts`): the shipped ``read``,
``write`` and ``transaction`` scripts on pgbench's schema, a weighted ``mixed`` of them
(default 7/2/1), or the user's own SQL files, each passed as ``-f FILE@WEIGHT``. Statements
are ``-M prepared``, or ``-M extended`` when the pool monitor found a PgBouncer that hands a
client another server connection per transaction (``scenario.pool``). A stepped run can
stop at the first step that did not hold (refused connections, errors, a long wait for a
server connection, p95: ``stop_when_*``), which is how ``db-exhaustion`` finds the limit.

The password in the database URL never reaches argv or a saved file: pgbench gets it from
``PGPASSWORD`` in :attr:`Invocation.env` (which is not saved); host, port, user and
database go on argv. Every transaction's time is in pgbench's per-transaction log (``-l``),
which :mod:`.output` reads into exact HdrHistograms.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

from orchestrator import redact, tools
from orchestrator.database_url import Database as Database
from orchestrator.database_url import parse_database_url as parse_database_url
from orchestrator.db_limit import StopRules
from orchestrator.engines import base
from orchestrator.engines.base import Invocation
from orchestrator.engines.pgbench import output as parser
from orchestrator.engines.pgbench import scripts
from orchestrator.errors import ConfigError, ToolNotFoundError
from orchestrator.models import LoadTestResult, Transport
from orchestrator.process import ToolRun, resolve_executable
from orchestrator.scenarios import Scenario

LOG = logging.getLogger(__name__)

NAME = "pgbench"
TRANSPORTS: frozenset[Transport] = frozenset({"postgres"})
DEFAULT_FOR: frozenset[Transport] = frozenset({"postgres"})
NEEDS: tuple[str, ...] = ()
EXTERNAL = True
HINT = "install PostgreSQL's client tools (Debian: `apt-get install postgresql-contrib`)"
# Debian keeps the server-side programs (pgbench among them) out of PATH, under here.
DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
PLAN_NAME = "pgbench-plan.json"
OUTPUT_NAME = "pgbench-output.json"
RUNNER_MODULE = "orchestrator.engines.pgbench.steps"
STEP_SECONDS = 2.0
# pgbench's -T takes whole seconds.
MIN_STEP_SECONDS = 1
# Scale factor for `pgbench -i` when the tables are missing: pgbench's docs ask for one
# branch per client (else every tpcb-like transaction queues on few branch rows); 10
# (1M accounts, ~150 MB, a few seconds to create) bounds what we write into a database.
MAX_INIT_SCALE = 10
# Each step starts a new pgbench (connections, first step: vacuum); init may run once.
STEP_OVERHEAD_S = 5.0
INIT_ALLOWANCE_S = 120.0


def executable() -> str:
    try:
        return resolve_executable("pgbench", HINT)
    except ToolNotFoundError:
        # Debian keeps the server-side programs out of PATH.
        for candidate in sorted(DEBIAN_BINDIRS.glob("*/bin/pgbench"), reverse=True):
            return str(candidate)
        raise


def import_file(path: Path) -> LoadTestResult:
    raise ConfigError(
        f"cannot import {path}: pgbench's own output has no per-request data; "
        "run the database scenario through orchestrate instead"
    )


@functools.cache
def version() -> str | None:
    try:
        path = executable()
    except ToolNotFoundError:
        return None
    text = tools.probe_version([path, "--version"]) or ""
    # "pgbench (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)" -> "15.20"
    match = re.search(r"\)\s*(\d+(?:\.\d+)*)", text)
    return match.group(1) if match else (text or None)


def major_version(version_text: str | None) -> int | None:
    """15 from ``15.20`` (or from pgbench's whole ``--version`` line)."""
    match = re.search(r"(\d+)(?:\.\d+)*\s*(?:\(|$)", version_text or "")
    return int(match.group(1)) if match else None


def check_scenario(scenario: Scenario) -> None:
    """Refuse what pgbench cannot do, before anything starts."""
    where = f"scenario {scenario.name!r}"
    if scenario.protocol not in TRANSPORTS:
        raise ConfigError(f"pgbench cannot run {scenario.protocol} load ({where})")
    if scenario.shape.model != "closed":
        raise ConfigError(f"pgbench runs a closed model (clients), not arrival rates ({where})")
    if scenario.think_time > 0 or scenario.max_rate is not None:
        raise ConfigError(f"pgbench runs its clients flat out: no think_time/max_rate ({where})")
    if scenario.shape.peak < 1:
        raise ConfigError(f"the load shape never opens a connection ({where})")
    try:
        query_scripts(scenario)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({where})") from None


def query_scripts(scenario: Scenario) -> list[str]:
    """``-f FILE@WEIGHT`` arguments of the scenario's query type; ConfigError if it is wrong."""
    query_type = scenario.query_type or scripts.DEFAULT_QUERY_TYPE
    custom = [(f.path, f.weight) for f in scenario.sql_files]
    return scripts.script_args(query_type, scenario.query_weights, custom)


def query_mode(scenario: Scenario) -> str:
    pool = scenario.pool
    return scripts.query_mode(pool.pool_mode, pool.max_prepared_statements) if pool else "prepared"


def describe_workload(scenario: Scenario) -> str:
    return scripts.describe_workload(
        scenario.query_type or scripts.DEFAULT_QUERY_TYPE,
        scenario.query_weights,
        [(f.path, f.weight) for f in scenario.sql_files],
        query_mode(scenario),
    )


def connection_args(db: Database) -> list[str]:
    args = ["-h", db.host, "-p", str(db.port)]
    if db.user:
        args += ["-U", db.user]
    return args


def step_durations(scenario: Scenario) -> list[tuple[int, int]]:
    """(whole seconds, clients) per step; pgbench's -T has a one-second grain."""
    ramps = [d for d, low, high in scenario.shape.segments() if low != high]
    step = max(float(MIN_STEP_SECONDS), min([STEP_SECONDS, *(r / 2 for r in ramps)]))
    return [
        (max(MIN_STEP_SECONDS, round(duration)), level)
        for duration, level in scenario.shape.steps(step)
    ]


def build_plan(
    scenario: Scenario,
    db: Database,
    pgbench: str,
    workdir: Path,
    output_path: Path,
    pgbench_version: str | None,
    cores: int,
) -> dict[str, Any]:
    """The step runner's plan: every argv it will run (no password anywhere in it).

    The database name is each step's last argument: the runner puts ``-s SCALE`` before it.
    """
    conn = connection_args(db)
    # pgbench 15+ logs serialization and deadlock failures by kind (older ones abort).
    detailed = ["--failures-detailed"] if (major_version(pgbench_version) or 0) >= 15 else []
    workload = query_scripts(scenario)
    # Only the user's own scripts: no pgbench table is needed, none is created.
    own_only = scenario.query_type == "custom"
    steps: list[dict[str, Any]] = []
    for index, (seconds, clients) in enumerate(step_durations(scenario)):
        prefix = str(workdir / f"pgbench_log_s{index + 1}")
        argv = None
        if clients > 0:
            argv = [
                pgbench, *conn,
                "-c", str(clients), "-j", str(min(clients, cores)), "-T", str(seconds),
                "-M", query_mode(scenario), *workload, "--progress", "1",
                "-l", "--log-prefix", prefix, *detailed,
                # Vacuum (and empty pgbench_history) once, before the first loaded step.
                *(["-n"] if any(s["argv"] for s in steps) else []),
                db.dbname,
            ]  # fmt: skip
        steps.append(
            {"index": index, "clients": clients, "seconds": seconds, "argv": argv,
             "logPrefix": prefix}
        )  # fmt: skip
    scale = max(1, min(scenario.shape.peak, MAX_INIT_SCALE))
    # One read transaction: fails with 'relation "pgbench_branches" does not exist' when
    # the tables are missing, or with the connection error when the server is; its summary
    # says the scale. The user's own scripts only need the connection.
    check = ["-f", str(scripts.connect_script())] if own_only else ["-b", "select-only"]
    rules = StopRules.of(scenario)
    return {
        "database": db.label,
        "pgbenchVersion": pgbench_version,
        "workload": describe_workload(scenario),
        "probe": [pgbench, *conn, "-n", "-c", "1", "-t", "1", *check, db.dbname],
        "init": None if own_only else [pgbench, *conn, "-i", "-s", str(scale), "-q", db.dbname],
        "initScale": scale,
        "scaleFromProbe": not own_only,
        "steps": steps,
        "stopRules": rules.to_json(),
        "stepFacts": rules.active or sum(1 for s in steps if s["argv"]) >= 2,
        "poolSamples": str(workdir / base.POOL_SAMPLES),
        "workdir": str(workdir),
        "output": str(output_path),
    }


def prepare(scenario: Scenario, workdir: Path) -> Invocation:
    check_scenario(scenario)
    db = parse_database_url(scenario.base_url, scenario.timeout)
    if db.password:
        # Whatever writes text later (logs, reports) masks it too.
        redact.remember_secret(db.password)
    pgbench = executable()
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    output_path = workdir / OUTPUT_NAME
    cores = os.cpu_count() or 1
    plan = build_plan(scenario, db, pgbench, workdir, output_path, version(), cores)
    plan_path = workdir / PLAN_NAME
    plan_path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    loaded = [s for s in plan["steps"] if s["argv"]]
    return Invocation(
        tool=NAME,
        argv=[sys.executable, "-m", RUNNER_MODULE, str(plan_path)],
        workdir=workdir,
        output_path=output_path,
        timeout=sum(s["seconds"] for s in plan["steps"])
        + base.DEFAULT_GRACE
        + INIT_ALLOWANCE_S
        + STEP_OVERHEAD_S * len(loaded),
        cpu_capacity_percent=100.0 * min(scenario.shape.peak, cores),
        env=db.env,
        saved_configs=[plan_path],
    )


def parse(scenario: Scenario, invocation: Invocation, run: ToolRun) -> LoadTestResult:
    return parser.parse_output(scenario, invocation.output_path, run=run, tool_version=version())
