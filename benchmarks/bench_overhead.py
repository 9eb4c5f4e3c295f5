"""What `orchestrate run` costs on top of the bare load tool: wall time, CPU and throughput.

    python benchmarks/bench_overhead.py [--pairs 5] [--seconds 5] [--cases autocannon,...]

For each case, alternating pairs of runs (bare tool, then the same load through
``orchestrate run``), each against the same local server on 127.0.0.1:

* ``autocannon``: 10 connections to the reference target's /health (bare: autocannon's CLI);
* ``autocannon-fast``: generator-bound, 50 connections to a bare Node http server started
  here (autocannon, not the server, is the limit; bare: autocannon's CLI);
* ``k6``: 10 VUs against the reference target with 2 ms of added latency (bare: a minimal
  script doing the same requests with the same options, no ``--out``);
* ``k6-fast``: generator-bound, 10 VUs against the bare Node http server (k6 is the limit,
  so what its raw output costs shows in full; bare: the same minimal script);
* ``artillery``: 10 users against the reference target (bare: ``artillery run`` of the very
  script orchestrate generates, whose closed-model user loop lives in our processor).

Per pair it records the bare tool's wall time to exit, orchestrate's wall time to its verdict
line (the PASS/FAIL headline: what a person waits for) and to exit (the report directory
complete), the CPU of each, and both throughputs. It prints the medians of the per-pair
differences and ratios: only numbers measured side by side in one run are compared.
Orchestrate's own CPU (its Python process) is read from /proc while it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import start_reference_target  # noqa: E402

from orchestrator import tools  # noqa: E402
from orchestrator.engines import k6 as k6_engine  # noqa: E402

# The headline `orchestrate run` prints once the numbers are known (reports/console.py).
VERDICT = re.compile(r"^(PASS|FAIL|[A-Z][A-Z ]+): run\b")
FAST_SERVER = """
const http = require('http')
const body = '{"status":"ok"}'
const headers = { 'content-type': 'application/json', 'content-length': body.length }
const server = http.createServer((req, res) => { res.writeHead(200, headers); res.end(body) })
server.listen(0, '127.0.0.1', () => console.log('listening on ' + server.address().port))
"""
K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { main: { executor: 'constant-vus', vus: %(vus)d, duration: '%(seconds)ds' } },
  discardResponseBodies: true,
};
export default function () { http.get('%(url)s', { timeout: 10000 }); }
"""


@dataclass
class Run:
    """One process: wall time to exit (and to the verdict line), CPU, throughput."""

    wall: float
    cpu: float  # the whole process tree, from wait4
    throughput: float | None
    requests: int | None = None
    verdict_at: float | None = None
    own_cpu: float | None = None  # orchestrate's Python process alone (excl. children)
    own_cpu_at_verdict: float | None = None


Runner = Callable[[Path], Run]


@dataclass
class Case:
    name: str
    what: str
    bare: Callable[[Path], Run]
    ours: Callable[[Path], Run]
    pairs: int
    results: list[tuple[Run, Run]] = field(default_factory=list)


def orchestrate_argv() -> list[str]:
    script = Path(sys.executable).with_name("orchestrate")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "orchestrator"]


def run_timed(
    argv: list[str],
    cwd: Path,
    watch_own_cpu: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[Run, str]:
    """Run to the end; stdout lines (stderr too when watching orchestrate) are timestamped
    to find the verdict line. Returns the run and what it printed there."""
    started = time.perf_counter()
    stderr = subprocess.STDOUT if watch_own_cpu else subprocess.DEVNULL
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
    )
    own: list[float] = []
    own_at_verdict: list[float] = []
    done = threading.Event()

    def poll_cpu() -> None:
        # user + system of the process itself (children excluded), until it exits.
        try:
            handle = psutil.Process(proc.pid)
            while not done.is_set():
                times = handle.cpu_times()
                own.append(times.user + times.system)
                time.sleep(0.01)
        except psutil.Error:
            pass

    poller = threading.Thread(target=poll_cpu, daemon=True)
    if watch_own_cpu:
        poller.start()
    verdict_at = None
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if verdict_at is None and VERDICT.match(line):
            verdict_at = time.perf_counter() - started
            if own:
                own_at_verdict.append(own[-1])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    done.set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if watch_own_cpu:
        poller.join()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}:\n{''.join(lines[-30:])}")
    run = Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        throughput=None,
        verdict_at=verdict_at,
        own_cpu=own[-1] if own else None,
        own_cpu_at_verdict=own_at_verdict[0] if own_at_verdict else None,
    )
    return run, "".join(lines)


def through_orchestrate(flags: list[str]) -> Callable[[Path], Run]:
    def ours(workdir: Path) -> Run:
        reports = workdir / "reports"
        argv = [*orchestrate_argv(), "run", *flags, "--report-dir", str(reports)]
        run, output = run_timed(argv, workdir, watch_own_cpu=True)
        if run.verdict_at is None:
            raise RuntimeError(f"no verdict line in the output of orchestrate:\n{output}")
        summary = json.loads((reports / "latest" / "summary.json").read_text(encoding="utf-8"))
        run.throughput = summary["results"][0]["throughput"]
        run.requests = summary["results"][0]["totalRequests"]
        return run

    return ours


