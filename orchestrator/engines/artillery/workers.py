"""Our Artillery processor's per-worker files (``artillery-data/*.json``).

``tool_configs/artillery/processor.js`` records, in every Artillery worker, each round trip
(WebSocket) or time to first byte (HTTP) in µs per second, plus its own counters and the
session lengths; merged here into one exact HdrHistogram and the per-second time series.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from hdrh.histogram import HdrHistogram
from pydantic import BaseModel, ConfigDict

from orchestrator import histogram as hist
from orchestrator.models import ResponseTime, TimeBucket
from parsers.common import read_json, validated


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Second(_Wire):
    t: int
    requests: int
    errors: int
    concurrency: int
    values: list[tuple[int, int]]


class WorkerData(_Wire):
    version: int
    counters: dict[str, int]
    sessionsMs: list[tuple[int, int]]  # noqa: N815 - our processor's key
    seconds: list[Second]


def load_worker_data(data_dir: Path) -> list[WorkerData]:
    out: list[WorkerData] = []
    for file in sorted(data_dir.glob("*.json")) if data_dir.is_dir() else []:
        out.append(validated(WorkerData, read_json(file), file))
    return out


def merge_workers(workers: list[WorkerData]) -> tuple[HdrHistogram, dict[int, Second]]:
    """Every recorded latency in one histogram, and the per-second records merged."""
    total = hist.new_histogram()
    by_second: dict[int, list[Second]] = defaultdict(list)
    for worker in workers:
        for second in worker.seconds:
            by_second[second.t].append(second)
            hist.add_buckets(total, second.values)
    merged = {
        t: Second(
            t=t,
            requests=sum(s.requests for s in items),
            errors=sum(s.errors for s in items),
            concurrency=sum(s.concurrency for s in items),
            values=[v for s in items for v in s.values],
        )
        for t, items in by_second.items()
    }
    return total, merged


def time_series(seconds: dict[int, Second], start: float) -> list[TimeBucket]:
    buckets: list[TimeBucket] = []
    for t in sorted(seconds):
        second = seconds[t]
        buckets.append(
            hist.time_bucket(
                round(max(0.0, t - start), 3),
                requests=second.requests,
                errors=second.errors,
                concurrency=second.concurrency,
                histogram=hist.from_buckets(second.values),
            )
        )
    return buckets


def session_lengths(workers: list[WorkerData]) -> ResponseTime | None:
    pairs = [(ms * 1000, n) for w in workers for ms, n in w.sessionsMs]
    return hist.summarize(hist.from_buckets(pairs), resolution_us=1000.0) if pairs else None


def worker_counters(
    workers: list[WorkerData],
) -> tuple[dict[str, float], float | None, float | None]:
    """The processor's counters summed (as ``orchestrate.*``), first and last second (ms)."""
    counters: dict[str, float] = {}
    for worker in workers:
        for name, value in worker.counters.items():
            key = f"orchestrate.{name}"
            counters[key] = counters.get(key, 0) + value
    stamps = [second.t for worker in workers for second in worker.seconds]
    first = min(stamps) * 1000.0 if stamps else None
    last = (max(stamps) + 1) * 1000.0 if stamps else None
    return counters, first, last
