"""Which hosts a run may load. No test here sends a packet: names are loopback or .invalid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, ExitCode, TargetError
from orchestrator.safety import check_targets, host_of, is_allowed, is_loopback


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/health",
        "http://127.3.4.5/",
        "ws://[::1]:9000/ws",
        "http://localhost:3000",
        "postgresql://user:pw@127.0.0.1:5432/db",
    ],
)
def test_loopback_is_always_allowed(url: str) -> None:
    check_targets([url], allowed_hosts=[])


def test_a_host_that_is_not_ours_is_refused_with_the_way_to_allow_it() -> None:
    with pytest.raises(ConfigError) as info:
        check_targets(["http://load-target.invalid/"], allowed_hosts=[])
    message = str(info.value)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in message
    assert "allowed_hosts" in message
    assert "--allow-host load-target.invalid" in message


def test_an_allowed_host_that_does_not_resolve_is_a_target_failure() -> None:
    with pytest.raises(TargetError) as info:
        check_targets(["http://load-target.invalid/"], allowed_hosts=["*.invalid"])
    assert info.value.exit_code == ExitCode.TOOL_OR_TARGET_FAILED
    assert "cannot resolve load-target.invalid" in str(info.value)


def test_wildcards_match_whole_names_case_blind() -> None:
    assert is_allowed("api.staging.invalid", ["*.staging.invalid"])
    assert not is_allowed("staging.invalid.evil.invalid", ["staging.invalid"])
    assert is_allowed("api.staging.invalid", ["API.Staging.invalid"])


def test_loopback_by_name_and_not() -> None:
    assert is_loopback("localhost")
    assert is_loopback("127.0.0.1")
    assert not is_loopback("load-target.invalid")
    assert not is_loopback("192.0.2.1")  # TEST-NET-1: a literal, never contacted


def test_bad_urls_are_one_line() -> None:
    with pytest.raises(ConfigError):
        host_of("http:///nohost")
    assert host_of("http://[::1]:80/") == "::1"


def orchestrate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_refuses_a_host_that_is_not_ours_before_any_load(tmp_path: Path) -> None:
    done = orchestrate("run", "--url", "http://load-target.invalid/", "-d", "1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "allowed_hosts" in done.stderr and "--allow-host" in done.stderr
    assert not (tmp_path / "load-reports").exists()  # nothing started, nothing written


def test_run_with_the_host_allowed_proceeds_and_fails_to_resolve(tmp_path: Path) -> None:
    done = orchestrate(
        "run", "--url", "http://load-target.invalid/", "-d", "1", "--allow-host", "*.invalid",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 3
    assert "cannot resolve load-target.invalid" in done.stderr


def test_a_suite_reads_allowed_hosts_from_its_config(tmp_path: Path) -> None:
    config = "target: {base_url: 'http://api.load-target.invalid'}\nlogin: null\n"
    (tmp_path / "orchestrate.yaml").write_text(config)
    refused = orchestrate("suite", "ci", cwd=tmp_path)
    assert refused.returncode == 2
    assert "refusing to load api.load-target.invalid" in refused.stderr
    (tmp_path / "orchestrate.yaml").write_text(
        config + "allowed_hosts: ['*.load-target.invalid']\n"
    )
    allowed = orchestrate("suite", "ci", cwd=tmp_path)
    assert allowed.returncode == 3
    assert "cannot resolve api.load-target.invalid" in allowed.stderr
