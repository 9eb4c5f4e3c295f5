"""Read back what a runner measured before it was killed: its per-second checkpoints.

A SIGKILL (the OOM killer, ``kill -9``, a CI runner tearing the job down) or a crash gives
the runner no chance to write its output, so each autocannon instance appends every second
it has finished to an NDJSON file as it goes (``tool_configs/node/autocannon-runner.js``):

* ``{"stepStart": i, "connections": n, "overallRate": r, "start": s}`` when step ``i``
  starts (``s``: seconds since the run started);
* ``{"step": i, "part": p, "upTo": t, "counts": {...}, "statusCodes": {...},
  "errorKinds": {...}, "seconds": [{"t", "requests", "errors", "histogram"}, ...]}``: the
  instance's counters as of second ``t`` (exactly the seconds before ``t``) and the
  seconds finished since its last line (a second written again replaces the earlier one).

A step the output file holds is taken from there; one it lacks (the step the kill
interrupted) is rebuilt here up to its last checkpoint. What came after is unknown.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator import histogram as hist


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StepStart(_Line):
    stepStart: int  # noqa: N815 - the runner's JSON key
    connections: int
    overallRate: int | None = None  # noqa: N815
    start: float


class CheckpointSecond(_Line):
    t: int
    requests: int
    errors: int
    histogram: str


class Checkpoint(_Line):
    step: int
    part: int
    upTo: int  # noqa: N815
    counts: dict[str, int]
    statusCodes: dict[str, int]  # noqa: N815
    errorKinds: dict[str, int]  # noqa: N815
    seconds: list[CheckpointSecond]


@dataclass
class RebuiltStep:
    """A step as far as its checkpoints go, in the runner's output-file shape (plain data)."""

    record: dict[str, object]
    up_to: float  # seconds since the run started up to which it was counted


def read_lines(path: Path) -> tuple[dict[int, StepStart], list[Checkpoint]]:
    """Every whole line; a line cut by the kill (the last one) is skipped."""
    starts: dict[int, StepStart] = {}
    checkpoints: list[Checkpoint] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return starts, checkpoints
    for line in text.splitlines():
        try:
            data = json.loads(line)
            if "stepStart" in data:
                start = StepStart.model_validate(data)
                starts[start.stepStart] = start
            else:
                checkpoints.append(Checkpoint.model_validate(data))
        except (ValueError, ValidationError):
            continue
    return starts, checkpoints


def _add(target: dict[str, int], source: dict[str, int]) -> None:
    for key, value in source.items():
        target[key] = target.get(key, 0) + value


def _merge(encoded: list[str]) -> HdrHistogram:
    merged = hist.new_histogram()
    for item in encoded:
        merged.add(hist.decode(item))
    return merged


def rebuild_steps(path: Path, known: set[int]) -> list[RebuiltStep]:
    """The steps not in ``known`` (the output file's) that have at least one checkpoint."""
    starts, checkpoints = read_lines(path)
    last: dict[tuple[int, int], Checkpoint] = {}
    seconds: dict[tuple[int, int], dict[int, CheckpointSecond]] = defaultdict(dict)
    for line in checkpoints:
        key = (line.step, line.part)
        if key not in last or line.upTo >= last[key].upTo:
            last[key] = line
        for second in line.seconds:
            seconds[key][second.t] = second
    rebuilt: list[RebuiltStep] = []
    for index, start in sorted(starts.items()):
        parts = sorted(key for key in last if key[0] == index)
        if index in known or not parts or start.connections <= 0:
            continue
        counts: dict[str, int] = {}
        status_codes: dict[str, int] = {}
        error_kinds: dict[str, int] = {}
        by_t: dict[int, list[CheckpointSecond]] = defaultdict(list)
        for key in parts:
            _add(counts, last[key].counts)
            _add(status_codes, last[key].statusCodes)
            _add(error_kinds, last[key].errorKinds)
            for second in seconds[key].values():
                by_t[second.t].append(second)
        step_hist = hist.new_histogram()
        second_records = []
        for t in sorted(by_t):
            merged = _merge([s.histogram for s in by_t[t]])
            step_hist.add(merged)
            second_records.append(
                {
                    "t": t,
                    "requests": sum(s.requests for s in by_t[t]),
                    "errors": sum(s.errors for s in by_t[t]),
                    "histogram": hist.encode(merged),
                }
            )
        # With several threads each saves at its own second boundary: the latest counts.
        up_to = float(max(last[key].upTo for key in parts))
        responses = counts.get("responses", 0)
        errors = counts.get("errors", 0)
        record: dict[str, object] = {
            "index": index,
            "connections": start.connections,
            "overallRate": start.overallRate,
            "start": start.start,
            "duration": max(0.0, up_to - start.start),
            "counts": {
                "requests": responses + errors,
                "responses": responses,
                "ok": counts.get("ok", 0),
                "non2xx": counts.get("non2xx", 0),
                "errors": errors,
                "timeouts": counts.get("timeouts", 0),
            },
            "statusCodes": status_codes,
            "errorKinds": error_kinds,
            "histogram": hist.encode(step_hist) if step_hist.get_total_count() else None,
            "seconds": second_records,
            "failures": [],
        }
        rebuilt.append(RebuiltStep(record, up_to))
    return rebuilt
