"""SIGTERM and SIGHUP stop a run as Ctrl-C does: what was measured is written, a target we
started is stopped, the private folder with secrets is removed, exit code 130, one line."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from orchestrator import interrupts
from orchestrator.models import LoadTestResult

SECRET = "Bearer sigterm-secret-4f1c9a"  # made up: the test looks for it in every file


def test_a_signal_raises_interrupted_unless_shielded() -> None:
    with interrupts.interruptible():
        with pytest.raises(KeyboardInterrupt) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at the next bytecode; this is never reached
        assert isinstance(raised.value, interrupts.Interrupted)
        assert interrupts.describe() == "SIGTERM"
        with interrupts.shielded():
            os.kill(os.getpid(), signal.SIGHUP)  # noted, not raised
            time.sleep(0.05)
        assert interrupts.last_signal() == "SIGHUP"
    # Outside, the process's own handlers are back.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_the_tool(pid: int, timeout: float = 60.0) -> list[psutil.Process]:
    """The orchestrate process's descendants once the load tool (node) runs among them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children(recursive=True)
        names = set()
        for child in children:
            try:
                names.add(child.name())
            except psutil.NoSuchProcess:
                continue
        if "node" in names:
            return children
        time.sleep(0.2)
    raise AssertionError("the load tool did not start")


@pytest.mark.load
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_sigterm_and_sighup_stop_a_run_like_ctrl_c(
    sig: signal.Signals, tmp_path: Path, closed_port: int, node_tools: Path
) -> None:
    port = closed_port  # free: the run starts the reference target there itself
    target_cmd = [sys.executable, "-m", "orchestrator.reference_target", "--port", str(port)]
    temp = tmp_path / "tmp"  # the run's private folders go here, and must go away
    temp.mkdir()
    reports = tmp_path / "reports"
    args = ["run", "-q", "--tool", "autocannon", "-c", "5", "-d", "10"]
    args += ["--url", f"http://127.0.0.1:{port}/health", "--target-cmd", shlex.join(target_cmd)]
    args += ["--header", f"Authorization: {SECRET}", "--report-dir", str(reports)]
    with (tmp_path / "out.txt").open("w") as out, (tmp_path / "err.txt").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=tmp_path,
            env={**os.environ, "TMPDIR": str(temp), "COLUMNS": "200"},
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            descendants = wait_for_the_tool(proc.pid)
            time.sleep(2)  # let it measure something
            assert proc.poll() is None, "the 10 s run ended early"
            assert list(temp.glob("orchestrate-*")), "no private folder: nothing to check"
            # Only the orchestrate process, as `timeout` and CI runners do.
            os.kill(proc.pid, sig)
            code = proc.wait(timeout=40)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    stderr = (tmp_path / "err.txt").read_text(encoding="utf-8")
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == f"orchestrate: interrupted ({sig.name})", stderr

    (run_dir,) = [d for d in reports.iterdir() if not d.is_symlink()]
    result = LoadTestResult.model_validate_json((run_dir / "run" / "result.json").read_text())
    assert result.status.value == "interrupted"
    assert sig.name in (result.status_detail or "")
    assert result.total_requests is not None and result.total_requests > 0
    assert result.resource_usage is not None  # the started target was sampled
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["exitCode"] == 130

    assert [p.pid for p in descendants if alive(p)] == []  # tool and target are gone
    assert list(temp.glob("orchestrate-*")) == []  # the private folder with the secret too
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(encoding="utf-8", errors="replace"), path
