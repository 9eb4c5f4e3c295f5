"""pgbench's per-transaction logs (``-l``), streamed: a run's logs can hold millions of lines.

One file per pgbench thread, one line per transaction, in the order they ended:
``client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]``.
``time`` is the latency in µs or, for a failed transaction (pgbench 15+), ``failed``,
``serialization`` or ``deadlock`` (``skipped`` with --latency-limit); ``time_epoch`` and
``time_us`` say when it ended. Latencies are tallied as (µs value -> count) and turned into
HdrHistograms per second and per step, so every percentile is exact.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import histogram as hist
from orchestrator.errors import ParseError
from orchestrator.models import TimeBucket

_FAILED_KINDS = {
    "failed": "sql_failed",
    "serialization": "serialization_failure",
    "deadlock": "deadlock",
    "skipped": "skipped",
}


Record = tuple[int, int | None, str | None]  # (ended at µs since epoch, latency µs, failure)


def parse_log_line(line: str) -> Record:
    """One log line; ValueError/IndexError when it is not one."""
    fields = line.split()
    ended = int(fields[4]) * 1_000_000 + int(fields[5])
    int(fields[0])
    if fields[2].isdigit():
        return ended, int(fields[2]), None
    return ended, None, _FAILED_KINDS[fields[2]]


def iter_log(path: Path, tolerate_cut: bool) -> Iterator[Record]:
    """A log's transactions; a malformed line is a ParseError naming the file and line,
    except a last line cut short when the run was stopped (``tolerate_cut``)."""
    bad: tuple[int, str] | None = None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if bad is not None:
                raise ParseError(str(path), f"line {bad[0]}", f"not a pgbench log line: {bad[1]!r}")
            try:
                yield parse_log_line(line)
            except (ValueError, IndexError, KeyError):
                bad = (number, line.strip()[:80])
    if bad is not None and not tolerate_cut:
        raise ParseError(str(path), f"line {bad[0]}", f"cut short: {bad[1]!r}")


@dataclass
class StepTally:
    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    latencies: Counter[int] = field(default_factory=Counter)


@dataclass
class SecondsBuilder:
    """Per-second buckets from transactions in time order; one open second at a time."""

    origin_us: int
    buckets: list[TimeBucket] = field(default_factory=list)
    t: int | None = None
    latencies: Counter[int] = field(default_factory=Counter)
    requests: int = 0
    errors: int = 0
    concurrency: int = 0

    def add(self, record: Record, clients: int) -> None:
        ended, latency, _ = record
        t = max(0, (ended - self.origin_us) // 1_000_000)
        if self.t is None or t > self.t:
            self.flush()
            self.t = t
        # A transaction ending out of order (threads' logs interleave) joins the open second.
        self.concurrency = max(self.concurrency, clients)
        self.requests += 1
        if latency is None:
            self.errors += 1
        else:
            self.latencies[latency] += 1

    def flush(self) -> None:
        if self.t is None:
            return
        self.buckets.append(
            hist.time_bucket(
                float(self.t),
                requests=self.requests,
                errors=self.errors,
                concurrency=self.concurrency,
                histogram=hist.from_buckets(self.latencies.items()),
            )
        )
        self.t, self.latencies, self.requests, self.errors, self.concurrency = (
            None,
            Counter(),
            0,
            0,
            0,
        )


def tally_step(
    folder: Path, log_files: list[str], clients: int, seconds: SecondsBuilder, tolerate_cut: bool
) -> StepTally:
    """Stream the step's logs (merged in time order) into its tally and the per-second buckets."""
    tally = StepTally()
    streams = [iter_log(folder / name, tolerate_cut) for name in log_files]
    for record in heapq.merge(*streams, key=lambda r: r[0]):
        seconds.add(record, clients)
        _, latency, failure = record
        if failure is not None:
            tally.failures[failure] += 1
        else:
            tally.ok += 1
            tally.latencies[latency or 0] += 1
    return tally
