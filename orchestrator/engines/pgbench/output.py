"""pgbench output -> LoadTestResult.

Sources, all files written by :mod:`.steps`:

* ``pgbench-output.json``: which steps ran, when, their exit codes and file names;
* pgbench's per-transaction logs (``-l``), read by :mod:`.log`: every
  latency goes into an HdrHistogram, so percentiles are exact (pgbench's own summary has
  only the mean), and each transaction's end time places it in the per-second series;
* pgbench's summary (stdout) as a cross-check, and its stderr for what the log cannot hold:
  connections the server refused and clients that aborted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from orchestrator import histogram as hist
from orchestrator.db_limit import StopRules, find_limit
from orchestrator.db_models import DatabaseStep
from orchestrator.engines.pgbench.log import SecondsBuilder, StepTally, tally_step
from orchestrator.errors import ParseError
from orchestrator.models import LoadTestResult, Status
from orchestrator.process import ToolRun
from orchestrator.scenarios import Scenario
from parsers import build
from parsers.common import Wire, read_json, validated

TOOL = "pgbench"
RUNNER_FORMAT = "orchestrate-pgbench/1"
# Runs recorded before the query types (the fixtures) ran pgbench's built-in scripts.
LEGACY_WORKLOAD = (
    "builtin tpcb-like (3 UPDATEs, a SELECT, an INSERT in one transaction) weighted 1, "
    "select-only (one point SELECT) weighted 4; -M prepared"
)
NO_TRANSACTION = "no transaction completed, so there is no latency to report"
_CONN_FAILED = re.compile(r"connection to server .*? failed: (?P<why>.+)")
_NO_CONNECTION = re.compile(r"could not create connection for (?:client (?P<client>\d+)|\w+)")
_ABORTED = re.compile(r"client (?P<client>\d+) (?:script \d+ )?aborted")
_PROGRESS = re.compile(
    r"progress: (?P<t>[\d.]+) s, (?P<tps>[\d.]+) tps, lat (?P<lat>[\d.]+|NaN) ms"
    r"(?:[^,]*)(?:, (?P<failed>\d+) failed)?"
)
_SUMMARY = {
    "processed": re.compile(r"number of transactions actually processed: (\d+)"),
    "failed": re.compile(r"number of failed transactions: (\d+)"),
    "scale": re.compile(r"scaling factor: (\d+)"),
}


def latency_measures(workload: str | None) -> str:
    """What pgbench's latency clock measures, with the run's workload (query type, -M)."""
    return (
        "pgbench: the time of each whole transaction, from sending its first statement to "
        "the end of its last (every statement of the script, BEGIN..END included), on a "
        "connection opened before the run (connection time excluded), per client; written by "
        f"pgbench in µs to its per-transaction log. Workload: {workload or LEGACY_WORKLOAD}. "
        "Failed transactions have no latency. Raw (no coordinated-omission correction)."
    )


class StepRun(Wire):
    index: int
    clients: int
    seconds: int
    start: float
    end: float | None = None
    returncode: int | None = None
    interrupted: bool = False
    stdout: str | None = None
    stderr: str | None = None
    logFiles: list[str] = Field(default_factory=list)  # noqa: N815 - the runner's JSON key
    facts: dict[str, Any] | None = None  # a DatabaseStep, judged by the runner


class RunnerOutput(Wire):
    format: str
    pgbenchVersion: str | None = None  # noqa: N815
    database: str
    workload: str | None = None
    scale: int | None = None
    startedAt: float  # noqa: N815
    endedAt: float | None = None  # noqa: N815
    interrupted: bool
    complete: bool
    plannedSteps: int  # noqa: N815
    setup: dict[str, Any]
    setupFailed: bool = False  # noqa: N815
    stoppedEarly: dict[str, Any] | None = None  # noqa: N815
    steps: list[StepRun]


# ---- console and stderr ----


def progress_figures(line: str) -> str | None:
    """``1234.5 req/s, 0 failed, lat avg 3.2 ms`` from a pgbench progress line."""
    match = _PROGRESS.search(line)
    if match is None:
        return None
    return (
        f"{match.group('t')} s: {match.group('tps')} req/s, {match.group('failed') or 0} "
        f"failed, lat avg {match.group('lat')} ms"
    )


def tables_missing(stderr: str) -> bool:
    return bool(re.search(r'relation "pgbench_\w+" does not exist', stderr))


def classify_connection_error(message: str) -> str:
    text = message.lower()
    if "too many clients" in text or "connection slots are reserved" in text:
        return "too_many_connections"
    if "connection refused" in text:
        return "connection_refused"
    if "authentication failed" in text or "no password supplied" in text:
        return "auth_failed"
    if "timeout expired" in text:
        return "timeout"
    if "database" in text and "does not exist" in text:
        return "database_missing"
    return "connection_failed"


@dataclass
class StderrFacts:
    refused: list[tuple[str, str]] = field(default_factory=list)  # (kind, server message)
    aborted_clients: set[int] = field(default_factory=set)
    first_error: str | None = None


def read_stderr(path: Path | None) -> StderrFacts:
    """Connections pgbench could not open (one per client or setup line) and aborted clients."""
    facts = StderrFacts()
    if path is None or not path.is_file():
        return facts
    last_why: str | None = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if "error:" in line and facts.first_error is None:
            facts.first_error = line.split("error:", 1)[1].strip()
        if match := _CONN_FAILED.search(line):
            last_why = match.group("why").strip()
        elif _NO_CONNECTION.search(line):
            why = last_why or "connection failed"
            facts.refused.append((classify_connection_error(why), why))
            last_why = None
        elif match := _ABORTED.search(line):
            facts.aborted_clients.add(int(match.group("client")))
    return facts


def read_summary(path: Path | None) -> dict[str, int]:
    if path is None or not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    return {k: int(m.group(1)) for k, rx in _SUMMARY.items() if (m := rx.search(text))}


# ---- the result ----


def load_runner_output(path: Path) -> RunnerOutput:
    output = validated(RunnerOutput, read_json(path), path)
    if output.format != RUNNER_FORMAT:
        raise ParseError(str(path), "format", f"expected {RUNNER_FORMAT!r}, got {output.format!r}")
    return output


@dataclass
class Totals:
    ok: int = 0
    total: int = 0
    transactions: int = 0
    duration: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    steps: list[build.Step] = field(default_factory=list)
    histogram: Any = field(default_factory=hist.new_histogram)
    tpcb: bool = True  # the workload runs TPC-B-like transactions (they queue on branches)


def _file(folder: Path, name: str | None) -> Path | None:
    return folder / name if name else None


def _step_duration(step: StepRun) -> float:
    # pgbench runs -T seconds of load after connecting (and, first, vacuuming): a step
    # that lasted its -T is counted as exactly that; one cut short as what it lasted.
    if step.end is None:
        return 0.0
    return max(0.0, min(float(step.seconds), step.end - step.start))


@dataclass
class StepCount:
    """One step's transactions by outcome, from its log, stderr and summary."""

    tally: StepTally
    errors: Counter[str]
    facts: StderrFacts
    summary: dict[str, int]

    @property
    def transactions(self) -> int:
        return self.tally.ok + sum(self.tally.failures.values())

    @property
    def all_refused(self) -> bool:
        """pgbench stops a run when any client cannot connect: then no client ran."""
        return bool(self.facts.refused) and self.transactions == 0


