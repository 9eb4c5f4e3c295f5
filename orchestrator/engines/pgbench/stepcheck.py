"""A finished step as the limit search sees it: counts, exact p95, refusals and the pool.

The step runner (:mod:`.steps`) builds these facts right after each step and asks
:func:`orchestrator.db_limit.judge_step` whether the step held, so a run looking for the
database's limit stops at the first step that did not. The pool figures come from the pool
monitor's samples, which the run appends to ``pool-samples.jsonl`` as it takes them, each
with its wall-clock time (:data:`orchestrator.engines.base.POOL_SAMPLES`): those taken while
the step ran are the step's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from orchestrator import histogram as hist
from orchestrator.db_models import DatabaseStep
from orchestrator.engines.pgbench.output import StepRun, count_step
from parsers.common import rate_percent

LOG = logging.getLogger(__name__)


def read_pool_samples(path: Path | None, start: float, end: float) -> list[dict[str, Any]]:
    """The monitor's samples taken between ``start`` and ``end`` (wall clock, s)."""
    if path is None or not path.is_file():
        return []
    samples: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            sample = json.loads(line)
        except ValueError:
            continue  # the line being written right now
        if isinstance(sample, dict) and start <= sample.get("wall", -1.0) <= end:
            samples.append(sample)
    return samples


def _peak(samples: list[dict[str, Any]], key: str) -> Any:
    values = [s[key] for s in samples if s.get(key) is not None]
    return max(values, default=None)


def pool_figures(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Peaks of the step's pool samples, and PgBouncer's wait per transaction over them."""
    # Each sample's transactions/waitTime count since the one before: the step's first
    # sample's share belongs to the time before the step started.
    inside = samples[1:]
    transactions = sum(s.get("transactions") or 0 for s in inside)
    waited = sum(s.get("waitTime") or 0.0 for s in inside)
    counted = any(s.get("transactions") is not None for s in inside)
    return {
        "pool_samples": len(samples),
        "total_connections": _peak(samples, "totalConnections"),
        "waiting_clients": _peak(samples, "waitingClients"),
        "max_wait": _peak(samples, "maxWait"),
        "wait_per_transaction": round(waited / transactions, 6)
        if counted and transactions
        else None,
    }


def step_facts(folder: Path, record: dict[str, Any], journal: Path | None) -> DatabaseStep | None:
    """The facts of a finished step (None for a pause: no pgbench ran)."""
    step = StepRun.model_validate(record)
    if step.stderr is None:
        return None
    count = count_step(folder, step, tolerate=True)
    failed = sum(count.errors.values())
    requests = count.tally.ok + failed
    refused = count.facts.refused[0] if count.facts.refused else None
    p95 = hist.summarize(hist.from_buckets(count.tally.latencies.items())).p95
    end = step.end if step.end is not None else step.start
    return DatabaseStep(
        clients=step.clients,
        requests=requests,
        failed=failed,
        error_rate=rate_percent(failed, requests),
        p95=p95 if count.tally.ok else None,
        refused=refused[1].removeprefix("FATAL:").strip() if refused else None,
        refused_kind=refused[0] if refused else None,
        **pool_figures(read_pool_samples(journal, step.start, end)),
    )
