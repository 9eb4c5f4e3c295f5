"""The live progress line: figures read from the tools' per-second lines."""

from __future__ import annotations

import io

from orchestrator.progress import Progress


class _Plain(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_figures_come_from_per_second_lines() -> None:
    stream = _Plain()
    progress = Progress("normal", 10.0, rss=lambda: 42_000_000, stream=stream, log_every=60)
    progress.feed("step 1/1: 10 connections for 10s\n  1s: 1200 req/s, 3 failed, p95 ")
    progress.feed("4.50 ms\n  2s: 1300 req/s, 2 failed\n")
    status = progress.status()
    assert "1,300 req/s" in status
    assert "5 failed" in status  # failures add up over the seconds
    assert "p95" not in status  # the last second gave no p95: none is invented
    assert "target RSS 42.0 MB" in status


def test_plain_mode_writes_whole_lines_and_a_final_one() -> None:
    stream = _Plain()
    with Progress("ws", 5.0, stream=stream, log_every=60) as progress:
        progress.feed("  worker 1: 95 req/s, 0 failed, p95 2.30 ms\n")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # no tick within 60 s: only the final line
    assert lines[0].startswith("ws [")
    assert "95 req/s, 0 failed, p95 2.30 ms" in lines[0]
    assert "\r" not in stream.getvalue()


def test_a_tool_without_figures_shows_its_last_line() -> None:
    progress = Progress("k6", 5.0, stream=_Plain())
    progress.feed("running (0m02.0s), 3/3 VUs, 120 complete and 0 interrupted iterations\n")
    assert "3/3 VUs" in progress.status()