def count_step(
    folder: Path, step: StepRun, tolerate: bool, seconds: SecondsBuilder | None = None
) -> StepCount:
    """Count one step (its per-second buckets into ``seconds`` when given)."""
    seconds = seconds or SecondsBuilder(origin_us=round(step.start * 1_000_000))
    tally = (
        tally_step(folder, step.logFiles, step.clients, seconds, tolerate)
        if step.stderr
        else StepTally()
    )
    count = StepCount(
        tally,
        Counter(tally.failures),
        read_stderr(_file(folder, step.stderr)),
        read_summary(_file(folder, step.stdout)),
    )
    if count.all_refused:
        count.errors[count.facts.refused[0][0]] += step.clients
    else:
        count.errors.update(kind for kind, _ in count.facts.refused)
    if count.facts.aborted_clients:
        count.errors["client_aborted"] += len(count.facts.aborted_clients)
    return count


def add_step(folder: Path, step: StepRun, origin: float, stopped: bool, totals: Totals,
             seconds: SecondsBuilder) -> None:  # fmt: skip
    """Tally one step's logs, stderr and summary into ``totals``."""
    name = f"step {step.index + 1} ({step.clients} clients)"
    tolerate = stopped or step.interrupted or step.returncode not in (0, None)
    count = count_step(folder, step, tolerate, seconds)
    tally, facts, summary, errors = count.tally, count.facts, count.summary, count.errors
    transactions = count.transactions
    if count.all_refused:
        totals.notes.append(
            f"{name}: the database refused connections ({facts.refused[0][1]}); pgbench stops "
            f"a run when any client cannot connect, so none of the step's {step.clients} "
            "clients ran"
        )
    if facts.aborted_clients:
        totals.notes.append(
            f"{name}: {len(facts.aborted_clients)} client(s) aborted ({facts.first_error})"
        )
    if "processed" in summary and summary["processed"] != tally.ok:
        totals.notes.append(
            f"{name}: pgbench's summary counts {summary['processed']} transactions, "
            f"its log {tally.ok}"
        )
    if totals.tpcb and summary.get("scale") is not None and summary["scale"] < step.clients:
        totals.notes.append(
            f"{name}: scale factor {summary['scale']} < {step.clients} clients, so tpcb-like "
            "transactions queue on the few pgbench_branches rows (pgbench's docs advise "
            "a scale of at least the client count)"
        )
    step_hist = hist.from_buckets(tally.latencies.items())
    totals.histogram.add(step_hist)
    step_total = tally.ok + sum(errors.values())
    duration = _step_duration(step)
    totals.ok += tally.ok
    totals.total += step_total
    totals.transactions += transactions
    totals.duration += duration
    totals.errors.update(errors)
    totals.steps.append(
        build.Step(
            index=step.index,
            concurrency=step.clients,
            start=step.start - origin,
            duration=duration,
            # A transaction in the log completed (committed or ended by an SQL error);
            # a pause ran no pgbench, so it has no throughput.
            counts=build.Counts(step_total, tally.ok, transactions if step.stderr else None),
            histogram=step_hist,
        )
    )


