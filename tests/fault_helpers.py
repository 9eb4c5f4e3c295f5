"""Run ``orchestrate`` as a user would (a real process) and watch its process tree.

For the fault tests: the command runs in its own session with its own ``TMPDIR`` (so that
its private folders can be checked after it exits), its output goes to files, and every
process that appears under it while it runs is remembered, so that the test can assert
that none is left behind afterwards, even one re-parented away from the tree. Imported as
``fault_helpers`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# Wide enough that rich's tables keep one value per line.
CONSOLE_COLUMNS = "200"


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def name_of(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.Error:
        return ""


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@dataclass
class Orchestrate:
    """One ``python -m orchestrator ARGS`` process and what it started."""

    proc: subprocess.Popen[bytes]
    folder: Path
    tmp: Path  # its TMPDIR
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    code: int | None = None
    _halt: threading.Event = field(default_factory=threading.Event)

    @property
    def stdout(self) -> str:
        return (self.folder / "stdout.txt").read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return (self.folder / "stderr.txt").read_text(encoding="utf-8", errors="replace")

    def watch(self) -> None:
        """Remember every descendant, ten times a second, until the process has exited."""
        while not self._halt.is_set():
            for child in descendants(self.proc.pid):
                self.seen.setdefault(child.pid, child)
            if self.proc.poll() is not None:
                return
            time.sleep(0.1)

    def children_named(self, name: str) -> list[psutil.Process]:
        return [p for p in descendants(self.proc.pid) if name_of(p) == name]

    def wait_for(self, check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"orchestrate exited before {what}:\n{self.stderr}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}:\n{self.stderr}")

    def wait_for_child(self, name: str, timeout: float = 60.0) -> psutil.Process:
        self.wait_for(lambda: self.children_named(name), f"a {name} process", timeout)
        return self.children_named(name)[0]

    def signal(self, sig: signal.Signals) -> None:
        """To the orchestrate process only, as ``timeout`` and CI runners do."""
        os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = 60.0) -> int:
        self.code = self.proc.wait(timeout=timeout)
        return self.code

    def left_behind(self) -> list[str]:
        """Processes it started that still run after it exited."""
        return [f"{p.pid} {name_of(p)}" for p in self.seen.values() if alive(p)]

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("orchestrate: ")]


@contextmanager
def orchestrate(
    args: Sequence[str], folder: Path, env: dict[str, str] | None = None
) -> Iterator[Orchestrate]:
    """Start orchestrate with ``args`` (cwd and TMPDIR under ``folder``); it is killed, with
    its whole session, if the test leaves before it exited."""
    tmp = folder / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "TMPDIR": str(tmp), "COLUMNS": CONSOLE_COLUMNS, **(env or {})}
    with (folder / "stdout.txt").open("wb") as out, (folder / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=folder,
            env=full_env,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    run = Orchestrate(proc, folder, tmp)
    watcher = threading.Thread(target=run.watch, daemon=True)
    watcher.start()
    try:
        yield run
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        run._halt.set()
        watcher.join(timeout=5)
        # A test that failed early must not leave tools or targets running either.
        for child in run.seen.values():
            if alive(child):
                child.kill()


def run_dirs(reports: Path) -> list[Path]:
    """The run folders in a report root (not the ``latest`` link)."""
    if not reports.is_dir():
        return []
    return sorted(d for d in reports.iterdir() if d.is_dir() and not d.is_symlink())


def partial_files(folder: Path) -> list[str]:
    """Temporary files and empty reports: what a write cut short would leave."""
    bad = []
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix in {".log", ".txt"}:
            continue  # a tool's log may well be empty
        if ".tmp" in path.name or path.stat().st_size == 0:
            bad.append(str(path.relative_to(folder)))
    return bad
