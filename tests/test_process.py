"""The process chokepoint, with fake tools made of `python -c` (as nox tests its runner)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from orchestrator import process
from orchestrator.errors import ToolError, ToolNotFoundError
from orchestrator.process import resolve_executable, run_tool


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture(autouse=True)
def short_graces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "INTERRUPT_GRACE", 1.0)
    monkeypatch.setattr(process, "TERMINATE_GRACE", 1.0)


def test_output_is_teed_to_the_sink_and_the_log(tmp_path: Path) -> None:
    seen: list[str] = []
    code = (
        "import sys; print('hello'); sys.stdout.flush(); sys.stderr.write('oops\\n'); sys.exit(3)"
    )
    run = run_tool(py(code), timeout=20, log_path=tmp_path / "tool.log", sink=seen.append)
    assert run.returncode == 3 and not run.ok
    text = "".join(seen)
    assert "hello" in text and "oops" in text
    assert (tmp_path / "tool.log").read_text() == text
    assert run.describe_failure() == "exited with code 3: oops"


def test_invalid_utf8_does_not_crash(tmp_path: Path) -> None:
    code = "import sys; sys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n')"
    seen: list[str] = []
    run = run_tool(py(code), timeout=20, log_path=tmp_path / "tool.log", sink=seen.append)
    assert run.ok
    assert "bad \ufffd\ufffd bytes" in "".join(seen)
    assert (tmp_path / "tool.log").read_bytes() == b"bad \xff\xfe bytes\n"


def test_timeout_stops_the_tool(tmp_path: Path) -> None:
    started = time.monotonic()
    run = run_tool(py("import time; time.sleep(60)"), timeout=1, log_path=tmp_path / "t.log")
    assert run.timed_out and not run.ok
    assert time.monotonic() - started < 10


def test_a_tool_ignoring_sigint_and_sigterm_is_killed(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    run = run_tool(py(code), timeout=1, log_path=tmp_path / "t.log", sink=None)
    assert run.timed_out
    assert run.returncode == -9  # only SIGKILL got through


def test_ctrl_c_interrupts_the_tool_which_can_save_its_work(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    print('saved partial output', flush=True); sys.exit(130)\n"
        "signal.signal(signal.SIGINT, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )

    def press_ctrl_c(pid: int) -> None:
        time.sleep(0.5)  # let the tool install its handler
        raise KeyboardInterrupt

    run = run_tool(py(code), timeout=30, log_path=tmp_path / "t.log", on_start=press_ctrl_c)
    assert run.interrupted and run.returncode == 130
    assert "saved partial output" in (tmp_path / "t.log").read_text()


def test_children_left_behind_are_stopped(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
    )
    run = run_tool(py(code), timeout=20, log_path=tmp_path / "t.log", sink=None)
    assert run.ok
    orphan = int(run.tail[0])
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == "zombie"


def test_a_broken_display_does_not_stop_the_tool(tmp_path: Path) -> None:
    def broken(_text: str) -> None:
        raise RuntimeError("display gone")

    code = "import sys\nfor i in range(20000): print('x' * 100)\n"  # > a pipe's buffer
    run = run_tool(py(code), timeout=30, log_path=tmp_path / "t.log", sink=broken)
    assert run.ok
    assert (tmp_path / "t.log").stat().st_size == 20000 * 101


def test_missing_executables_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ToolNotFoundError, match=r"^no-such-tool not found: install it$"):
        resolve_executable("no-such-tool", "install it")
    with pytest.raises(ToolError, match="cannot start nope"):
        run_tool([str(tmp_path / "nope")], timeout=5, log_path=tmp_path / "t.log")
