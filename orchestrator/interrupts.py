"""SIGINT, SIGTERM and SIGHUP all stop a run the same way: as Ctrl-C does.

CI runners and ``timeout`` send SIGTERM, a closed terminal SIGHUP. Python's default for
those is to die on the spot: no result, a started target left running, the private temp
folder with secrets left on disk. During a run (:func:`interruptible`) each of the three
signals raises :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread, so one
path handles all of them: :func:`orchestrator.process.run_tool` stops the tool's process
group, the result keeps what was measured, the target and the private folder are cleaned
up, the report is written and the exit code is 130 (whichever signal it was).

While what must finish runs (:func:`shielded`: stopping the tool's group, stopping a target
we started, writing the report; each bounded) a signal is noted, not raised: a second Ctrl-C
must not leave a process behind or cut ``summary.json`` in half. After the first signal of
a run, later ones are only noted wherever they land: the run is already stopping, and
everything left (stopping, parsing, saving, writing the report) is bounded. The exit code
stays what the run decided (130 if the first signal interrupted it).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

LOG = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A run stopped by a signal; handled wherever Ctrl-C's KeyboardInterrupt is."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


class _State:
    received: list[str]
    shield_depth: int
    noted: bool  # the "finishing the clean-up first" line was shown (once is enough)

    def __init__(self) -> None:
        self.received = []
        self.shield_depth = 0
        self.noted = False


_STATE = _State()


def last_signal() -> str | None:
    """Name of the last stopping signal received during a run (e.g. ``SIGTERM``)."""
    return _STATE.received[-1] if _STATE.received else None


def describe() -> str:
    """How the run was stopped, for a result's detail and the console line."""
    name = last_signal()
    if name is None or name == "SIGINT":
        return "Ctrl-C"
    return name


def _on_signal(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    _STATE.received.append(name)
    # Only the first signal interrupts: between the shielded steps (parsing what the tool
    # wrote, saving result.json) a second one would otherwise lose the measured result.
    if _STATE.shield_depth or len(_STATE.received) > 1:
        if not _STATE.noted:
            _STATE.noted = True
            print(f"orchestrate: {name}: finishing the clean-up first", file=sys.stderr, flush=True)
        return
    raise Interrupted(name)


@contextmanager
def interruptible() -> Iterator[None]:
    """While inside: SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`.

    Only the main thread may install signal handlers; elsewhere (a library caller's worker
    thread) this does nothing and the process keeps its own handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _STATE.received.clear()
    _STATE.noted = False
    previous = {sig: signal.signal(sig, _on_signal) for sig in HANDLED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            # None: a handler installed from C; the default is the closest we can restore.
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextmanager
def shielded() -> Iterator[None]:
    """While inside: a stopping signal is noted and reported, not raised.

    Used around what must finish once started and is bounded in time: stopping the tool
    or the target (interrupt, terminate, kill), writing the report.
    """
    _STATE.shield_depth += 1
    try:
        yield
    finally:
        _STATE.shield_depth -= 1
