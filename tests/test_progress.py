"""The live progress line: figures read from the tools' per-second lines."""

from __future__ import annotations

import io

import pytest

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


def test_the_line_never_counts_past_the_plan_and_fits_the_width() -> None:
    progress = Progress("ws-smoke", 20.0, rss=lambda: 37_600_000, stream=_Plain())
    progress.started -= 25.0  # the tool is draining 5 s past the plan
    progress.feed("  1s: 16 req/s, 0 failed, p95 1.25 ms\n")
    status = progress.status()
    assert "20/20 s, finishing" in status
    assert "25/20" not in status
    narrow = progress.status(width=79)
    assert len(narrow) == 79
    assert narrow.endswith("…")


def test_piped_tables_keep_whole_paths(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.tools import ToolStatus
    from reports.console import print_doctor

    path = "/very/long/" + "nested/" * 20 + "bin/k6"
    print_doctor([ToolStatus("k6", path, "1.1.0", True)], needed=set())
    out = capsys.readouterr().out
    assert "…" not in out
    assert path.replace("/", "") in out.replace("\n", "").replace("│", "").replace(" ", "").replace(
        "/", ""
    )
