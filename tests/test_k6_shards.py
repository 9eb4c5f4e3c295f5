"""Sharded k6: execution segments (golden), real sharded runs on the reference target merged
exactly (checked against every raw sample, read without the parser), the same total load
sharded or not, Ctrl-C, and agents on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from k6_raw import announced, ms, read_samples

from orchestrator.cli import main
from orchestrator.engines.k6.shards import (
    config_urls,
    segment_sequence,
    segments,
    shard_argv,
    shard_config,
)
from orchestrator.errors import ConfigError
from orchestrator.models import LoadTestResult, Status
from orchestrator.scenarios import Endpoint, LoadShape, Scenario

AGENT_LINE = r"orchestrate agent listening on (http://127\.0\.0\.1:\d+)"


def scenario(shards: int = 2, **kw: Any) -> Scenario:
    return Scenario(
        name="sharded",
        base_url="http://127.0.0.1:8123",
        endpoints=[Endpoint(path="/health")],
        shape=LoadShape.constant(10, 3),
        shards=shards,
        **kw,
    )


# ---- segments and command lines (no load) ----


def test_segments_cover_the_whole_test_once() -> None:
    assert segments(1) == ["0:1"]
    assert segments(2) == ["0:1/2", "1/2:1"]
    assert segments(3) == ["0:1/3", "1/3:2/3", "2/3:1"]
    assert segment_sequence(2) == "0,1/2,1"
    assert segment_sequence(4) == "0,1/4,1/2,3/4,1"
    with pytest.raises(ConfigError, match="between 1 and 64"):
        segments(0)


def test_shard_argv_is_paused_on_its_own_address_with_its_segment(tmp_path: Path) -> None:
    script = tmp_path / "s.js"
    argv = shard_argv(
        "k6",
        script,
        tmp_path / "raw.gz",
        tmp_path / "sum.json",
        tmp_path / "log.txt",
        address="127.0.0.1:6001",
        segment="1/2:1",
        sequence="0,1/2,1",
    )
    assert argv[argv.index("--address") + 1] == "127.0.0.1:6001"
    assert argv[argv.index("--execution-segment") + 1] == "1/2:1"
    assert argv[argv.index("--execution-segment-sequence") + 1] == "0,1/2,1"
    assert "--paused" in argv
    assert f"json={tmp_path / 'raw.gz'}" in argv
    assert argv[-1] == str(script)


def test_shard_config_splits_our_rate_cap_and_keeps_k6s_split() -> None:
    capped = scenario(3, max_rate=300.0)
    config = shard_config(capped, 3)
    assert config["http"]["maxRate"] == pytest.approx(100.0)
    # k6 divides VUs by segment itself: the options keep the whole test's 10 VUs.
    assert config["options"]["scenarios"]["main"]["vus"] == 10
    assert config_urls(config) == ["http://127.0.0.1:8123/health"]


def test_shards_are_k6_only() -> None:
    from orchestrator.engines.k6.sharding import check_shardable

    with pytest.raises(ConfigError, match="only k6 runs sharded"):
        check_shardable("autocannon", scenario())
    with pytest.raises(ConfigError, match="expected http://HOST:PORT"):
        check_shardable("k6", scenario(), ["ftp://agent.invalid"])


def test_run_with_shards_and_another_tool_is_a_usage_error(tmp_path: Path) -> None:
    code = main(["run", "--tool", "autocannon", "--shards", "2", "--report-dir", str(tmp_path)])
    assert code == 2
    assert not list(tmp_path.iterdir())  # refused before a report dir exists


# ---- real sharded runs ----


def run_cli(target_url: str, report_dir: Path, *args: str) -> LoadTestResult:
    code = main(
        [
            "run",
            "--tool",
            "k6",
            "--url",
            f"{target_url}/health",
            "--duration",
            "3",
            "--report-dir",
            str(report_dir),
            "--quiet",
            *args,
        ]
    )
    assert code == 0
    results = list(report_dir.glob("2*/run/result.json"))
    assert len(results) == 1
    return LoadTestResult.model_validate_json(results[0].read_text())


def assert_exact_merge(result: LoadTestResult, shards: int) -> None:
    """The merged numbers are what every raw sample of every shard says together."""
    assert result.status is Status.COMPLETED, result.status_detail
    assert len(result.shards) == shards
    assert result.total_requests == sum(s.total_requests or 0 for s in result.shards)
    assert result.failed_requests == sum(s.failed_requests or 0 for s in result.shards)
    assert all(s.generator is not None for s in result.shards)
    raws = [Path(s.raw_output or "") for s in result.shards]
    samples = read_samples(raws)
    assert samples.count == result.total_requests
    rt = result.response_time
    assert rt.source == "histogram"
    for key, pct in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9)):
        assert getattr(rt, key) == ms(samples.overall, pct), key
    assert rt.max == samples.overall.get_max_value() / 1000
    assert rt.min == samples.overall.get_min_value() / 1000
    # Per second: requests and percentiles from the values of both shards in that second.
    first = samples.first_second
    assert [b.requests for b in result.time_series] == [
        samples.requests.get(first + i, 0) for i in range(len(result.time_series))
    ]
    checked = 0
    for bucket in result.time_series:
        second = samples.per_second.get(first + int(bucket.t))
        if second is None:
            continue
        assert (bucket.p50, bucket.p95, bucket.p99) == (
            ms(second, 50),
            ms(second, 95),
            ms(second, 99),
        ), bucket
        checked += 1
    assert checked >= 3


@pytest.mark.load
def test_two_shards_merge_exactly(reference_target: Any, tmp_path: Path) -> None:
    result = run_cli(reference_target.url, tmp_path, "--connections", "8", "--shards", "2")
    assert_exact_merge(result, 2)
    assert [s.segment for s in result.shards] == ["0:1/2", "1/2:1"]
    assert all(s.host == "local" for s in result.shards)
    # Each shard ran its half of the 8 VUs; side by side they were 8.
    assert result.concurrency == 8
    print(
        f"\nsharded: {result.total_requests} requests "
        f"({' + '.join(str(s.total_requests) for s in result.shards)}), "
        f"p95 {result.response_time.p95} ms, {result.throughput:.0f} req/s"
    )


@pytest.mark.load
@pytest.mark.parametrize(
    "load",
    [("--open", "--rate", "300"), ("--connections", "10", "--rate", "300")],
    ids=["open-300-per-s", "closed-capped-300-per-s"],
)
def test_same_total_load_sharded_or_not(
    reference_target: Any, tmp_path: Path, load: tuple[str, ...]
) -> None:
    single = run_cli(reference_target.url, tmp_path / "single", *load)
    sharded = run_cli(reference_target.url, tmp_path / "sharded", *load, "--shards", "2")
    assert single.throughput is not None and sharded.throughput is not None
    ratio = sharded.throughput / single.throughput
    print(
        f"\n{' '.join(load)}: unsharded {single.throughput:.1f} req/s "
        f"({single.total_requests} req), 2 shards {sharded.throughput:.1f} req/s "
        f"({sharded.total_requests} req), ratio {ratio:.3f}"
    )
    assert 0.9 <= ratio <= 1.1
    assert sharded.total_requests == sum(s.total_requests or 0 for s in sharded.shards)


@pytest.mark.load
def test_ctrl_c_stops_every_shard_and_keeps_what_they_measured(
    reference_target: Any, tmp_path: Path
) -> None:
    argv = [sys.executable, "-m", "orchestrator", "run", "--tool", "k6", "--quiet"]
    argv += ["--url", f"{reference_target.url}/health", "-c", "4", "-d", "30"]
    argv += ["--shards", "2", "--report-dir", str(tmp_path)]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        k6_pids: list[int] = []
        while time.monotonic() < deadline and len(k6_pids) < 2:
            time.sleep(0.2)
            k6_pids = [
                c.pid for c in psutil.Process(proc.pid).children(recursive=True) if c.name() == "k6"
            ]
        assert len(k6_pids) == 2
        time.sleep(3)  # released and loading
        os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends the coordinator
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out.decode(errors="replace")
    assert not [p for p in k6_pids if psutil.pid_exists(p)]
    result = LoadTestResult.model_validate_json(
        next(tmp_path.glob("2*/run/result.json")).read_text()
    )
    assert result.status is Status.INTERRUPTED
    assert result.total_requests and result.total_requests > 0
    assert result.total_requests == sum(s.total_requests or 0 for s in result.shards)
    assert result.duration < 20


# ---- agents on loopback (the several-hosts case is in test_k6_agents_netns.py) ----


def agent_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", "agent", "--listen", "127.0.0.1:0", *extra]


@pytest.mark.load
def test_shards_on_two_agents(reference_target: Any, tmp_path: Path) -> None:
    with (
        announced(agent_argv(), AGENT_LINE) as one,
        announced(agent_argv(), AGENT_LINE) as two,
    ):
        agents = [one.group(1), two.group(1)]
        result = run_cli(
            reference_target.url,
            tmp_path,
            "--connections",
            "6",
            "--shards",
            "2",
            *[a for url in agents for a in ("--agent", url)],
        )
    assert_exact_merge(result, 2)
    assert [s.host for s in result.shards] == agents


def test_agent_refuses_hosts_it_may_not_load(tmp_path: Path) -> None:
    from orchestrator.engines.k6.agent_client import AgentShard
    from orchestrator.errors import ToolError

    remote = scenario().model_copy(update={"base_url": "http://target.invalid:8000"})
    config = shard_config(remote, 2)
    with announced(agent_argv(), AGENT_LINE) as agent:
        shard = AgentShard(agent.group(1), 0, "0:1/2", "0,1/2,1", config, tmp_path, timeout=10)
        with pytest.raises(ToolError, match=r"refusing to load target\.invalid"):
            shard.start()
        assert shard.shard_id is None


def test_agent_with_a_token_refuses_requests_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.engines.k6.agent import TOKEN_ENV
    from orchestrator.engines.k6.agent_client import AgentShard
    from orchestrator.errors import ToolError

    monkeypatch.setenv(TOKEN_ENV, "agent-token-for-the-test")
    config = shard_config(scenario(), 1)
    with announced(agent_argv(), AGENT_LINE) as agent:
        monkeypatch.delenv(TOKEN_ENV)
        shard = AgentShard(agent.group(1), 0, "0:1", "0,1", config, tmp_path, timeout=10)
        with pytest.raises(ToolError, match="missing or wrong agent token"):
            shard.start()


def test_agent_needs_an_explicit_address() -> None:
    from orchestrator.engines.k6.agent import parse_listen

    assert parse_listen("10.203.0.11:7000") == ("10.203.0.11", 7000)
    assert parse_listen("[::1]:7000") == ("::1", 7000)
    for bad in ("7000", ":7000", "host:", "host:99999"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_a_config_scenario_can_be_sharded_on_k6_only() -> None:
    from orchestrator.config import parse_config
    from orchestrator.plan import plan_scenario, resolve_scenario

    config = parse_config(
        {"scenarios": {"wide": {"tool": "k6", "users": 40, "hold": 5, "shards": 4}}}
    )
    planned = plan_scenario("wide", resolve_scenario("wide", config), config)
    assert planned.scenario.shards == 4
    other = parse_config({"scenarios": {"wide": {"tool": "autocannon", "users": 4, "hold": 5,
                                                 "shards": 2}}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"scenarios\.wide\.shards: .*only k6 runs sharded"):
        plan_scenario("wide", resolve_scenario("wide", other), other)
