"""The output file of our autocannon runner (``tool_configs/node/autocannon-runner.js``).

One JSON document: per step its counts and µs HdrHistograms (whole step and per second of
the run), in total and per endpoint (the plan's ``endpoints``, by each request's index).
Read and merged exactly here; :mod:`.output` turns it into a result.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from hdrh.histogram import HdrHistogram
from pydantic import Field

from orchestrator import histogram as hist
from orchestrator.errors import ParseError
from orchestrator.models import TimeBucket
from parsers import build
from parsers.common import Wire, read_json, validated

RUNNER_FORMAT = "orchestrate-autocannon/1"


class Second(Wire):
    t: int
    requests: int
    errors: int
    histogram: str


class Counts(Wire):
    requests: int
    responses: int
    ok: int
    non2xx: int
    errors: int
    timeouts: int


class EndpointPart(Wire):
    """One endpoint's share of a step."""

    index: int
    counts: Counts
    statusCodes: dict[str, int]  # noqa: N815 - the runner's JSON key
    errorKinds: dict[str, int]  # noqa: N815
    histogram: str | None
    seconds: list[Second]


class Step(Wire):
    index: int
    connections: int
    overallRate: int | None = None  # noqa: N815 - the runner's JSON key
    start: float
    duration: float
    counts: Counts
    statusCodes: dict[str, int]  # noqa: N815
    errorKinds: dict[str, int]  # noqa: N815
    histogram: str | None
    seconds: list[Second]
    failures: list[str] = Field(default_factory=list)
    endpoints: list[EndpointPart] = Field(
        default_factory=list
    )  # none in files of runners before per-endpoint data


class StoppedEarly(Wire):
    afterStep: int  # noqa: N815 - the runner's JSON key (0-based step index)
    errorRate: float  # noqa: N815
    limit: float


class EndpointName(Wire):
    name: str
    method: str | None = None
    path: str | None = None


class RunnerOutput(Wire):
    format: str
    autocannonVersion: str | None = None  # noqa: N815
    startedAt: float  # noqa: N815
    endedAt: float  # noqa: N815
    resolutionUs: float  # noqa: N815
    interrupted: bool
    complete: bool
    plannedSteps: int  # noqa: N815
    stoppedEarly: StoppedEarly | None = None  # noqa: N815
    endpoints: list[EndpointName] = Field(default_factory=list)
    steps: list[Step]


def load_runner_output(path: Path) -> RunnerOutput:
    output = validated(RunnerOutput, read_json(path), path)
    if output.format != RUNNER_FORMAT:
        raise ParseError(str(path), "format", f"expected {RUNNER_FORMAT!r}, got {output.format!r}")
    return output


def decode(path: Path, encoded: str, where: str) -> HdrHistogram:
    try:
        return hist.decode(encoded)
    except Exception as exc:  # hdrh raises assorted errors on corrupt input
        raise ParseError(str(path), where, f"bad histogram: {exc}") from exc


def effective_connections(step: Step) -> int:
    # autocannon opens no more connections than the rate cap in requests/s.
    if step.overallRate:
        return min(step.connections, step.overallRate)
    return step.connections


def time_series(
    path: Path,
    parts: Iterable[tuple[str, int | None, Sequence[Second]]],
    *,
    keep_histograms: bool = True,
) -> list[TimeBucket]:
    """One bucket per whole second of the run, merged exactly across ``parts``: (where in
    the file, connections or None, the part's seconds); ``keep_histograms``: each bucket
    keeps its encoded histogram (the run's series, not an endpoint's)."""
    grouped: dict[int, list[tuple[str, int | None, Second]]] = defaultdict(list)
    for where, connections, seconds in parts:
        for second in seconds:
            grouped[second.t].append((where, connections, second))
    buckets: list[TimeBucket] = []
    for t in sorted(grouped):
        merged = hist.new_histogram()
        for where, _, second in grouped[t]:
            merged.add(decode(path, second.histogram, f"{where}.seconds.t={t}"))
        levels = [c for _, c, _ in grouped[t] if c is not None]
        buckets.append(
            hist.time_bucket(
                float(t),
                requests=sum(s.requests for _, _, s in grouped[t]),
                errors=sum(s.errors for _, _, s in grouped[t]),
                concurrency=max(levels) if levels else None,
                histogram=merged,
                keep_histogram=keep_histograms,
            )
        )
    return buckets


def step_series(path: Path, steps: Sequence[Step]) -> list[TimeBucket]:
    """The run's time series, with each second's connections."""
    return time_series(
        path, ((f"steps.{s.index}", effective_connections(s), s.seconds) for s in steps)
    )


def counts_of(counts: Counts) -> build.Counts:
    # requests = responses + errors (no response); responses = ok + non2xx.
    return build.Counts(total=counts.requests, successful=counts.ok, completed=counts.responses)


def add_counts(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def endpoint_tallies(path: Path, output: RunnerOutput) -> list[build.EndpointTally]:
    """Each endpoint of the plan with its parts of every step merged (exactly)."""
    tallies: list[build.EndpointTally] = []
    for index, endpoint in enumerate(output.endpoints):
        parts = [
            (f"steps.{step.index}.endpoints.{index}", part)
            for step in output.steps
            for part in step.endpoints
            if part.index == index
        ]
        histogram = hist.new_histogram()
        codes: dict[str, int] = {}
        errors: dict[str, int] = {}
        for where, part in parts:
            if part.histogram:
                histogram.add(decode(path, part.histogram, f"{where}.histogram"))
            add_counts(codes, part.statusCodes)
            add_counts(errors, part.errorKinds)
        tallies.append(
            build.EndpointTally(
                name=endpoint.name,
                method=endpoint.method,
                path=endpoint.path,
                counts=build.Counts(
                    total=sum(p.counts.requests for _, p in parts),
                    successful=sum(p.counts.ok for _, p in parts),
                    completed=sum(p.counts.responses for _, p in parts),
                ),
                histogram=histogram,
                resolution_us=output.resolutionUs,
                status_codes=codes,
                errors=errors,
                time_series=time_series(
                    path, ((w, None, p.seconds) for w, p in parts), keep_histograms=False
                ),
            )
        )
    return tallies
