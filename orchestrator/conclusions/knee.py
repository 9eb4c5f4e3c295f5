"""The measured knee and ceiling of a stepped run, read from its holds.

Knee: the last held level that still scaled. Going from a hold at N1 to the next at N2, the
users added would add ``goodput(N1) x (N2/N1 - 1)`` if the service scaled linearly; when they
add less than 10% of that (or less than half of it while the errors at N2 rise past the
error limit: the added users were mostly turned away), no later hold beats the knee's goodput by
more than 10%, and latency (p95) or errors climb, the service is saturated at N1.

Goodput (successful requests per second) is the measure: a service that rejects what it
cannot serve answers its rejections fast, and counting them would show a throughput that is
not capacity.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.conclusions.models import Ceiling, Hold, Knee, UslFit

# Added users adding less than this share of proportional goodput: no longer scaling.
SCALING_SHARE = 0.10
# Later holds within this factor of the knee's goodput: flat.
FLAT_FACTOR = 1.10
# Latency climbing: a later p95 above this factor of the knee's.
LATENCY_FACTOR = 1.10
# Errors climbing: a later error rate this many percentage points above the knee's.
ERROR_POINTS = 1.0
# Past the error limit, added users adding less than this share were turned away.
REJECTED_SHARE = 0.5


def rising_holds(holds: Sequence[Hold]) -> list[Hold]:
    """Holds in time order whose level rises each time (a stress plan's ladder); later
    holds at a level not above the last one (a drop, a recovery) are left out."""
    out: list[Hold] = []
    for hold in sorted(holds, key=lambda h: h.start):
        if hold.goodput is None or hold.concurrency <= 0:
            continue
        if not out or hold.concurrency > out[-1].concurrency:
            out.append(hold)
    return out


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.3g} ms" if value < 100 else f"{value:,.0f} ms"


def _climbs(knee: Hold, later: list[Hold]) -> tuple[str | None, float | None, float | None]:
    """What climbed after the knee (text), the highest later p95 and error rate."""
    p95_after = max((h.p95 for h in later if h.p95 is not None), default=None)
    errors_after = max((h.error_rate for h in later if h.error_rate is not None), default=None)
    climbed: list[str] = []
    if knee.p95 is not None and p95_after is not None and p95_after > knee.p95 * LATENCY_FACTOR:
        climbed.append(f"p95 went {_ms(knee.p95)} -> up to {_ms(p95_after)}")
    if errors_after is not None and errors_after > (knee.error_rate or 0.0) + ERROR_POINTS:
        climbed.append(f"errors went {knee.error_rate or 0.0:.3g}% -> up to {errors_after:.3g}%")
    return " and ".join(climbed) or None, p95_after, errors_after


def find_knee(holds: Sequence[Hold], unit: str = "users", error_limit: float = 5.0) -> Knee:
    """The measured knee of ``holds`` (see the module's docstring), or why none was found;
    ``unit`` names the levels in the evidence (users, connections, clients), ``error_limit``
    (percent) is the scenario's."""
    ladder = rising_holds(holds)
    if len(ladder) < 2:
        return Knee(found=False, evidence=f"{len(ladder)} rising hold(s): no knee to read")
    flat_without_climb: Hold | None = None
    for i, knee in enumerate(ladder[:-1]):
        nxt, later = ladder[i + 1], ladder[i + 1 :]
        assert knee.goodput is not None and nxt.goodput is not None
        proportional = knee.goodput * (nxt.concurrency / knee.concurrency - 1.0)
        gain = nxt.goodput - knee.goodput
        # Errors past the limit and rising: the added users were turned away.
        errors, errors_before = nxt.error_rate or 0.0, knee.error_rate or 0.0
        rejected = errors > error_limit and errors > errors_before + ERROR_POINTS
        share = REJECTED_SHARE if rejected else SCALING_SHARE
        if gain >= share * proportional:
            continue
        if any((h.goodput or 0.0) > knee.goodput * FLAT_FACTOR for h in later):
            continue
        climbed, p95_after, errors_after = _climbs(knee, later)
        if climbed is None:
            flat_without_climb = flat_without_climb or knee
            continue
        return Knee(
            found=True,
            concurrency=knee.concurrency,
            goodput=knee.goodput,
            saturated_at=nxt.concurrency,
            p95_at_knee=knee.p95,
            p95_after=p95_after,
            error_rate_after=errors_after,
            evidence=(
                f"from {knee.concurrency} to {nxt.concurrency} {unit} goodput went "
                f"{knee.goodput:,.0f} -> {nxt.goodput:,.0f} req/s ({gain:+,.0f}; linear scaling "
                f"would add {proportional:,.0f}) and no later level exceeded it by 10%, while "
                f"{climbed}"
            ),
        )
    if flat_without_climb is not None:
        return Knee(
            found=False,
            evidence=(
                f"goodput stopped rising after {flat_without_climb.concurrency} {unit} but "
                "neither latency nor errors climbed: the load itself did not grow (a rate cap "
                "or a saturated load generator?)"
            ),
        )
    top = ladder[-1]
    return Knee(
        found=False,
        evidence=f"goodput kept rising up to the highest level held ({top.concurrency} {unit})",
    )


def find_ceiling(holds: Sequence[Hold], fit: UslFit | None = None) -> Ceiling:
    """The highest goodput of any hold, and the USL's predicted peak when its fit is good."""
    measured = [h for h in holds if h.goodput is not None and h.concurrency > 0]
    predicted = fit.peak_throughput if fit is not None and fit.quality == "good" else None
    if not measured:
        return Ceiling(measured=None, predicted=predicted, reason="no hold measured goodput")
    best = max(measured, key=lambda h: (h.goodput or 0.0, -h.concurrency))
    return Ceiling(measured=best.goodput, measured_at=best.concurrency, predicted=predicted)
