"""Read k6's raw output while k6 writes it, so the numbers are ready when k6 exits.

k6 writes ~13 lines per request; read after the run, a 5 s run at 3,000 req/s keeps
orchestrate busy for a quarter of a second more (and a minute-long run for seconds) before
it can say anything. A :class:`LiveTail` follows the file from a thread while the run goes,
through the very parser :func:`.stream.read_raw` uses, but only with CPU the load leaves
spare: every CPU-second it takes from k6 or the target on the same machine is throughput
the run does not measure. A low thread priority is not enough for that: with the kernel's
autogroups (one scheduling group per session) nice and SCHED_IDLE only rank threads of
one session, and k6 and the target run in sessions of their own (measured: a busy Python
thread at nice 19 took k6 from 31,000 to 18,500 req/s against a local server, as much as
at nice 0). So the tail looks at the machine: while less than :data:`SPARE_CORES` of a
core is spare it lets the output pile up, and parses only what keeps the backlog within
:data:`MAX_BACKLOG_S` of its own CPU (what is left for after k6 exits).

The file itself is unchanged, and it stays the record: whenever the tail did not read a
clean, complete stream (a cut or corrupt file, a bad line, an interrupted run, any
surprise), :meth:`LiveTail.finish` returns None and the caller reads the file again with
:func:`.stream.read_raw`, whose errors and partial results are the reference.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import psutil
from isal import isal_zlib

from orchestrator.engines.k6.rawfile import GZIP_MAGIC, gunzip
from orchestrator.engines.k6.stream import StreamReader, Tally
from orchestrator.engines.k6.stream import _LineParser as LineParser

LOG = logging.getLogger(__name__)

POLL_S = 0.25
# Bytes parsed per step (~3 ms of CPU), read or decompressed.
STEP_BYTES = 256 << 10
# Lowest scheduling priority for the tail's thread (Linux applies nice per thread; it
# ranks the thread among orchestrate's own, see above for why that is not enough).
NICE = 19
# Parse as the output comes while at least this much of a core was spare since the last
# look (see spare_cores).
SPARE_CORES = 0.5
# Otherwise let the output pile up, to at most this many seconds of the tail's CPU.
MAX_BACKLOG_S = 2.0
# Bytes of raw output (as written: gzip) parsed per CPU-second until the tail has timed
# itself (k6 1.1.0's output: ~13 MB/s on a 2024 server core, ~4 on a slow day).
ASSUMED_RATE = 4e6


class LiveTail:
    """Follows one raw k6 output file (gzip or plain NDJSON) from a background thread."""

    def __init__(
        self,
        path: Path,
        lifetime: float,
        poll: float = POLL_S,
        spare: Callable[[], float | None] | None = None,
        max_backlog_s: float = MAX_BACKLOG_S,
    ) -> None:
        """``lifetime``: seconds after which the thread stops following by itself (a run
        that never came to :meth:`finish`; the k6 run's own timeout bounds a real one).
        ``spare``: idle cores since its last call, None when unknown (then: parse)."""
        self.path = path
        self.poll = poll
        self.spare = spare or IdleCores()
        self.max_backlog_s = max_backlog_s
        self._parsed = 0  # bytes read from the file ...
        self._parse_cpu = 0.0  # ... and the tail's CPU-seconds for them
        self._deadline = time.monotonic() + lifetime
        self.reader = StreamReader()
        self._parser = LineParser(path, self.reader)
        self._handle: BinaryIO | None = None
        self._head = b""  # the first bytes, until the format is known
        self._inflate: isal_zlib.Decompress | None = None
        self._gzip: bool | None = None
        self._rest = b""
        self._failed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"k6-tail-{path.name}")
        self._thread.daemon = True

    @property
    def parsed_bytes(self) -> int:
        """Bytes of the file parsed so far."""
        return self._parsed

    def start(self) -> LiveTail:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (the run is over, or will not happen); idempotent."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self) -> Tally | None:
        """After k6 exited: read what is left; the tally of a clean, complete stream, else
        None (read the file again with :func:`.stream.read_raw`)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self._pump()
            tally = self._complete()
        except Exception as exc:
            # Never a lost result: the file is read again the ordinary way.
            LOG.debug("live read of %s gave up: %s", self.path, exc)
            tally = None
        finally:
            self.stop()
        return tally

    def _follow(self) -> None:
        _lower_priority()
        self.spare()  # the first look starts its clock
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                self._pump(self._budget())
            except Exception as exc:
                self._failed = f"{type(exc).__name__}: {exc}"
            if self._failed is not None:
                return
            self._stop.wait(self.poll)

    def _budget(self) -> int:
        """Bytes to parse now: with CPU to spare, about a poll's worth of parsing; else what
        brings the backlog down to :attr:`max_backlog_s` of parsing (maybe 0; 0 too while
        the file is not there)."""
        idle = self.spare()
        handle = self._open()
        if handle is None:
            return 0
        rate = self._parsed / self._parse_cpu if self._parse_cpu > 0.05 else ASSUMED_RATE
        if idle is None or idle >= SPARE_CORES:
            # At most one poll's worth of CPU before the next look: a load that comes
            # back finds the tail gone again within a poll.
            return max(1, int(rate * self.poll))
        backlog = os.fstat(handle.fileno()).st_size - self._parsed
        return max(0, backlog - int(rate * self.max_backlog_s))

    def _pump(self, budget: int | None = None) -> None:
        """Parse what k6 has written since the last call (at most ``budget`` bytes)."""
        handle = None if self._failed is not None or budget == 0 else self._open()
        if handle is None:
            return
        started = time.thread_time()
        try:
            while budget is None or budget > 0:
                size = STEP_BYTES if budget is None else min(STEP_BYTES, budget)
                data = handle.read(size)
                if not data:
                    return
                self._parsed += len(data)
                if budget is not None:
                    budget -= len(data)
                self._feed(data)
                if self._failed is not None:
                    return
                time.sleep(0)
        finally:
            self._parse_cpu += time.thread_time() - started

    def _open(self) -> BinaryIO | None:
        """The file, opened once; None until k6 has created it."""
        if self._handle is None:
            try:
                self._handle = self.path.open("rb", buffering=0)
            except FileNotFoundError:
                return None
        return self._handle

    def _feed(self, data: bytes) -> None:
        if self._gzip is None:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC):
                return
            data, self._head = self._head, b""
            self._gzip = data.startswith(GZIP_MAGIC)
            if self._gzip:
                self._inflate = gunzip()
        inflate = self._inflate
        if inflate is None:
            self._lines(data)
            return
        # In steps of a few ms of work, the GIL let go in between: the samplers and the
        # tool's output reader are never kept waiting by this low-priority thread for long.
        while True:
            if inflate.eof:
                self._failed = "data after the end of the gzip stream"
                return
            out = inflate.decompress(data, STEP_BYTES)
            data = inflate.unconsumed_tail
            if inflate.unused_data:
                self._failed = "more than one gzip member"
                return
            self._lines(out)
            if self._failed is not None or (not data and len(out) < STEP_BYTES):
                return
            time.sleep(0)

    def _lines(self, data: bytes) -> None:
        """Parse the whole lines; keep a last partial line for the next call."""
        data = self._rest + data
        cut = data.rfind(b"\n") + 1
        self._rest = data[cut:]
        if cut:
            self._parser.feed(data[:cut])

    def _complete(self) -> Tally | None:
        if self._failed is not None:
            LOG.debug("live read of %s stopped: %s", self.path, self._failed)
            return None
        if self._gzip is None or (self._inflate is not None and not self._inflate.eof):
            return None  # empty, or a gzip stream cut short
        if self._rest.strip():
            self._parser.feed(self._rest)
            self._rest = b""
        if self._parser.pending is not None or self.reader.tally.lines == 0:
            return None
        return self.reader.finish()