def add_setup(folder: Path, output: RunnerOutput, totals: Totals) -> Status | None:
    """The probe/initialisation before the steps; a status when they stopped the run."""
    setup = output.setup
    if setup.get("initialized"):
        totals.notes.append(
            f"the pgbench_* tables were missing in {output.database}: created them with "
            f"`pgbench -i -s {setup.get('initScale')}` ({setup.get('initSeconds')} s) first"
        )
    if not output.setupFailed:
        return None
    if "initReturncode" in setup:
        facts = read_stderr(_file(folder, setup.get("initStderr")))
        totals.notes.append(f"`pgbench -i` failed: {facts.first_error or 'see init.err'}")
        return Status.TOOL_FAILED
    facts = read_stderr(_file(folder, setup.get("probeStderr")))
    kind, why = facts.refused[0] if facts.refused else ("connection_failed", facts.first_error)
    totals.errors[kind] += 1
    totals.total += 1
    totals.notes.append(f"could not use {output.database}: {why or 'see probe.err'}")
    return None


def parse_output(
    scenario: Scenario, path: Path, run: ToolRun | None = None, tool_version: str | None = None
) -> LoadTestResult:
    """Our runner's output and pgbench's files as a result; corrupt files are ParseErrors."""
    output = load_runner_output(path)
    folder = path.parent
    stopped = output.interrupted or (run is not None and (run.interrupted or run.timed_out))
    origin = output.steps[0].start if output.steps else output.startedAt
    seconds = SecondsBuilder(origin_us=round(origin * 1_000_000))
    totals = Totals(tpcb=output.workload is None or "tpcb-like" in output.workload)
    setup_status = add_setup(folder, output, totals)
    for step in output.steps:
        add_step(folder, step, origin, stopped, totals, seconds)
    seconds.flush()
    notes: list[str] = []
    if output.stoppedEarly is not None:
        stop = output.stoppedEarly
        notes.append(
            f"stopped early after step {stop['afterStep'] + 1} of {output.plannedSteps}: "
            f"{stop['detail']}"
        )
    cut_short = None
    if not output.complete and not output.setupFailed:
        cut_short = (
            f"the runner stopped before the end: {len(output.steps)} of "
            f"{output.plannedSteps} steps measured"
        )
    identity = build.Identity(
        scenario=scenario.name,
        tool=TOOL,
        tool_version=tool_version or output.pgbenchVersion,
        protocol="postgres",
        workload_model="closed",
        latency_measures=latency_measures(output.workload),
        target=scenario.base_url,
        concurrency=max((s.clients for s in output.steps), default=0),
        raw_output=path,
    )
    result = build.result(
        identity,
        build.Counts(totals.total, totals.ok, completed=totals.transactions),
        build.Latency(totals.histogram, no_sample=NO_TRANSACTION),
        build.Timing(
            started=datetime.fromtimestamp(output.startedAt, UTC),
            ended=datetime.fromtimestamp(output.endedAt or output.startedAt, UTC),
            duration=totals.duration,
        ),
        build.Outcome(
            run=run,
            interrupted=output.interrupted,
            cut_short=cut_short,
            status=setup_status,
            notes=[*notes, *totals.notes],
        ),
        build.Details(errors=totals.errors, time_series=seconds.buckets),
        steps=totals.steps,
        missing={
            "statusCodes": "PostgreSQL has no status codes; errors holds failures by kind",
            "endpoints": "not split per pgbench script (the log's script column is not read)",
        },
    )
    facts = [DatabaseStep.model_validate(s.facts) for s in output.steps if s.facts]
    if len(facts) < 2 and output.stoppedEarly is None:
        return result
    limit = find_limit(facts, StopRules.of(scenario), stopped_early=output.stoppedEarly is not None)
    return result.model_copy(update={"database_limit": limit})
