"""How much throughput our autocannon runner costs compared with the bare autocannon CLI.

Starts the reference target, then alternates: bare ``autocannon --json -c 10 -d 5 URL/health``
and the same load through orchestrate (execute.run_scenario: our Node runner, the process
chokepoint, the target and generator samplers), a few rounds.
Prints req/s of each and the ratio runner / bare (goal: >= 0.95).

    python benchmarks/bench_autocannon_overhead.py [--rounds 2] [--connections 10] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import start_reference_target  # noqa: E402

from orchestrator import tools  # noqa: E402
from orchestrator.execute import RunSettings, run_scenario  # noqa: E402
from orchestrator.scenarios import Endpoint, LoadShape, Scenario  # noqa: E402
from orchestrator.targets import locate_target  # noqa: E402


def run_bare(url: str, connections: int, seconds: int) -> float:
    entry = tools.node_tool_entry("autocannon")
    argv = [tools.node_executable(), str(entry), "--json", "-c", str(connections)]
    argv += ["-d", str(seconds), f"{url}/health"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    data = json.loads(out.stdout)
    return float(data["requests"]["total"]) / float(data["duration"])


def run_ours(url: str, connections: int, seconds: int, workdir: Path) -> float:
    scenario = Scenario(
        name="bench",
        base_url=url,
        endpoints=[Endpoint(path="/health")],
        shape=LoadShape.constant(connections, float(seconds)),
    )
    # The whole `orchestrate run` path: samplers on the target and on autocannon, tee'd log.
    target, _ = locate_target(None, url)
    settings = RunSettings(sink=None)
    result = run_scenario(scenario, "autocannon", workdir, target, settings)
    assert result.throughput is not None, result.status_detail
    return result.throughput


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--connections", type=int, default=10)
    args.add_argument("--seconds", type=int, default=5)
    args.add_argument("--url", help="an already running target with /health (default: start one)")
    opts = args.parse_args()
    tools.install()
    bare: list[float] = []
    ours: list[float] = []
    with ExitStack() as stack:
        url = opts.url or stack.enter_context(start_reference_target()).url
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"target {url}, {opts.connections} connections, {opts.seconds} s per run")
        for i in range(opts.rounds):
            bare.append(run_bare(url, opts.connections, opts.seconds))
            ours.append(run_ours(url, opts.connections, opts.seconds, tmp / str(i)))
            print(f"round {i + 1}: bare {bare[-1]:8.1f} req/s   runner {ours[-1]:8.1f} req/s")
    ratio = statistics.median(ours) / statistics.median(bare)
    print(
        f"median: bare {statistics.median(bare):.1f} req/s, runner "
        f"{statistics.median(ours):.1f} req/s, ratio {ratio:.3f} (goal >= 0.95)"
    )


if __name__ == "__main__":
    main()
