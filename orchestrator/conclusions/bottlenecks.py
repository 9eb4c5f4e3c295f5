"""What breaks first, with the samples that show it.

Each detector reads one kind of evidence from a scenario's result and analysis: the load
generator's CPU (then the limits are the tool's, not the service's), the target's CPU during
the saturated holds (``cpu_percent`` is summed over its process tree: 100 = one core), a leak
verdict, connection-level errors and timeouts, and the knee (requests queueing, or rejected,
once the service holds as many as it can serve at once).
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.conclusions.models import Bottleneck, Hold, Knee, LeakReport
from orchestrator.models import LoadTestResult

# Target CPU this close to a whole number of cores (mean over the saturated holds): busy.
CORE_SHARE = 0.10
# p95 after the knee above this factor of the knee's: requests queue.
QUEUE_FACTOR = 1.5
CONNECTION_KINDS = {
    "connection_refused", "connection_reset", "connection_closed", "connection_failed",
    "connection_error",
}  # fmt: skip
REJECTION_CODES = ("429", "503")


def unit_of(result: LoadTestResult) -> str:
    if result.protocol == "ws":
        return "connections"
    if result.protocol == "postgres":
        return "clients"
    return "users" if result.workload_model == "closed" else "arrivals/s"


def _cores(count: int) -> str:
    return "one core" if count == 1 else f"{count} cores"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def generator_bottleneck(result: LoadTestResult, holds: Sequence[Hold]) -> Bottleneck | None:
    if not result.generator_saturated:
        return None
    top = max((h.goodput for h in holds if h.goodput is not None), default=result.throughput)
    gen = result.generator
    evidence = [f"{result.tool} ran at the limit of the CPU it can use (generatorSaturated)"]
    if gen is not None and gen.cpu_percent_mean is not None:
        evidence.append(
            f"{result.tool} CPU mean {gen.cpu_percent_mean:.0f}%, max "
            f"{gen.cpu_percent_max or 0:.0f}% of {gen.cpu_capacity_percent:.0f}% usable"
        )
    return Bottleneck(
        component="load generator",
        limit=top,
        unit="req/s",
        scenario=result.scenario,
        evidence=evidence,
        recommendation=(
            f"{result.scenario}: the numbers measure {result.tool}, not the service: give it "
            "more workers or CPU (or run it on another machine) and run again"
        ),
    )


def _saturated_holds(holds: Sequence[Hold], knee: Knee | None) -> list[Hold]:
    if knee is not None and knee.found and knee.saturated_at is not None:
        return [h for h in holds if h.concurrency >= knee.saturated_at]
    loaded = [h for h in holds if h.concurrency > 0]
    top = max((h.concurrency for h in loaded), default=None)
    return [h for h in loaded if h.concurrency == top]


def cpu_bottleneck(
    result: LoadTestResult,
    holds: Sequence[Hold],
    knee: Knee | None,
    target_cores: int | None = None,
) -> Bottleneck | None:
    """The target's CPU near a whole number of cores (or all of ``target_cores``) during the
    saturated holds (those from the knee on; without a knee, the highest level)."""
    usage = result.resource_usage
    if usage is None or not usage.series:
        return None
    windows = _saturated_holds(holds, knee)
    if windows:
        samples = [
            s.cpu_percent
            for s in usage.series
            if s.cpu_percent is not None
            and any(h.start <= s.t <= h.start + h.duration for h in windows)
        ]
        where = (
            "the holds at " + ", ".join(str(h.concurrency) for h in windows) + " " + unit_of(result)
        )
    else:
        samples = [s.cpu_percent for s in usage.series if s.cpu_percent is not None]
        where = "the run"
    if len(samples) < 2:
        return None
    mean = sum(samples) / len(samples)
    cores = round(mean / 100.0)
    near_core = cores >= 1 and abs(mean - 100.0 * cores) <= CORE_SHARE * 100.0 * cores
    all_cores = target_cores is not None and mean >= (1 - CORE_SHARE) * 100.0 * target_cores
    if not (near_core or all_cores):
        return None
    busy = target_cores if all_cores and target_cores is not None else cores
    return Bottleneck(
        component="target CPU",
        limit=100.0 * busy,
        unit="cpu %",
        scenario=result.scenario,
        evidence=[
            f"target CPU mean {mean:.0f}% over {where} ({len(samples)} samples; "
            f"100% = one core): about {_cores(busy)} fully busy"
        ],
        recommendation=(
            f"{result.scenario}: the target is CPU-bound at about {_cores(busy)}: profile the "
            "hot path, or run more worker processes / instances (a single-threaded server "
            "uses one core however many the machine has)"
        ),
    )


def memory_bottleneck(result: LoadTestResult, leak: LeakReport | None) -> Bottleneck | None:
    if leak is None or leak.memory_leak is not True:
        return None
    memory = leak.trends[0]
    return Bottleneck(
        component="target memory",
        limit=memory.slope,
        unit="MB/min",
        scenario=result.scenario,
        evidence=[memory.detail],
        recommendation=(
            f"{result.scenario}: memory grows steadily under load: compare heap snapshots "
            "(e.g. tracemalloc, --inspect) taken minutes apart to find what is kept per request"
        ),
    )


def _within(hold: Hold, error_limit: float) -> bool:
    return (hold.error_rate or 0.0) <= error_limit


def _last_good(holds: Sequence[Hold], error_limit: float) -> int | None:
    good = [h.concurrency for h in holds if h.concurrency > 0 and _within(h, error_limit)]
    return max(good, default=None)


def connection_bottlenecks(
    result: LoadTestResult, holds: Sequence[Hold], error_limit: float
) -> list[Bottleneck]:
    """Connection-level failures and timeouts, each with its count."""
    total = result.total_requests or 0
    limit = _last_good(holds, error_limit)
    unit = unit_of(result)
    found: list[Bottleneck] = []
    pool = result.errors.get("too_many_connections", 0)
    refused = {k: v for k, v in sorted(result.errors.items()) if k in CONNECTION_KINDS and v}
    timeouts = result.errors.get("timeout", 0) + result.errors.get("timeouts", 0)
    of = f" of {_count(total)} requests" if total else ""
    # (component, evidence, advice) of each kind of failure seen; the same shape for all.
    seen = [
        ("database connections", {"too_many_connections": pool} if pool else {},
         "the server refused connections past its limit: put a pool (PgBouncer) in front or "
         "size the application's pool below max_connections"),
        ("connections", refused,
         "connections were refused or dropped: check the server's accept backlog, connection "
         "limit and open-file limit (ulimit -n)"),
        ("timeouts", {"timeouts": timeouts} if timeouts else {},
         "requests waited longer than the timeout: something queues them (see the knee) or a "
         "dependency stalls"),
    ]  # fmt: skip
    for component, counts, advice in seen:
        if counts:
            found.append(
                Bottleneck(
                    component=component,
                    limit=limit,
                    unit=unit,
                    scenario=result.scenario,
                    evidence=[f"{kind}: {_count(n)}{of}" for kind, n in counts.items()],
                    recommendation=f"{result.scenario}: {advice}",
                )
            )
    return found


def servers_estimate(holds: Sequence[Hold], ceiling: float | None) -> float | None:
    """Little's law: the ceiling x the latency at the lowest level held (ms -> s) estimates
    how many requests the service works on at once."""
    loaded = sorted((h for h in holds if h.concurrency > 0), key=lambda h: h.concurrency)
    if not loaded or ceiling is None or loaded[0].p50 is None:
        return None
    return ceiling * loaded[0].p50 / 1000.0


def knee_bottleneck(
    result: LoadTestResult, holds: Sequence[Hold], knee: Knee | None, ceiling: float | None
) -> Bottleneck | None:
    """Past the knee, requests queue (latency climbs) or are turned away (errors climb)."""
    if knee is None or not knee.found:
        return None
    evidence = [knee.evidence]
    servers = servers_estimate(holds, ceiling)
    if servers is not None:
        evidence.append(
            f"estimate (Little's law): ceiling x unloaded p50 = about {servers:.1f} requests "
            "in service at once"
        )
    queueing = (
        knee.p95_at_knee is not None
        and knee.p95_after is not None
        and knee.p95_after >= QUEUE_FACTOR * knee.p95_at_knee
    )
    rejections = {c: n for c, n in sorted(result.status_codes.items()) if c in REJECTION_CODES}
    evidence += [f"status {code}: {_count(n)} responses" for code, n in rejections.items()]
    size = f"about {servers:.0f}" if servers is not None else "a fixed number of"
    if queueing:
        component = "request queueing"
        recommendation = (
            f"{result.scenario}: past {knee.concurrency} {unit_of(result)} requests wait for a "
            f"resource that serves {size} at a time (worker pool, connection pool, lock): "
            "raise that limit if CPU and memory allow, or make each request cheaper"
        )
    elif rejections or (knee.error_rate_after or 0.0) > 0.0:
        component = "admission limit (rejections)"
        recommendation = (
            f"{result.scenario}: past {knee.concurrency} {unit_of(result)} the service turns "
            f"requests away, holding {size} at once: raise its in-flight limit if resources "
            "allow, or add instances"
        )
    else:
        # Neither turned away nor clearly queued: throughput simply stopped growing.
        component = "throughput ceiling"
        recommendation = (
            f"{result.scenario}: past {knee.concurrency} {unit_of(result)} added users add no "
            "throughput: see the target's CPU and the generator's, and profile a request"
        )
    return Bottleneck(
        component=component,
        limit=float(knee.concurrency) if knee.concurrency is not None else None,
        unit=unit_of(result),
        scenario=result.scenario,
        evidence=evidence,
        recommendation=recommendation,
    )


def find_bottlenecks(
    result: LoadTestResult,
    holds: Sequence[Hold],
    knee: Knee | None,
    leak: LeakReport | None,
    ceiling: float | None,
    error_limit: float,
    target_cores: int | None = None,
) -> list[Bottleneck]:
    """Every bottleneck the evidence of one scenario shows, the generator's first."""
    found = [
        generator_bottleneck(result, holds),
        knee_bottleneck(result, holds, knee, ceiling),
        cpu_bottleneck(result, holds, knee, target_cores),
        memory_bottleneck(result, leak),
    ]
    return [b for b in found if b is not None] + connection_bottlenecks(result, holds, error_limit)
