"""The one place that starts load tools.

Every tool runs from a list argv (no shell ever sees user text), in its own process
group, with its output teed live to the console and to a log file, under a hard timeout.
Ctrl-C (or SIGTERM, SIGHUP: :mod:`orchestrator.interrupts`) or the timeout stops the whole
group: interrupt (so the tool can write what it has), then terminate, then kill.

subprocess-tee is used for short set-up commands (``npm ci``); it cannot start a process
group, ignores ``timeout=`` and does not expose the pid the samplers need, so load tools
are launched here with :class:`subprocess.Popen`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from orchestrator import interrupts
from orchestrator.errors import ReportError, ToolError, ToolNotFoundError

LOG = logging.getLogger(__name__)

# How long each escalation step waits for the group to exit.
INTERRUPT_GRACE = 8.0
TERMINATE_GRACE = 3.0
TAIL_LINES = 40

OutputSink = Callable[[str], None]


def write_to_stderr(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


@dataclass
class ToolRun:
    """What happened to one tool process."""

    argv: list[str]
    returncode: int | None
    started: datetime
    ended: datetime
    log_path: Path
    interrupted: bool = False
    timed_out: bool = False
    pid: int | None = None
    tail: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return (self.ended - self.started).total_seconds()

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.interrupted and not self.timed_out

    def describe_failure(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.timed_out:
            return "timed out and was stopped"
        if self.returncode is not None and self.returncode < 0:
            # Killed from outside (kill -9, the OOM killer): its last line says nothing.
            return f"was killed by {signal_name(-self.returncode)}"
        last = next((line for line in reversed(self.tail) if line.strip()), "")
        detail = f": {last.strip()[:300]}" if last else ""
        return f"exited with code {self.returncode}{detail}"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def resolve_executable(name: str, install_hint: str) -> str:
    """Absolute path of ``name`` (a path or a command on PATH), or one clear error."""
    if os.sep in name:
        if Path(name).is_file() and os.access(name, os.X_OK):
            return name
    else:
        found = shutil.which(name)
        if found:
            return found
    tool = Path(name).name
    raise ToolNotFoundError(f"{tool} not found: {install_hint}")


class _Pump(threading.Thread):
    """Copies a child's output to the log file and the sink, keeping a tail."""

    def __init__(self, stream: IO[bytes], log: IO[bytes], sink: OutputSink | None) -> None:
        super().__init__(daemon=True, name="tool-output")
        self.stream = stream
        self.log = log
        self.sink = sink
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.log_error: OSError | None = None
        self._partial = ""

    def run(self) -> None:
        fd = self.stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self._write_log(chunk)
            text = chunk.decode("utf-8", errors="replace")
            if self.sink is not None:
                try:
                    self.sink(text)
                except Exception:
                    # A broken display must not stop the pump: the tool would block on
                    # a full pipe. The log file still gets everything.
                    LOG.exception("live output display failed; output goes to the log only")
                    self.sink = None
            self._keep_tail(text)
        if self._partial:
            self.tail.append(self._partial)

    def _write_log(self, chunk: bytes) -> None:
        if self.log_error is not None:
            return
        try:
            self.log.write(chunk)
            self.log.flush()
        except OSError as exc:
            # A full disk must not stop the pump: the tool would block on a full pipe and
            # lose its run. The tail and the live display still get the output.
            self.log_error = exc
            LOG.debug("tool log not written any further: %s", exc)

    def _keep_tail(self, text: str) -> None:
        lines = (self._partial + text).replace("\r", "\n").split("\n")
        self._partial = lines.pop()
        self.tail.extend(line for line in lines if line.strip())


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process_group(
    proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGINT
) -> None:
    """Interrupt, then terminate, then kill the whole group until it is gone."""
    pgid = proc.pid
    for sig, grace in (
        (first, INTERRUPT_GRACE),
        (signal.SIGTERM, TERMINATE_GRACE),
        (signal.SIGKILL, TERMINATE_GRACE),
    ):
        _signal_group(pgid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                return
            time.sleep(0.05)
        LOG.debug("process group %s still alive after %s", pgid, sig.name)
    proc.poll()


class RunningTool:
    """A tool started in its own process group, not yet waited for.

    For runs that start several tools and release them together (k6 shards): each is
    started, then :meth:`wait`-ed with its own deadline; :meth:`stop` interrupts one from
    another thread (e.g. on Ctrl-C in the main thread) with the same escalation as a timeout.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        sink: OutputSink | None = write_to_stderr,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        full_env = dict(os.environ if env is None else env)
        self.started = datetime.now(UTC)
        self.interrupted = False
        self.timed_out = False
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = log_path.open("wb")
        except OSError as exc:
            raise ReportError(f"cannot write {log_path}: {exc.strerror or exc}") from exc
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.close()
            name = Path(self.argv[0]).name
            raise ToolError(f"cannot start {name}: {exc.strerror or exc}") from exc
        assert self.proc.stdout is not None
        self._pump = _Pump(self.proc.stdout, self._log, sink)
        self._pump.start()
        self._finished: ToolRun | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Interrupt the group (then terminate, then kill); a run still going when asked
        counts as interrupted."""
        if self.proc.poll() is None:
            self.interrupted = True
            stop_process_group(self.proc)

    def wait(self, timeout: float) -> ToolRun:
        """Wait up to ``timeout`` s; past it, stop the group. Ctrl-C stops it too and is
        reported as ``interrupted``, not raised."""
        name = Path(self.argv[0]).name
        try:
            self.proc.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            self.timed_out = True
            LOG.warning("%s ran past its %.0f s limit; stopping it", name, timeout)
            stop_process_group(self.proc)
        except KeyboardInterrupt:
            self.interrupted = True
            # Bounded (interrupt, terminate, kill): a second signal must not cut the tool
            # off before it has written what it measured.
            with interrupts.shielded():
                stop_process_group(self.proc)
        return self.finish()

    def finish(self) -> ToolRun:
        """Make sure the group is gone, close the log; the run (once, then the same)."""
        with self._lock:
            if self._finished is not None:
                return self._finished
            proc = self.proc
            if proc.poll() is None:
                stop_process_group(proc, signal.SIGKILL)
            elif _group_alive(proc.pid):
                # The tool exited but left children in its group: they go too.
                stop_process_group(proc, signal.SIGTERM)
            self._pump.join(timeout=5)
            assert proc.stdout is not None
            proc.stdout.close()
            self._log.close()
            self._finished = ToolRun(
                argv=self.argv,
                returncode=proc.returncode,
                started=self.started,
                ended=datetime.now(UTC),
                log_path=self.log_path,
                interrupted=self.interrupted,
                timed_out=self.timed_out,
                pid=proc.pid,
                tail=list(self._pump.tail),
            )
            return self._finished


def start_tool(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    sink: OutputSink | None = write_to_stderr,
) -> RunningTool:
    """Start a tool in its own process group and return at once (see :class:`RunningTool`)."""
    return RunningTool(argv, log_path=log_path, env=env, cwd=cwd, sink=sink)


def run_tool(
    argv: Sequence[str],
    *,
    timeout: float,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    sink: OutputSink | None = write_to_stderr,
    on_start: Callable[[int], None] | None = None,
) -> ToolRun:
    """Run one tool to completion, timeout or Ctrl-C; never raises for the tool's own failure.

    A ``KeyboardInterrupt`` stops the tool's group and is reported as ``interrupted`` in the
    returned run; the caller decides whether to re-raise after saving what was measured.
    """
    tool = start_tool(argv, log_path=log_path, env=env, cwd=cwd, sink=sink)
    try:
        if on_start is not None:
            on_start(tool.pid)
        return tool.wait(timeout)
    except KeyboardInterrupt:
        # Ctrl-C inside on_start: the tool goes, the run says so.
        tool.stop()
        return tool.finish()
    finally:
        tool.finish()