def bare_autocannon(url: str, connections: int, seconds: int) -> Callable[[Path], Run]:
    def bare(workdir: Path) -> Run:
        entry = tools.node_tool_entry("autocannon")
        argv = [tools.node_executable(), str(entry), "--json", "-c", str(connections)]
        run, output = run_timed([*argv, "-d", str(seconds), url], workdir)
        data = json.loads(output)
        run.requests = int(data["requests"]["total"]) + int(data["errors"])
        run.throughput = float(data["requests"]["total"]) / float(data["duration"])
        return run

    return bare


def bare_k6(url: str, vus: int, seconds: int) -> Callable[[Path], Run]:
    def bare(workdir: Path) -> Run:
        script = workdir / "bare.js"
        script.write_text(K6_SCRIPT % {"vus": vus, "seconds": seconds, "url": url})
        summary = workdir / "summary.json"
        argv = [k6_engine.executable(), "run", "--quiet", "--no-usage-report", "--no-color"]
        argv += ["--address", "127.0.0.1:0", "--summary-export", str(summary), str(script)]
        run, _ = run_timed(argv, workdir)
        requests = json.loads(summary.read_text())["metrics"]["http_reqs"]
        run.throughput, run.requests = requests["rate"], requests["count"]
        return run

    return bare


def bare_artillery(url: str, users: int, seconds: int) -> Callable[[Path], Run]:
    def bare(workdir: Path) -> Run:
        from orchestrator.engines import artillery
        from orchestrator.options import RunOptions
        from orchestrator.process import ToolRun

        options = RunOptions(url=url, tool="artillery", connections=users, duration=seconds)
        scenario = options.planned().scenario
        invocation = artillery.prepare(scenario, workdir / "bare")
        began = datetime.now(UTC)
        try:
            env = {**os.environ, **invocation.env}
            run, _ = run_timed(invocation.argv, invocation.workdir, env=env)
        finally:
            if invocation.private_dir is not None:
                shutil.rmtree(invocation.private_dir)
        record = ToolRun(invocation.argv, 0, began, datetime.now(UTC), workdir / "bare.log")
        result = artillery.parse(scenario, invocation, record)
        run.throughput, run.requests = result.throughput, result.total_requests
        return run

    return bare


