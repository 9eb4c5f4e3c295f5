"""Live progress while a scenario runs.

On a terminal: one status line redrawn in place (elapsed / total, a bar, live figures).
Elsewhere (CI logs): a plain line every ``log_every`` seconds. Figures come from the
tool's own per-second lines (``12s: 3456 req/s, 0 failed, p95 1.23 ms`` from our autocannon
runner) and from the target sampler; a tool that prints none shows its last output line.
The tool's full output always goes to ``tool.log`` in the report directory.
"""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24


def say(message: str) -> None:
    """A note for the person watching (stderr, so stdout stays the result)."""
    print(message, file=sys.stderr, flush=True)


_FIGURES = re.compile(r"(?P<rps>[\d.]+) req/s, (?P<failed>\d+) failed(?:, p95 (?P<p95>[\d.]+) ms)?")


class Progress:
    """A sink for tool output (``feed``) that renders progress instead of the raw text."""

    def __init__(
        self,
        label: str,
        total_seconds: float,
        rss: Callable[[], int | None] = lambda: None,
        stream: TextIO | None = None,
        log_every: float = 10.0,
        rate_unit: str = "req/s",
    ) -> None:
        self.label = label
        self.total = max(total_seconds, 0.001)
        self.rss = rss
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every = log_every
        # What the tool's "req/s" counts: messages for WebSocket, transactions for a database.
        self.rate_unit = rate_unit
        self.done = False
        self.started = time.monotonic()
        self.figures = ""
        self.last_line = ""
        self.failed_total = 0
        self._partial = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.done = True
        self._render(final=True)

    def feed(self, text: str) -> None:
        lines = (self._partial + text).replace("\r", "\n").split("\n")
        self._partial = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            self.last_line = line.strip()[:80]
            match = _FIGURES.search(line)
            if match:
                self.failed_total += int(match.group("failed"))
                p95 = match.group("p95")
                self.figures = (
                    f"{float(match.group('rps')):,.0f} {self.rate_unit}, "
                    f"{self.failed_total:,} failed" + (f", p95 {float(p95):.2f} ms" if p95 else "")
                )

    def status(self, width: int | None = None) -> str:
        """The progress line, cut to ``width`` columns (a redrawn line must not wrap)."""
        elapsed = time.monotonic() - self.started
        share = min(elapsed / self.total, 1.0)
        filled = round(share * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        rss = self.rss()
        # Past the plan the tool is draining or writing its output: never count past it.
        if elapsed <= self.total and not self.done:
            clock = f"{elapsed:5.0f}/{self.total:.0f} s"
        else:
            state = "done" if self.done else "finishing"
            clock = f"{self.total:5.0f}/{self.total:.0f} s, {state}"
        parts = [f"{self.label} [{bar}] {clock}"]
        parts.append(self.figures or self.last_line)
        if rss is not None:
            parts.append(f"target RSS {rss / 1e6:,.1f} MB")
        line = " | ".join(p for p in parts if p)
        if width is not None and len(line) > width:
            line = line[: max(width - 1, 0)] + "…"
        return line

    def _loop(self) -> None:
        interval = 0.5 if self.tty else self.log_every
        while not self._stop.wait(interval):
            self._render()

    def _render(self, final: bool = False) -> None:
        if self.tty:
            line = self.status(shutil.get_terminal_size().columns - 1)
            self.stream.write("\r\x1b[2K" + line + ("\n" if final else ""))
        else:
            self.stream.write(self.status() + "\n")
        self.stream.flush()
