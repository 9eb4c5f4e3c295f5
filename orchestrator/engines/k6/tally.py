"""What a raw k6 stream adds up to (:class:`Tally`), in total and per request name.

:mod:`.stream` feeds it. Each request is counted once, under its ``name`` tag (our script
names every request after its endpoint; k6's default name is the URL) or, without one,
under ``rest``; the run's counts are their sums (:meth:`Tally.finish`). Latencies are kept
per second and per name until the second is over, then counted once into the name's
histogram; the run's histogram is the exact merge of those.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from orchestrator import histogram as hdr

# Beyond this many request names (a script that leaves k6's default, the URL, on URLs with
# ids in them) per-name numbers would cost a histogram each: they are dropped, said so.
MAX_NAMES = 100
TOO_MANY_NAMES = (
    f"more than {MAX_NAMES} distinct request names (k6's name tag, by default the URL): "
    "tag the requests with a name to get per-endpoint numbers"
)


@dataclass
class NameTally:
    """The requests of one name: counted like the totals, with their own histogram."""

    method: str | None = None
    total: int = 0
    successful: int = 0
    status_codes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: HdrHistogram = field(default_factory=hdr.new_histogram)
    # per second (epoch): [requests, errors]; (p50, p95, p99) in ms
    seconds: dict[int, list[int]] = field(default_factory=dict)
    percentiles: dict[int, tuple[float, float, float]] = field(default_factory=dict)

    def add(self, other: NameTally) -> None:
        """Count ``other``'s requests here too (its per-second percentiles are lost)."""
        self.total += other.total
        self.successful += other.successful
        self.status_codes.update(other.status_codes)
        self.errors.update(other.errors)
        if other.latency.get_total_count():
            self.latency.add(other.latency)
        for sec, (requests, errors) in other.seconds.items():
            bucket = self.seconds.setdefault(sec, [0, 0])
            bucket[0] += requests
            bucket[1] += errors


@dataclass
class Tally:
    """Everything measured from one raw k6 stream."""

    latency: HdrHistogram = field(default_factory=hdr.new_histogram)
    session_length: HdrHistogram = field(default_factory=hdr.new_histogram)
    # The run's counts (and per-second [requests, errors]): summed by finish().
    total: int = 0
    successful: int = 0
    status_codes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: dict[int, list[int]] = field(default_factory=dict)
    error_messages: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)
    connect_failures: int = 0
    dropped: int = 0
    dropped_seen: bool = False
    vus_peak: int | None = None
    vus_max_peak: int | None = None
    # per second (epoch): concurrency; (p50, p95, p99) in ms
    concurrency: dict[int, int] = field(default_factory=dict)
    # per second: [connections opened, closed] by our WebSocket script
    connections: dict[int, list[int]] = field(default_factory=dict)
    percentiles: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    # per second (epoch): the second's latencies, an encoded histogram (TimeBucket.histogram)
    histograms: dict[int, str] = field(default_factory=dict)
    # Requests by name tag; empty with ``names_dropped`` set past MAX_NAMES names.
    names: dict[str, NameTally] = field(default_factory=dict)
    names_dropped: str | None = None
    # Requests under no name (e.g. failed WebSocket connects), or whose names were dropped.
    rest: NameTally = field(default_factory=NameTally)
    late_samples: int = 0
    # A flow's iterations (load.js flow_iteration): completed ones' durations, failed by
    # (step, kind).
    flow_completed: int = 0
    flow_failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    flow_time: HdrHistogram = field(default_factory=hdr.new_histogram)
    first_stamp: str | None = None
    last_stamp: str | None = None
    target: str | None = None
    lines: int = 0
    truncated: str | None = None

    @property
    def is_ws(self) -> bool:
        return any(self.counters[name] for name in ("ws_sessions", "ws_opened", "ws_msgs_sent"))

    def name_tally(self, name: str | None, method: str | None) -> NameTally:
        """Where requests named ``name`` are counted (``rest``: no name, too many names)."""
        if name is None or self.names_dropped is not None:
            return self.rest
        found = self.names.get(name)
        if found is None:
            if len(self.names) >= MAX_NAMES:
                self.drop_names()
                return self.rest
            found = self.names[name] = NameTally(method=method)
        return found

    def drop_names(self) -> None:
        for named in self.names.values():
            self.rest.add(named)
        self.names.clear()
        self.names_dropped = TOO_MANY_NAMES

    def histogram_of(self, name: str | None) -> HdrHistogram:
        named = self.names.get(name) if name is not None else None
        return self.rest.latency if named is None else named.latency

    def close_second(self, sec: int, values: dict[str | None, array[int]]) -> None:
        """One second is over: count its latencies (µs) once into each name's histogram
        and read that second's percentiles, per name and overall."""
        overall: Counter[int] | None = None
        for name, samples in values.items():
            # Equal values are recorded once with their count: far fewer Python calls.
            counts = Counter(samples)
            histogram = self.histogram_of(name)
            for value_us, n in counts.items():
                histogram.record_value(value_us, n)
            named = self.names.get(name) if name is not None else None
            if named is not None:
                named.percentiles[sec] = hdr.percentiles_of(counts, histogram)
            if len(values) == 1:
                overall = counts
        if overall is None:
            joined: array[int] = array("q")
            for samples in values.values():
                joined.extend(samples)
            overall = Counter(joined)
        self.percentiles[sec] = hdr.percentiles_of(overall, self.latency)
        # The run's series keeps each second's histogram so windows of seconds merge
        # exactly (spike recovery); ~2.5 ms a second at 5,000 distinct values.
        self.histograms[sec] = hdr.encode(hdr.add_buckets(hdr.new_histogram(), overall.items()))

    def finish(self) -> None:
        """The run's counts and histogram: every name's (and the rest's), summed exactly."""
        whole = NameTally()
        for named in (self.rest, *self.names.values()):
            whole.add(named)
        self.total, self.successful = whole.total, whole.successful
        self.status_codes, self.errors = whole.status_codes, whole.errors
        self.latency, self.seconds = whole.latency, whole.seconds


def connection_levels(changes: dict[int, list[int]]) -> dict[int, int]:
    """Connections open in each second, from the [opened, closed] counts per second: the
    higher of the levels before and after that second's changes."""
    levels: dict[int, int] = {}
    level = 0
    for sec in range(min(changes, default=0), max(changes, default=-1) + 1):
        opened, closed = changes.get(sec, (0, 0))
        after = level + opened - closed
        levels[sec] = max(level, after)
        level = after
    return levels
