"""Holds, knee and ceiling on results generated from a known queueing service."""

from __future__ import annotations

import pytest
from synthetic_results import (
    ladder_shape,
    queue_model,
    result,
    step,
    stepped_result,
)

from orchestrator import histogram as hist
from orchestrator.conclusions.holds import analyse_holds, classify_steps
from orchestrator.conclusions.knee import find_ceiling, find_knee
from orchestrator.models import TimeBucket
from orchestrator.scenarios import LoadShape, Stage

SERVERS, SERVICE_MS = 8, 20.0
LEVELS = [2, 4, 6, 8, 10, 12, 16]


@pytest.mark.parametrize(("servers", "service_ms"), [(8, 20.0), (4, 50.0), (12, 10.0)])
def test_littles_law_service_gives_its_ceiling_and_knee(servers: int, service_ms: float) -> None:
    levels = [1, 2, 4, 6, 8, 10, 12, 14, 16, 20]
    shape = ladder_shape(levels, hold=10.0, climb=3.0)
    measured = stepped_result("stress", shape, servers, service_ms)
    found = analyse_holds(measured, shape)
    assert [h.concurrency for h in found.holds] == levels
    knee = find_knee(found.holds)
    assert knee.found
    assert knee.concurrency == servers
    ceiling = find_ceiling(found.holds)
    assert ceiling.measured == pytest.approx(servers * 1000.0 / service_ms, rel=0.01)


def test_climb_steps_of_the_stress_plan_are_transitions_not_levels() -> None:
    shape = ladder_shape(LEVELS, hold=10.0, climb=4.0)
    measured = stepped_result("stress", shape, SERVERS, SERVICE_MS, climb_efficiency=0.4)
    roles = classify_steps(measured.steps, shape)
    by_level: dict[int, set[str]] = {}
    for role in roles:
        by_level.setdefault(role.concurrency, set()).add(role.role)
    # A climb of 4 s in 2 s steps from 8 to 10 passes through 9: never held.
    assert by_level[9] == {"transition"}
    assert "transition" in {r.role for r in roles}
    found = analyse_holds(measured, shape)
    # Each level held once; the climbs' low throughput (the zig-zag) is in no hold.
    assert [h.concurrency for h in found.holds] == LEVELS
    for hold in found.holds:
        expected, _ = queue_model(hold.concurrency, SERVERS, SERVICE_MS)
        assert hold.goodput == pytest.approx(expected, rel=0.01)
    assert any("transitions" in note for note in found.notes)


def test_without_the_shape_the_zigzag_shows_and_is_said_so() -> None:
    shape = ladder_shape(LEVELS, hold=10.0, climb=4.0)
    measured = stepped_result("stress", shape, SERVERS, SERVICE_MS, climb_efficiency=0.4)
    found = analyse_holds(measured, None)
    assert "load shape unknown" in found.notes[0]
    assert len(found.holds) > len(LEVELS)


def test_consecutive_steps_at_one_level_merge_with_exact_percentiles() -> None:
    a = step(0, 8, 0.0, 2.0, 400.0, 20.0)
    b = step(1, 8, 2.3, 2.0, 400.0, 40.0)
    both = result("r", [a, b])
    shape = LoadShape.constant(8, 4.0)
    hold = analyse_holds(both, shape).holds[0]
    assert hold.steps == [0, 1]
    assert hold.total_requests == a.total_requests + b.total_requests
    assert hold.latency == "exact"
    assert a.histogram is not None and b.histogram is not None
    merged = hist.merge([a.histogram, b.histogram])
    assert hold.p95 == merged.get_value_at_percentile(95.0) / 1000.0
    # Merged, not the larger step's p95: the slow step is only half the requests.
    assert hold.p95 is not None
    assert hold.p95 < max(a.response_time.p95 or 0.0, b.response_time.p95 or 0.0)
    # Without histograms the p95 is the highest of the steps': an upper bound, labelled.
    plain = result("r", [s.model_copy(update={"histogram": None}) for s in (a, b)])
    bound = analyse_holds(plain, shape).holds[0]
    assert bound.latency == "upper_bound"
    assert bound.p95 == max(a.response_time.p95 or 0, b.response_time.p95 or 0)


