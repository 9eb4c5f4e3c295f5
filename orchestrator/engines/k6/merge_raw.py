"""Raw outputs of several k6 instances (shards of one test) -> one Tally, exactly.

Counts add up; the latency histograms add (HdrHistogram merge); each second's p50/p95/p99
are read from the values of *all* shards in that second, never from the shards'
percentiles. To do that a shard keeps, per second, its values reduced to the histogram
bucket each falls in: the percentile read from those is the same as from the values
themselves (both are reported as the bucket's highest equivalent value), and a second
holds at most a few thousand distinct buckets however many requests it saw.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from orchestrator.engines.k6 import summary as k6_summary
from orchestrator.engines.k6.stream import StreamReader, read_raw
from orchestrator.engines.k6.tally import NameTally, Tally
from orchestrator.errors import ParseError
from orchestrator.histogram import add_buckets, encode, new_histogram, percentiles_of


class SecondKeepingReader(StreamReader):
    """A StreamReader that also keeps each closed second's values (as histogram buckets)."""

    def __init__(self) -> None:
        super().__init__()
        self.second_values: dict[int, Counter[int]] = {}

    def _close_before(self, limit: int | None) -> None:
        bucket_of = self.tally.latency.get_highest_equivalent_value
        for sec, by_name in self._open.items():
            if limit is None or sec < limit:
                kept: Counter[int] = Counter()
                for samples in by_name.values():
                    for value_us, n in Counter(samples).items():
                        kept[int(bucket_of(value_us))] += n
                self.second_values[sec] = kept
        super()._close_before(limit)


@dataclass
class ShardTally:
    """One shard's raw output, read, with what an exact merge needs."""

    tally: Tally
    second_values: dict[int, Counter[int]] = field(default_factory=dict)
    duration: float | None = None


def stamp_span(tally: Tally) -> float | None:
    """Seconds from the first sample to the last (None when there is no span)."""
    if tally.first_stamp is None or tally.last_stamp is None:
        return None
    first = datetime.fromisoformat(tally.first_stamp)
    last = datetime.fromisoformat(tally.last_stamp)
    seconds = (last - first).total_seconds()
    return seconds if seconds > 0 else None


def summary_duration(summary: Path | None) -> float | None:
    """k6's own run duration from its ``--summary-export`` (None if absent or unreadable)."""
    if summary is None or not summary.is_file():
        return None
    try:
        return k6_summary.run_duration(k6_summary.read_summary(summary))
    except ParseError:
        return None


def read_shard(raw: Path, summary: Path | None = None, *, partial_ok: bool = False) -> ShardTally:
    """Read one shard's raw output; its duration is k6's own, else its samples' span."""
    reader = SecondKeepingReader()
    tally = read_raw(raw, partial_ok=partial_ok, reader=reader)
    duration = summary_duration(summary) or stamp_span(tally)
    return ShardTally(tally, reader.second_values, duration)


def _levels(concurrency: dict[int, int], seconds: range) -> dict[int, int]:
    """A shard's VU level in each second of its own sampled span (a gauge holds its level
    between samples); nothing outside the span, where the shard was not running."""
    if not concurrency:
        return {}
    first, last = min(concurrency), max(concurrency)
    out: dict[int, int] = {}
    level = 0
    for sec in seconds:
        if first <= sec <= last:
            level = concurrency.get(sec, level)
            out[sec] = level
    return out


def _merge_concurrency(tallies: Sequence[Tally]) -> dict[int, int]:
    known = [sec for t in tallies for sec in t.concurrency]
    if not known:
        return {}
    seconds = range(min(known), max(known) + 1)
    total: Counter[int] = Counter()
    for tally in tallies:
        total.update(_levels(tally.concurrency, seconds))
    return dict(total)


def _sum_optional(values: Sequence[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def merge_tallies(parts: Sequence[ShardTally]) -> Tally:
    """One Tally of all shards: what a single k6 instance would have counted."""
    if not parts:
        raise ValueError("nothing to merge")
    merged = Tally()
    tallies = [p.tally for p in parts]
    for tally in tallies:
        merged.latency.add(tally.latency)
        merged.session_length.add(tally.session_length)
        merged.total += tally.total
        merged.successful += tally.successful
        merged.status_codes.update(tally.status_codes)
        merged.errors.update(tally.errors)
        merged.error_messages.update(tally.error_messages)
        merged.counters.update(tally.counters)
        merged.connect_failures += tally.connect_failures
        merged.dropped += tally.dropped
        merged.dropped_seen = merged.dropped_seen or tally.dropped_seen
        merged.late_samples += tally.late_samples
        merged.lines += tally.lines
        merged.target = merged.target or tally.target
        for sec, (requests, errors) in tally.seconds.items():
            bucket = merged.seconds.setdefault(sec, [0, 0])
            bucket[0] += requests
            bucket[1] += errors
        # Per endpoint (name tag): counts add, histograms merge exactly; per-second
        # percentiles per name are not kept across shards.
        for name, named in tally.names.items():
            merged.names.setdefault(name, NameTally(method=named.method)).add(named)
        merged.rest.add(tally.rest)
        merged.names_dropped = merged.names_dropped or tally.names_dropped
    stamps = [t.first_stamp for t in tallies if t.first_stamp] + [
        t.last_stamp for t in tallies if t.last_stamp
    ]
    if stamps:
        merged.first_stamp, merged.last_stamp = min(stamps), max(stamps)
    merged.concurrency = _merge_concurrency(tallies)
    merged.vus_peak = max(merged.concurrency.values()) if merged.concurrency else None
    merged.vus_max_peak = _sum_optional([t.vus_max_peak for t in tallies])
    cut = [f"shard {i}: {t.truncated}" for i, t in enumerate(tallies) if t.truncated]
    merged.truncated = "; ".join(cut) or None
    seconds: dict[int, Counter[int]] = {}
    for part in parts:
        for sec, values in part.second_values.items():
            seconds.setdefault(sec, Counter()).update(values)
    merged.percentiles = {
        sec: percentiles_of(values, merged.latency) for sec, values in seconds.items() if values
    }
    # Each value already sits on its bucket's highest equivalent value: recorded again it
    # lands in the same bucket, so these are the seconds' exact histograms.
    merged.histograms = {
        sec: encode(add_buckets(new_histogram(), values.items()))
        for sec, values in seconds.items()
        if values
    }
    return merged


def merged_duration(parts: Sequence[ShardTally]) -> float | None:
    """The shards ran side by side: the run lasted as long as the longest of them."""
    known = [p.duration for p in parts if p.duration]
    return max(known) if known else None
