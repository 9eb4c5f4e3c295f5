"""Test helpers for sharded k6 runs: read raw k6 outputs independently of the parser, and
start/stop helper processes (agents) that announce their address on stdout."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from orchestrator import histogram as hdr


@dataclass
class RawSamples:
    """Every http_req_duration of some raw k6 outputs, read with plain json (not stream.py)."""

    overall: HdrHistogram = field(default_factory=hdr.new_histogram)
    per_second: dict[int, HdrHistogram] = field(default_factory=dict)
    requests: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    count: int = 0
    first_second: int = 0  # of any sample (requests or the VU gauge): the series' t=0


def read_samples(paths: Sequence[Path]) -> RawSamples:
    samples = RawSamples()
    seconds: set[int] = set()
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                obj: dict[str, Any] = json.loads(line)
                if obj.get("type") != "Point" or obj["metric"] not in ("http_req_duration", "vus"):
                    continue
                data = obj["data"]
                second = int(datetime.fromisoformat(data["time"]).timestamp())
                seconds.add(second)
                if obj["metric"] == "vus":
                    continue
                samples.requests[second] += 1
                samples.count += 1
                if data["tags"].get("status", "0") in ("", "0"):
                    continue  # no response: an error, not a latency
                value_us = min(max(round(data["value"] * 1000), hdr.LOWEST_US), hdr.HIGHEST_US)
                samples.overall.record_value(value_us)
                samples.per_second.setdefault(second, hdr.new_histogram()).record_value(value_us)
    samples.first_second = min(seconds) if seconds else 0
    return samples


def ms(histogram: HdrHistogram, pct: float) -> float:
    return float(histogram.get_value_at_percentile(pct)) / 1000.0


@contextmanager
def announced(argv: Sequence[str], pattern: str, timeout: float = 30.0) -> Iterator[re.Match[str]]:
    """Start ``argv`` in its own session; yield the stdout line matching ``pattern``; stop it
    (SIGTERM, then SIGKILL) and check that none of its processes is left."""
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    match = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                break
        if match is None:
            raise RuntimeError(f"{argv[0]} did not announce itself:\n{''.join(seen)}")
        yield match
    finally:
        stop_group(proc)
        proc.stdout.close()


def stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the process's group, SIGKILL what is left; assert nothing survives."""
    try:
        members = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        members = [proc.pid]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue
        break
    proc.wait(timeout=10)
    time.sleep(0.2)
    alive = [p for p in members if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert not alive, f"processes left behind: {alive}"