@contextmanager
def fast_server(workdir: Path) -> Iterator[str]:
    """A bare Node http server: the fastest target this machine has, so the generator is
    the limit."""
    script = workdir / "fast-server.js"
    script.write_text(FAST_SERVER)
    # Its own session, as the reference target and as a server a user started elsewhere:
    # with the kernel's autogroups (sched_autogroup_enabled) a session is a scheduling
    # group, and a server sharing the bare tool's group would be scheduled differently in
    # the bare run (one group) than in orchestrate's (whose tool has its own session).
    proc = subprocess.Popen(
        [tools.node_executable(), str(script)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (\d+)", line)
        if match is None:
            raise RuntimeError(f"the Node server did not start: {line!r}")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def plan_cases(stack: ExitStack, opts: argparse.Namespace, workdir: Path) -> list[Case]:
    seconds = opts.seconds
    cases: list[Case] = []
    wanted = set(opts.cases.split(","))

    def add(name: str, what: str, url: str, bare: Runner, flags: list[str], pairs: int) -> None:
        """One case: ``bare`` against ``url``, then the same load through orchestrate."""
        ours = through_orchestrate(["--url", url, *flags, "-d", str(seconds)])
        cases.append(Case(name, what % seconds, bare, ours, pairs))

    if wanted & {"autocannon", "artillery"}:
        target = stack.enter_context(start_reference_target()).url
    if wanted & {"autocannon-fast", "k6-fast"}:
        fast = stack.enter_context(fast_server(workdir))
    if "autocannon" in wanted:
        url = f"{target}/health"
        what = "10 connections, %d s, reference target /health"
        add("autocannon", what, url, bare_autocannon(url, 10, seconds), ["-c", "10"], opts.pairs)
    if "autocannon-fast" in wanted:
        url = f"{fast}/"
        what = "generator-bound: 50 connections, %d s, bare Node http server"
        bare = bare_autocannon(url, 50, seconds)
        add("autocannon-fast", what, url, bare, ["-c", "50"], opts.pairs)
    k6_flags = ["--tool", "k6", "-c", "10"]
    if "k6" in wanted:
        slow = stack.enter_context(start_reference_target("--latency-ms", "2")).url
        url = f"{slow}/api/textbooks/hierarchy"
        what = "10 VUs, %d s, reference target with 2 ms latency"
        add("k6", what, url, bare_k6(url, 10, seconds), k6_flags, opts.k6_pairs)
    if "k6-fast" in wanted:
        url = f"{fast}/"
        what = "generator-bound: 10 VUs, %d s, bare Node http server"
        add("k6-fast", what, url, bare_k6(url, 10, seconds), k6_flags, opts.k6_pairs)
    if "artillery" in wanted:
        url = f"{target}/health"
        what = "10 users, %d s, reference target /health"
        bare = bare_artillery(url, 10, seconds)
        flags = ["--tool", "artillery", "-c", "10"]
        add("artillery", what, url, bare, flags, opts.artillery_pairs)
    return cases


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def tool_us_per_request(run: Run) -> float | None:
    """The load tool's CPU per request (orchestrate's own Python process left out)."""
    cpu = run.cpu - (run.own_cpu or 0.0)
    return None if not run.requests else 1e6 * cpu / run.requests


def report(case: Case) -> dict[str, float | None]:
    pairs = case.results
    row = {
        "overhead_to_verdict_s": median(
            [None if o.verdict_at is None else o.verdict_at - b.wall for b, o in pairs]
        ),
        "overhead_to_exit_s": median([o.wall - b.wall for b, o in pairs]),
        "bare_wall_s": median([b.wall for b, _ in pairs]),
        "bare_cpu_s": median([b.cpu for b, _ in pairs]),
        "orchestrate_cpu_total_s": median([o.cpu for _, o in pairs]),
        "orchestrate_python_cpu_s": median([o.own_cpu for _, o in pairs]),
        "python_cpu_to_verdict_s": median([o.own_cpu_at_verdict for _, o in pairs]),
        "bare_throughput": median([b.throughput for b, _ in pairs]),
        "orchestrate_throughput": median([o.throughput for _, o in pairs]),
        "throughput_ratio": median([ratio(o.throughput, b.throughput) for b, o in pairs]),
        "bare_tool_us_per_request": median([tool_us_per_request(b) for b, _ in pairs]),
        "tool_us_per_request_through_orchestrate": median(
            [tool_us_per_request(o) for _, o in pairs]
        ),
    }
    print(f"\n== {case.name}: {case.what}; {len(pairs)} alternating pairs (medians)")
    print(
        f"  wall overhead: {fmt(row['overhead_to_verdict_s'])} s to the verdict line, "
        f"{fmt(row['overhead_to_exit_s'])} s to exit (bare tool: {fmt(row['bare_wall_s'])} s)"
    )
    print(
        f"  CPU: bare tool {fmt(row['bare_cpu_s'])} s; through orchestrate "
        f"{fmt(row['orchestrate_cpu_total_s'])} s in all, of which orchestrate's Python "
        f"{fmt(row['orchestrate_python_cpu_s'])} s ({fmt(row['python_cpu_to_verdict_s'])} s "
        "up to the verdict)"
    )
    print(
        f"  the tool's CPU per request: bare {fmt(row['bare_tool_us_per_request'], '.1f')} us, "
        f"through orchestrate {fmt(row['tool_us_per_request_through_orchestrate'], '.1f')} us"
    )
    print(
        f"  throughput: bare {fmt(row['bare_throughput'], ',.0f')} req/s, through orchestrate "
        f"{fmt(row['orchestrate_throughput'], ',.0f')} req/s, ratio "
        f"{fmt(row['throughput_ratio'], '.3f')} (median of per-pair ratios)"
    )
    return row


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--pairs", type=int, default=5, help="pairs for the autocannon cases")
    args.add_argument("--k6-pairs", type=int, default=5)
    args.add_argument("--artillery-pairs", type=int, default=3)
    args.add_argument("--seconds", type=int, default=5)
    args.add_argument("--cases", default="autocannon,autocannon-fast,k6,k6-fast,artillery")
    args.add_argument("--json", type=Path, help="also write the medians here")
    opts = args.parse_args()
    tools.install()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}")
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    rows: dict[str, dict[str, float | None]] = {}
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        cases = plan_cases(stack, opts, workdir)
        for case in cases:
            for i in range(case.pairs):
                pair_dir = workdir / case.name / str(i)
                (pair_dir / "bare").mkdir(parents=True)
                (pair_dir / "ours").mkdir()
                bare = case.bare(pair_dir / "bare")
                ours = case.ours(pair_dir / "ours")
                case.results.append((bare, ours))
                print(
                    f"{case.name} pair {i + 1}: bare {bare.wall:.2f} s "
                    f"{fmt(bare.throughput, ',.0f')} req/s; orchestrate verdict at "
                    f"{fmt(ours.verdict_at)} s, exit {ours.wall:.2f} s, "
                    f"{fmt(ours.throughput, ',.0f')} req/s",
                    flush=True,
                )
            rows[case.name] = report(case)
    print("\nload average at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print("Goals: <= 0.5 s to the verdict line (5 s autocannon case); ratio >= 0.97 per engine.")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
