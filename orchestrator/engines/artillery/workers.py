"""Our Artillery processor's per-worker files (``artillery-data/*.json``).

``tool_configs/artillery/processor.js`` records, in every Artillery worker, each round trip
(WebSocket) or time to first byte (HTTP) in µs per second, in total and under its endpoint
(the request's or message's name), plus its own counters and the session lengths; merged
here into exact HdrHistograms and per-second time series.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path

from hdrh.histogram import HdrHistogram

from orchestrator import histogram as hist
from orchestrator.engines.artillery.counters import kind_of
from orchestrator.models import ResponseTime, TimeBucket
from parsers import build
from parsers.common import Wire, read_json, validated


class EndpointSecond(Wire):
    t: int
    requests: int
    errors: int
    values: list[tuple[int, int]]


class Second(EndpointSecond):
    concurrency: int


class EndpointData(Wire):
    """One endpoint's requests in one worker: failures without a response by error code."""

    name: str
    requests: int
    responses: int
    ok: int
    codes: dict[str, int]
    errors: dict[str, int]
    seconds: list[EndpointSecond]


class WorkerData(Wire):
    version: int
    counters: dict[str, int]
    sessionsMs: list[tuple[int, int]]  # noqa: N815 - our processor's key
    seconds: list[Second]
    endpoints: list[EndpointData] | None = None  # None: from a processor without them


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


def time_series(seconds: Mapping[int, Second | EndpointSecond], start: float) -> list[TimeBucket]:
    buckets: list[TimeBucket] = []
    for t in sorted(seconds):
        second = seconds[t]
        buckets.append(
            hist.time_bucket(
                round(max(0.0, t - start), 3),
                requests=second.requests,
                errors=second.errors,
                concurrency=second.concurrency if isinstance(second, Second) else None,
                histogram=hist.from_buckets(second.values),
                keep_histogram=isinstance(second, Second),
            )
        )
    return buckets


def endpoint_tallies(
    workers: list[WorkerData],
    start: float,
    known: Mapping[str, tuple[str | None, str | None]],
    resolution_us: float,
) -> list[build.EndpointTally]:
    """Each endpoint's data merged over the workers, the ``known`` ones (name -> method and
    path) first. A WebSocket reply has no status code: it completed the request and
    succeeded. None from files of an older processor (they have no endpoints)."""
    if all(worker.endpoints is None for worker in workers):
        return []
    parts: dict[str, list[EndpointData]] = defaultdict(list)
    for worker in workers:
        for endpoint in worker.endpoints or []:
            parts[endpoint.name].append(endpoint)
    # An endpoint of the scenario that got no request is there too, with its zeros.
    order = list(known) + sorted(set(parts) - known.keys())
    tallies: list[build.EndpointTally] = []
    for name in order:
        histogram = hist.new_histogram()
        by_second: dict[int, list[EndpointSecond]] = defaultdict(list)
        codes: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for part in parts[name]:
            codes.update(part.codes)
            for code, n in part.errors.items():
                errors[kind_of(code)] += n
            for second in part.seconds:
                by_second[second.t].append(second)
                hist.add_buckets(histogram, second.values)
        seconds = {
            t: EndpointSecond(
                t=t,
                requests=sum(s.requests for s in items),
                errors=sum(s.errors for s in items),
                values=[v for s in items for v in s.values],
            )
            for t, items in by_second.items()
        }
        method, path = known.get(name, (None, None))
        tallies.append(
            build.EndpointTally(
                name=name,
                method=method,
                path=path,
                counts=build.Counts(
                    total=sum(p.requests for p in parts[name]),
                    successful=sum(p.ok for p in parts[name]),
                    completed=sum(p.responses for p in parts[name]),
                ),
                histogram=histogram,
                resolution_us=resolution_us,
                status_codes=dict(sorted(codes.items())),
                errors=dict(errors),
                time_series=time_series(seconds, start),
            )
        )
    return tallies


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
