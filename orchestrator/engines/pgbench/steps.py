"""Run a pgbench plan: check/create the tables, then one pgbench per constant-load step.

Started by :func:`orchestrator.process.run_tool` as ``python -m
orchestrator.engines.pgbench.steps PLAN.json`` (see :mod:`orchestrator.engines.pgbench`).
Its pgbench children stay in its process group, so the runner's Ctrl-C/timeout escalation
stops them too; they are started here with :class:`subprocess.Popen` (list argv, no shell)
rather than ``run_tool``, which would put each in a new group out of that reach.

Writes ``pgbench-output.json`` (what ran, when, with which files) after every step, so
an interrupted run still leaves what it measured. The password only ever comes from the
inherited ``PGPASSWORD``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.engines.pgbench import output as parser

FORMAT = parser.RUNNER_FORMAT
CHILD_GRACE = 5.0


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def write_output(output: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(output, indent=2), encoding="utf-8")
    tmp.replace(path)


def run_command(argv: list[str], out_path: Path, err_path: Path, label: str = "") -> int:
    """Run one pgbench, its stdout to a file, its stderr to a file and (echoed) the console.

    pgbench's progress lines are echoed with the figures the progress display reads
    (``N req/s, M failed``), followed by pgbench's own line.
    """
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        try:
            for raw in proc.stderr:
                err.write(raw)
                err.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                figures = parser.progress_figures(line)
                say(f"{label}{figures} | {line}" if figures else line)
            proc.wait()
        except KeyboardInterrupt:
            # The child got the same SIGINT (one process group): let it finish writing.
            try:
                proc.wait(timeout=CHILD_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    return proc.returncode


def prepare_database(plan: dict[str, Any], workdir: Path, setup: dict[str, Any]) -> bool:
    """True when pgbench's tables are there (created now if they were missing)."""
    code = run_command(plan["probe"], workdir / "probe.out", workdir / "probe.err")
    setup.update(probeReturncode=code, probeStdout="probe.out", probeStderr="probe.err")
    if code == 0:
        return True
    probe_err = (workdir / "probe.err").read_text(encoding="utf-8", errors="replace")
    if not parser.tables_missing(probe_err):
        say(f"pgbench: cannot use database {plan['database']}; no load was run")
        return False
    say(
        f"pgbench: the pgbench_* tables are missing in {plan['database']}: creating "
        f"pgbench_accounts/branches/tellers/history with `pgbench -i -s {plan['initScale']}`"
    )
    started = time.time()
    code = run_command(plan["init"], workdir / "init.out", workdir / "init.err")
    setup.update(
        initialized=code == 0,
        initReturncode=code,
        initScale=plan["initScale"],
        initSeconds=round(time.time() - started, 3),
        initStdout="init.out",
        initStderr="init.err",
    )
    return code == 0


def run_step(
    step: dict[str, Any], workdir: Path, total: int, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Run one step; its record is in ``records`` from the start (kept if interrupted)."""
    index, clients = step["index"], step["clients"]
    record: dict[str, Any] = {
        "index": index,
        "clients": clients,
        "seconds": step["seconds"],
        "start": time.time(),
    }
    records.append(record)
    if step["argv"] is None:
        say(f"[step {index + 1}/{total}] pause, {step['seconds']} s")
        try:
            time.sleep(step["seconds"])
        finally:
            record["end"] = time.time()
        return record
    prefix = Path(step["logPrefix"])
    out_name, err_name = f"pgbench_s{index + 1}.out", f"pgbench_s{index + 1}.err"
    record.update(stdout=out_name, stderr=err_name, interrupted=False)
    label = f"[step {index + 1}/{total}, {clients} clients] "
    say(f"{label}pgbench -c {clients} -T {step['seconds']}")
    try:
        record["returncode"] = run_command(
            step["argv"], workdir / out_name, workdir / err_name, label
        )
    except KeyboardInterrupt:
        record["interrupted"] = True
        raise
    finally:
        record["end"] = time.time()
        # pgbench names its logs PREFIX.PID (first thread) and PREFIX.PID.N.
        record["logFiles"] = sorted(p.name for p in prefix.parent.glob(f"{prefix.name}.*[0-9]"))
        with contextlib.suppress(OSError):
            summary = (workdir / out_name).read_text(encoding="utf-8", errors="replace")
            say(summary.rstrip())
    return record


def run_plan(plan: dict[str, Any]) -> dict[str, Any]:
    workdir = Path(plan["workdir"])
    output_path = Path(plan["output"])
    steps_planned = plan["steps"]
    output: dict[str, Any] = {
        "format": FORMAT,
        "pgbenchVersion": plan.get("pgbenchVersion"),
        "database": plan["database"],
        "startedAt": time.time(),
        "endedAt": None,
        "interrupted": False,
        "complete": False,
        "plannedSteps": len(steps_planned),
        "setup": {"initialized": False},
        "setupFailed": False,
        "stoppedEarly": None,
        "steps": [],
    }
    write_output(output, output_path)
    limit = plan.get("stopWhenErrorRate")
    try:
        if prepare_database(plan, workdir, output["setup"]):
            for step in steps_planned:
                record = run_step(step, workdir, len(steps_planned), output["steps"])
                write_output(output, output_path)
                rate = parser.quick_error_rate(workdir, record)
                if limit is not None and rate is not None and rate > limit:
                    output["stoppedEarly"] = {
                        "afterStep": step["index"],
                        "errorRate": rate,
                        "limit": limit,
                    }
                    break
            output["complete"] = True
        else:
            output["setupFailed"] = True
    except KeyboardInterrupt:
        output["interrupted"] = True
    finally:
        output["endedAt"] = time.time()
        write_output(output, output_path)
    return output


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m orchestrator.engines.pgbench.steps PLAN.json\n")
        return 2
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    output = run_plan(plan)
    return 130 if output["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
