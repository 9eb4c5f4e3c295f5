"""Run a pgbench plan: check/create the tables, then one pgbench per constant-load step.

Started by :func:`orchestrator.process.run_tool` as ``python -m
orchestrator.engines.pgbench.steps PLAN.json`` (see :mod:`orchestrator.engines.pgbench`).
Its pgbench children stay in its process group, so the runner's Ctrl-C/timeout escalation
stops them too; they are started here with :class:`subprocess.Popen` (list argv, no shell)
rather than ``run_tool``, which would put each in a new group out of that reach.

Writes ``pgbench-output.json`` (what ran, when, with which files) after every step, so
an interrupted run still leaves what it measured. The password only ever comes from the
inherited ``PGPASSWORD``.

The shipped query-type scripts draw from ``:scale`` accounts, which pgbench sets from
``-s`` when it runs only ``-f`` scripts: the scale the probe found (or ``pgbench -i``
created) is added to every step (``-s N`` before the database name, which is always last).
A run with stop rules, or of several steps, judges each finished step
(:mod:`.stepcheck`, :func:`orchestrator.db_limit.judge_step`) and, with stop rules, runs no
further step after the first one that did not hold.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator.db_limit import StopRules, judge_step
from orchestrator.engines.pgbench import output as parser
from orchestrator.engines.pgbench import stepcheck

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
    if plan["init"] is None or not parser.tables_missing(probe_err):
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


def found_scale(plan: dict[str, Any], workdir: Path, setup: dict[str, Any]) -> int | None:
    """pgbench_branches' rows: created by ``pgbench -i`` now, or counted by the probe."""
    if not plan.get("scaleFromProbe"):
        return None
    if setup.get("initialized"):
        return int(setup["initScale"])
    scale = parser.read_summary(workdir / "probe.out").get("scale")
    if scale is None:
        say("pgbench: the probe did not say the scale factor; the scripts draw from scale 1")
    return scale


def with_scale(argv: list[str] | None, scale: int | None) -> list[str] | None:
    if argv is None or scale is None:
        return argv
    return [*argv[:-1], "-s", str(scale), argv[-1]]


def judge(
    plan: dict[str, Any], workdir: Path, record: dict[str, Any], rules: StopRules
) -> dict[str, Any] | None:
    """Record the finished step's facts; the reason to stop when it did not hold."""
    journal = Path(plan["poolSamples"]) if plan.get("poolSamples") else None
    facts = stepcheck.step_facts(workdir, record, journal)
    if facts is None:
        return None
    judged = judge_step(facts, rules)
    record["facts"] = judged.model_dump(mode="json", by_alias=True)
    if not rules.active or judged.failed_by is None:
        return None
    return {"afterStep": record["index"], "reason": judged.failed_by, "detail": judged.detail}


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
        "workload": plan.get("workload"),
        "scale": None,
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
    rules = StopRules.from_json(plan.get("stopRules"))
    try:
        if prepare_database(plan, workdir, output["setup"]):
            output["scale"] = scale = found_scale(plan, workdir, output["setup"])
            for planned in steps_planned:
                step = {**planned, "argv": with_scale(planned["argv"], scale)}
                record = run_step(step, workdir, len(steps_planned), output["steps"])
                stop = judge(plan, workdir, record, rules) if plan.get("stepFacts") else None
                write_output(output, output_path)
                if stop is not None:
                    output["stoppedEarly"] = stop
                    say(f"stopping after step {step['index'] + 1}: {stop['detail']}")
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