def _buckets(shape: LoadShape) -> list[TimeBucket]:
    """Per-second buckets of a native ramp (k6): concurrency follows the shape."""
    out, t = [], 0
    for duration, low, high in shape.segments():
        for k in range(int(duration)):
            level = round(low + (high - low) * (k + 1) / duration)
            x, r = queue_model(max(level, 1), SERVERS, SERVICE_MS)
            out.append(
                TimeBucket(
                    t=float(t), requests=round(x), errors=0, concurrency=level,
                    p50=r, p95=r * 1.2, p99=r * 1.5,
                )
            )  # fmt: skip
            t += 1
    return out


def test_holds_from_per_second_buckets_skip_ramps_and_say_upper_bound() -> None:
    shape = LoadShape(
        start=0,
        stages=[
            Stage(duration=5, target=4), Stage(duration=6, target=4),
            Stage(duration=5, target=16), Stage(duration=6, target=16),
        ],
    )  # fmt: skip
    measured = result("ramp", [], time_series=_buckets(shape))
    found = analyse_holds(measured, shape)
    assert [h.concurrency for h in found.holds] == [4, 16]
    assert [h.duration for h in found.holds] == [5.0, 5.0]  # first second settles
    assert all(h.latency == "upper_bound" and h.source == "time_series" for h in found.holds)
    assert found.holds[1].goodput == pytest.approx(400.0)
    assert any("upper bound" in n for n in found.notes)
    # Without the shape: runs of seconds at one measured concurrency.
    blind = analyse_holds(measured, None)
    assert [h.concurrency for h in blind.holds] == [4, 16]


def test_flat_throughput_without_latency_climbing_is_no_knee() -> None:
    # A rate cap: more users, same throughput, same latency. Not a saturated service.
    steps = [step(i, n, 3.0 * i, 2.0, 200.0, 10.0) for i, n in enumerate([2, 4, 8, 16])]
    knee = find_knee(analyse_holds(result("capped", steps), None).holds)
    assert not knee.found
    assert "neither latency nor errors climbed" in knee.evidence


def test_rejections_past_the_limit_make_a_knee_through_errors() -> None:
    # Fast 503s past 8 in flight: goodput flat, p95 falls, errors climb.
    steps = [
        step(0, 4, 0.0, 2.0, 200.0, 20.0),
        step(1, 8, 2.3, 2.0, 400.0, 20.0),
        step(2, 16, 4.6, 2.0, 400.0, 2.0, failed=4000),
    ]
    knee = find_knee(analyse_holds(result("reject", steps), None).holds)
    assert knee.found and knee.concurrency == 8 and knee.saturated_at == 16
    assert "errors went" in knee.evidence and "p95 went" not in knee.evidence


def test_a_service_still_scaling_has_no_knee() -> None:
    shape = ladder_shape([1, 2, 4], hold=4.0, climb=1.0)
    knee = find_knee(analyse_holds(stepped_result("s", shape, 8, 20.0), shape).holds)
    assert not knee.found
    assert "kept rising" in knee.evidence


def test_added_users_turned_away_past_the_error_limit_mark_the_knee() -> None:
    # 8 -> 12 users adds 13% of linear goodput (more than the 10% rule asks), but 97% of the
    # requests at 12 failed: the added users were turned away. Seen on the reference target.
    steps = [
        step(0, 4, 0.0, 2.0, 160.0, 25.0),
        step(1, 8, 2.3, 2.0, 320.0, 25.0),
        step(2, 12, 4.6, 2.0, 341.0, 20.0, failed=20000),
        step(3, 16, 6.9, 2.0, 240.0, 3.0, failed=24000),
    ]
    holds = analyse_holds(result("reject", steps), None).holds
    knee = find_knee(holds, error_limit=5.0)
    assert knee.found and knee.concurrency == 8
    # Without an error limit to pass, the same numbers still scale from 8 to 12.
    assert find_knee(holds, error_limit=100.0).concurrency == 12
    # Some failures at 8 already (a slot freed only after its response went out) do not
    # hide the jump at 12.
    failing_at_8 = [
        s.model_copy(update={"failed_requests": 300, "total_requests": s.total_requests + 300})
        if s.concurrency == 8
        else s
        for s in steps
    ]
    holds = analyse_holds(result("reject", failing_at_8), None).holds
    assert holds[1].error_rate is not None and holds[1].error_rate > 5.0
    assert find_knee(holds, error_limit=5.0).concurrency == 8