def spare_cores(idle: float, own: float, seconds: float) -> float:
    """Cores spare over ``seconds``: idle CPU-seconds plus the caller's own, the latter only
    up to as much as was idle. Counting all of its own would keep a tail that competes
    with a load for the CPUs busy (what it got would look spare); counting none would
    make a tail on a machine with CPU to spare stop every other look."""
    return (idle + min(own, idle)) / seconds


class IdleCores:
    """Cores spare since the last call (see :func:`spare_cores`; the calling thread's CPU is
    its own): None the first time, or where the OS does not say."""

    def __init__(self) -> None:
        self._last: tuple[float, float, float] | None = None

    def __call__(self) -> float | None:
        try:
            times = psutil.cpu_times()
        except (psutil.Error, OSError):  # pragma: no cover - psutil knows every OS we run on
            return None
        idle = times.idle + getattr(times, "iowait", 0.0)
        now = (time.monotonic(), idle, time.thread_time())
        last, self._last = self._last, now
        if last is None or now[0] <= last[0]:
            return None
        return spare_cores(now[1] - last[1], now[2] - last[2], now[0] - last[0])


def _lower_priority() -> None:
    """Lowest CPU priority for the calling thread, where the OS keeps nice per thread."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
    except OSError as exc:
        LOG.debug("could not lower the tail's priority: %s", exc)
