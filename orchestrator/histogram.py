"""Latency histograms: the only source of percentiles we report as exact.

Values are recorded in integer microseconds into an HdrHistogram with 3 significant
digits (so any recorded value is known to 0.1%), and stored in results in the standard
V2-compressed base64 encoding, so results from several steps, time windows or machines
can be merged exactly later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from hdrh.histogram import HdrHistogram

from orchestrator.models import ResponseTime, TimeBucket

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_ms(histogram: HdrHistogram, value_ms: float, count: int = 1) -> None:
    """Record a latency given in milliseconds (clamped into the trackable range)."""
    value_us = min(max(round(value_ms * 1000.0), LOWEST_US), HIGHEST_US)
    histogram.record_value(value_us, count)


def add_buckets(histogram: HdrHistogram, buckets: Iterable[tuple[int, int]]) -> HdrHistogram:
    """Record (value in µs, count) pairs, clamped into the trackable range."""
    for value_us, count in buckets:
        if count > 0:
            histogram.record_value(min(max(int(value_us), LOWEST_US), HIGHEST_US), int(count))
    return histogram


def from_buckets(buckets: Iterable[tuple[int, int]]) -> HdrHistogram:
    """Build from (value in µs, count) pairs, e.g. a tool's exported non-empty buckets."""
    return add_buckets(new_histogram(), buckets)


def percentiles_of(
    counts: Mapping[int, int], reference: HdrHistogram
) -> tuple[float, float, float]:
    """p50/p95/p99 (ms) of (µs value -> count), exactly as an HdrHistogram of them reads.

    Same rank rule as HdrHistogram.get_value_at_percentile and the same bucket edge
    (``reference`` has our histogram layout), without walking a fresh histogram's
    23,000 buckets three times for every second of a long run's time series.
    """
    total = sum(counts.values())
    targets = [max(int(pct * total / 100 + 0.5), 1) for pct in (50.0, 95.0, 99.0)]
    found: list[float] = []
    seen = 0
    for value_us, n in sorted(counts.items()):
        seen += n
        while len(found) < 3 and seen >= targets[len(found)]:
            found.append(reference.get_highest_equivalent_value(value_us) / 1000.0)
        if len(found) == 3:
            break
    return found[0], found[1], found[2]


def time_bucket(
    t: float,
    requests: int,
    errors: int,
    concurrency: int | None,
    histogram: HdrHistogram,
    *,
    keep_histogram: bool = True,
) -> TimeBucket:
    """One interval of a time series, its percentiles read from that interval's histogram.

    ``keep_histogram``: store the interval's histogram encoded in the bucket, so windows
    of seconds merge into exact percentiles (the run's series; per-endpoint series leave
    it out to keep result.json small).
    """
    has = histogram.get_total_count() > 0
    p50 = p95 = p99 = None
    if has:
        p50, p95, p99 = (v / 1000.0 for v in values_at_percentiles(histogram, (50, 95, 99)))
    return TimeBucket(
        t=t,
        requests=requests,
        errors=errors,
        concurrency=concurrency,
        p50=p50,
        p95=p95,
        p99=p99,
        histogram=encode(histogram) if has and keep_histogram else None,
    )


def recorded(histogram: HdrHistogram) -> list[tuple[int, int]]:
    """(counts index, count) of every non-empty bucket, in value order.

    hdrh's own percentile, mean and stddev readers walk all ~23,000 buckets in Python for
    each number asked (about a second for one summary); this reads the counts array once.
    """
    # A decoded histogram's counts array may be shorter than the layout (hdrh reads the
    # missing tail as zeros).
    size = min(histogram.counts_len, histogram.encoder.payload.counts_len)
    counts = histogram.counts[:size]
    return [(index, count) for index, count in enumerate(counts) if count]


def values_at_percentiles(
    histogram: HdrHistogram,
    percentiles: Sequence[float],
    buckets: Sequence[tuple[int, int]] | None = None,
) -> list[int]:
    """Values (µs) at ascending ``percentiles``, each exactly what
    ``HdrHistogram.get_value_at_percentile`` returns, from one pass over ``buckets``."""
    buckets = recorded(histogram) if buckets is None else buckets
    targets = [histogram.get_target_count_at_percentile(p) for p in percentiles]
    found: list[int] = []
    seen = 0
    for index, count in buckets:
        seen += count
        while len(found) < len(targets) and seen >= targets[len(found)]:
            value = histogram.get_value_from_index(index)
            pct = percentiles[len(found)]
            found.append(
                histogram.get_highest_equivalent_value(value)
                if pct
                else histogram.get_lowest_equivalent_value(value)
            )
        if len(found) == len(targets):
            break
    return found + [0] * (len(targets) - len(found))


def mean_and_stddev(
    histogram: HdrHistogram, buckets: Sequence[tuple[int, int]] | None = None
) -> tuple[float, float]:
    """(mean, stddev) in µs, the same arithmetic in the same order as hdrh's
    ``get_mean_value`` and ``get_stddev`` (each value is its bucket's middle)."""
    total_count = histogram.get_total_count()
    if not total_count:
        return 0.0, 0.0
    buckets = recorded(histogram) if buckets is None else buckets
    middles = [(histogram.get_value_from_index(i), n) for i, n in buckets]
    middles = [(histogram._hdr_median_equiv_value(v), n) for v, n in middles]
    total = 0
    for middle, count in middles:
        total += count * middle
    mean = float(total) / total_count
    deviation = 0.0
    for middle, count in middles:
        dev = (middle * 1.0) - mean
        deviation += (dev * dev) * count
    return mean, math.sqrt(deviation / total_count)


def encode(histogram: HdrHistogram) -> str:
    return histogram.encode().decode("ascii")  # type: ignore[no-any-return]


def decode(encoded: str) -> HdrHistogram:
    return HdrHistogram.decode(encoded.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """Exact merge of encoded histograms (never an average of percentiles)."""
    total = new_histogram()
    for item in encoded:
        total.add(decode(item))
    return total


def summarize(histogram: HdrHistogram, resolution_us: float = 1.0) -> ResponseTime:
    """Latency summary in milliseconds, every number read from the histogram."""
    if histogram.get_total_count() == 0:
        return ResponseTime(source="histogram", resolution_us=resolution_us)
    buckets = recorded(histogram)
    at = values_at_percentiles(histogram, list(PERCENTILES.values()), buckets)
    values = {key: value / 1000.0 for key, value in zip(PERCENTILES, at, strict=True)}
    mean, stdev = mean_and_stddev(histogram, buckets)
    return ResponseTime(
        min=histogram.get_min_value() / 1000.0,
        max=histogram.get_max_value() / 1000.0,
        mean=mean / 1000.0,
        stdev=stdev / 1000.0,
        source="histogram",
        resolution_us=resolution_us,
        **values,
    )
