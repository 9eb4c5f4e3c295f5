"""Several hosts on one machine: network namespaces made (and removed) by the test.

Five namespaces: a switch (a bridge, no address) and four hosts on 10.203.0.0/24 wired to
it by veth pairs created directly inside the namespaces: the target (.1), two agents (.2,
.3) and the coordinator (.4). No namespace has a default route or any link to the host's
interfaces, so nothing can leave the machine. The coordinator hands one k6 shard to each
agent, releases both together and merges their raw outputs; the target counts requests per
client address (GET /peers) to show both hosts loaded it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from k6_raw import announced, ms, read_samples

from orchestrator.models import LoadTestResult, Status

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2 (scripts/setup.sh installs it)",
)

SUBNET = "10.203.0"  # private, and only inside the test's namespaces
HOSTS = {"target": 1, "agent1": 2, "agent2": 3, "coord": 4}
TARGET_PORT = 8000
AGENT_PORT = 7000


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def netns_list() -> list[str]:
    return sorted(line.split()[0] for line in ip("netns", "list").splitlines() if line.strip())


@dataclass
class Net:
    ns: dict[str, str]  # role -> namespace

    def addr(self, role: str) -> str:
        return f"{SUBNET}.{HOSTS[role]}"

    def exec(self, role: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[role], *argv]


@contextmanager
def private_network() -> Iterator[Net]:
    before = netns_list()
    tag = f"orch{os.getpid()}"
    net = Net({role: f"{tag}-{role}" for role in (*HOSTS, "switch")})
    created: list[str] = []
    try:
        for name in net.ns.values():
            ip("netns", "add", name)
            created.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        switch = net.ns["switch"]
        ip("-n", switch, "link", "add", "br0", "type", "bridge")
        ip("-n", switch, "link", "set", "br0", "up")
        for role, number in HOSTS.items():
            port = f"p{number}"
            # Both ends are created inside namespaces: the host's own links never change.
            ip("link", "add", "eth0", "netns", net.ns[role], "type", "veth", "peer", "name",
               port, "netns", switch)  # fmt: skip
            ip("-n", switch, "link", "set", port, "master", "br0", "up")
            ip("-n", net.ns[role], "addr", "add", f"{net.addr(role)}/24", "dev", "eth0")
            ip("-n", net.ns[role], "link", "set", "eth0", "up")
            # Only the on-link /24: no default route, nowhere else to go.
            assert "default" not in ip("-n", net.ns[role], "route", "show")
        yield net
    finally:
        left = {name: ip("netns", "pids", name).split() for name in created}
        for name in created:
            ip("netns", "del", name)
        assert not any(left.values()), f"processes left in the namespaces: {left}"
        assert netns_list() == before


def coordinator_argv(net: Net, report_dir: Path) -> list[str]:
    argv = [sys.executable, "-m", "orchestrator", "run", "--tool", "k6", "--quiet"]
    argv += ["--url", f"http://{net.addr('target')}:{TARGET_PORT}/health"]
    argv += ["--connections", "6", "--duration", "3", "--shards", "2"]
    argv += ["--report-dir", str(report_dir)]
    for agent in ("agent1", "agent2"):
        argv += ["--agent", f"http://{net.addr(agent)}:{AGENT_PORT}"]
    help_text = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--help"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    if "--allow-host" in help_text:  # once the safety check guards `run`
        argv += ["--allow-host", net.addr("target")]
    return net.exec("coord", *argv)


def test_two_agents_on_two_hosts_load_a_third(tmp_path: Path) -> None:
    with private_network() as net, ExitStack() as running:
        target = net.addr("target")
        serve = [sys.executable, "-m", "orchestrator.reference_target", "--host", target]
        serve += ["--port", str(TARGET_PORT)]
        listening = re.escape(f"listening on http://{target}:{TARGET_PORT}")
        running.enter_context(announced(net.exec("target", *serve), listening))
        for agent in ("agent1", "agent2"):
            argv = [sys.executable, "-m", "orchestrator", "agent", "--allow-host", target]
            argv += ["--listen", f"{net.addr(agent)}:{AGENT_PORT}"]
            running.enter_context(
                announced(net.exec(agent, *argv), "orchestrate agent listening on")
            )
        done = subprocess.run(
            coordinator_argv(net, tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        fetch = "import urllib.request as u; print(u.urlopen({!r}).read().decode())".format(
            f"http://{target}:{TARGET_PORT}/peers"
        )
        peers = subprocess.run(
            net.exec("coord", sys.executable, "-c", fetch),
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    counts = json.loads(peers.stdout)["peers"]
    result = LoadTestResult.model_validate_json(
        next(tmp_path.glob("2*/run/result.json")).read_text()
    )
    assert result.status is Status.COMPLETED, result.status_detail
    hosts = [s.host for s in result.shards]
    assert hosts == [f"http://{net.addr(a)}:{AGENT_PORT}" for a in ("agent1", "agent2")]
    # Each agent's address reached the target, and exactly with what its shard counted.
    for shard, agent in zip(result.shards, ("agent1", "agent2"), strict=True):
        assert shard.total_requests and shard.total_requests > 0
        assert counts.get(net.addr(agent)) == shard.total_requests, counts
    assert result.total_requests == sum(s.total_requests or 0 for s in result.shards)
    samples = read_samples([Path(s.raw_output or "") for s in result.shards])
    assert samples.count == result.total_requests
    for key, pct in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert getattr(result.response_time, key) == ms(samples.overall, pct)
    print(
        f"\nnamespaces: {counts} -> merged {result.total_requests} requests, "
        f"p95 {result.response_time.p95} ms, {result.throughput:.0f} req/s"
    )
