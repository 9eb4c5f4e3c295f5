"""k6's raw output read while k6 writes it (orchestrator.engines.k6.tail).

The live read must give exactly the tally the file gives when read afterwards, and step
aside (None: the caller reads the file) whenever the stream is not clean and complete.
Fixtures are real k6 1.1.0 outputs; the last test follows a real k6 run.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from orchestrator import histogram as hdr
from orchestrator import process
from orchestrator.engines import k6
from orchestrator.engines.k6.stream import Tally, read_raw
from orchestrator.engines.k6.tail import IdleCores, LiveTail, spare_cores
from orchestrator.scenarios import Endpoint, LoadShape, Scenario

FIXTURES = Path(__file__).parent / "fixtures" / "k6"


def comparable(value: Any) -> Any:
    """A tally's field with its histograms encoded (an HdrHistogram compares by identity)."""
    if isinstance(value, HdrHistogram):
        return hdr.encode(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: comparable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    return value


def same_tally(a: Tally, b: Tally) -> None:
    for item in dataclasses.fields(Tally):
        left, right = getattr(a, item.name), getattr(b, item.name)
        assert comparable(left) == comparable(right), item.name


def write_slowly(path: Path, data: bytes, pieces: int) -> None:
    """Append ``data`` in uneven pieces with pauses, as k6 flushes its output."""
    size = max(1, len(data) // pieces)
    with path.open("wb") as handle:
        for start in range(0, len(data), size):
            handle.write(data[start : start + size])
            handle.flush()
            time.sleep(0.02)


@pytest.mark.parametrize("name", ["http_ok.json.gz", "http_500.json.gz", "ws.json.gz"])
@pytest.mark.parametrize("compressed", [True, False])
def test_a_file_followed_while_written_gives_the_tally_of_the_whole_file(
    tmp_path: Path, name: str, compressed: bool
) -> None:
    data = (FIXTURES / name).read_bytes()
    if not compressed:
        data = gzip.decompress(data)
    path = tmp_path / ("raw.json.gz" if compressed else "raw.json")
    tail = LiveTail(path, lifetime=60, poll=0.01).start()
    time.sleep(0.05)  # the file does not exist yet: the tail waits for it
    write_slowly(path, data, pieces=37)
    live = tail.finish()
    assert live is not None
    assert live.total > 0
    same_tally(live, read_raw(path))


def wait_for(condition: Any, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_with_cpu_to_spare_the_output_is_parsed_while_it_is_written(tmp_path: Path) -> None:
    data = (FIXTURES / "http_ok.json.gz").read_bytes()
    path = tmp_path / "raw.json.gz"
    tail = LiveTail(path, lifetime=60, poll=0.01, spare=lambda: 2.0).start()
    write_slowly(path, data, pieces=5)
    assert wait_for(lambda: tail.parsed_bytes == len(data))  # before finish()
    live = tail.finish()
    assert live is not None
    same_tally(live, read_raw(path))


def test_on_a_busy_machine_the_output_waits_for_the_end_of_the_run(tmp_path: Path) -> None:
    path = tmp_path / "raw.json.gz"
    path.write_bytes((FIXTURES / "http_ok.json.gz").read_bytes())
    polls: list[None] = []

    def no_spare_cpu() -> float:
        polls.append(None)
        return 0.0

    tail = LiveTail(path, lifetime=60, poll=0.01, spare=no_spare_cpu).start()
    # No look sees spare CPU, and the backlog is well within its bound: nothing is parsed.
    assert wait_for(lambda: len(polls) >= 5)
    assert tail.parsed_bytes == 0
    live = tail.finish()
    assert live is not None and live.total > 0
    same_tally(live, read_raw(path))


def test_on_a_busy_machine_the_backlog_stays_within_its_bound(tmp_path: Path) -> None:
    data = (FIXTURES / "http_ok.json.gz").read_bytes()
    path = tmp_path / "raw.json.gz"
    # A bound of about 1 KB of output at the assumed rate: the rest is parsed even though
    # the CPU is never spare.
    tail = LiveTail(path, lifetime=60, poll=0.01, spare=lambda: 0.0, max_backlog_s=2.5e-4)
    tail.start()
    write_slowly(path, data, pieces=5)
    assert wait_for(lambda: tail.parsed_bytes >= len(data) - 1000)
    assert tail.parsed_bytes < len(data)
    live = tail.finish()
    assert live is not None
    same_tally(live, read_raw(path))


def test_spare_cpu_counts_the_tails_own_only_up_to_what_was_idle() -> None:
    # A machine the load keeps busy: what the tail got while competing is not spare.
    assert spare_cores(idle=0.0, own=0.8, seconds=1.0) == 0.0
    # A machine with a core to spare: the tail's own use counts (it would be idle).
    assert spare_cores(idle=0.7, own=0.8, seconds=1.0) == pytest.approx(1.4)
    assert spare_cores(idle=1.0, own=0.0, seconds=2.0) == pytest.approx(0.5)


def test_idle_cores_reads_the_machine() -> None:
    cores = IdleCores()
    assert cores() is None  # no interval yet
    time.sleep(0.3)
    spare = cores()
    assert spare is not None
    # The OS counts idle time in ticks (10 ms a core): a little slack above.
    assert 0.0 <= spare <= (os.cpu_count() or 1) + 0.25


def test_a_cut_gzip_is_left_to_the_ordinary_read(tmp_path: Path) -> None:
    data = (FIXTURES / "http_ok.json.gz").read_bytes()
    path = tmp_path / "raw.json.gz"
    path.write_bytes(data[: len(data) // 2])
    assert LiveTail(path, lifetime=60, poll=0.01).start().finish() is None


def test_a_bad_line_is_left_to_the_ordinary_read(tmp_path: Path) -> None:
    lines = gzip.decompress((FIXTURES / "http_ok.json.gz").read_bytes()).splitlines(True)
    path = tmp_path / "raw.json"
    path.write_bytes(b"".join([*lines[:40], b"this is not json\n", *lines[40:]]))
    assert LiveTail(path, lifetime=60, poll=0.01).start().finish() is None


def test_a_last_line_cut_short_is_left_to_the_ordinary_read(tmp_path: Path) -> None:
    text = gzip.decompress((FIXTURES / "http_ok.json.gz").read_bytes())
    path = tmp_path / "raw.json"
    path.write_bytes(text[: text.rindex(b'{"metric":"http_req_duration"') + 60])
    assert LiveTail(path, lifetime=60, poll=0.01).start().finish() is None


def test_no_file_is_no_tally(tmp_path: Path) -> None:
    tail = LiveTail(tmp_path / "never.json.gz", lifetime=60, poll=0.01).start()
    assert tail.finish() is None


def test_a_tail_never_finished_stops_by_itself(tmp_path: Path) -> None:
    tail = LiveTail(tmp_path / "never.json.gz", lifetime=0.1, poll=0.01).start()
    tail._thread.join(timeout=5)
    assert not tail._thread.is_alive()


@pytest.mark.load
def test_a_real_k6_run_is_read_while_it_runs(reference_target: Any, tmp_path: Path) -> None:
    scenario = Scenario(
        name="tail",
        base_url=reference_target.url,
        endpoints=[Endpoint(path="/health")],
        shape=LoadShape.constant(4, 2),
    )
    invocation = k6.prepare(scenario, tmp_path)
    run = process.run_tool(
        invocation.argv,
        timeout=invocation.timeout,
        log_path=tmp_path / "tool.log",
        env={**os.environ, **invocation.env},
        cwd=tmp_path,
        sink=None,
    )
    assert run.ok
    tail = k6._TAILS.pop(invocation.output_path)
    live = tail.finish()
    assert live is not None and live.total > 0
    same_tally(live, read_raw(invocation.output_path))
    # Only the tags the parser reads are written (k6 writes ~13 lines per request).
    text = gzip.decompress(invocation.output_path.read_bytes()).decode()
    assert '"name":"GET /health"' in text
    assert '"scenario":' not in text and '"method":' not in text
    assert '"expected_response":' not in text
