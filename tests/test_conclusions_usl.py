"""The USL fit recovers the parameters of data generated from the law."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.conclusions.usl import fit_usl, predict, usl_throughput

LEVELS = [1, 2, 4, 8, 16, 24, 32, 48, 64, 96]


def _points(
    sigma: float, kappa: float, lam: float, noise: float, seed: int
) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    return [
        (n, float(usl_throughput(n, sigma, kappa, lam)) * (1.0 + rng.normal(0.0, noise)))
        for n in LEVELS
    ]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_recovers_known_parameters_from_noisy_points(seed: int) -> None:
    sigma, kappa, lam = 0.03, 0.0005, 50.0
    fit = fit_usl(_points(sigma, kappa, lam, noise=0.01, seed=seed))
    assert fit.quality == "good"
    assert fit.sigma == pytest.approx(sigma, abs=0.01)
    assert fit.kappa == pytest.approx(kappa, rel=0.25)
    assert fit.lambda_ == pytest.approx(lam, rel=0.05)
    n_star = math.sqrt((1 - sigma) / kappa)  # 44.0
    assert fit.peak_concurrency == pytest.approx(n_star, rel=0.10)
    peak = float(usl_throughput(n_star, sigma, kappa, lam))
    assert fit.peak_throughput == pytest.approx(peak, rel=0.03)
    assert fit.r_squared is not None and fit.r_squared > 0.98
    assert not fit.peak_beyond_measured


def test_no_coherency_cost_means_no_retrograde_peak() -> None:
    fit = fit_usl([(n, float(usl_throughput(n, 0.1, 0.0, 100.0))) for n in LEVELS])
    assert fit.quality == "good"
    assert fit.kappa == pytest.approx(0.0, abs=1e-9)
    assert fit.peak_concurrency is None
    # The asymptote lambda / sigma is what it tends to.
    assert fit.peak_throughput == pytest.approx(1000.0, rel=0.01)


def test_linear_scaling_has_no_ceiling_in_the_model() -> None:
    fit = fit_usl([(n, 100.0 * n) for n in LEVELS])
    assert fit.sigma == pytest.approx(0.0, abs=1e-9)
    assert fit.kappa == pytest.approx(0.0, abs=1e-9)
    assert fit.peak_concurrency is None and fit.peak_throughput is None
    assert predict(fit, 200) == pytest.approx(20000.0)


def test_too_few_levels_are_said_so() -> None:
    fit = fit_usl([(2, 100.0), (4, 190.0), (2, 101.0)])
    assert fit.quality == "too_few_points"
    assert fit.sigma is None
    assert "2 distinct concurrency level" in (fit.reason or "")
    three = fit_usl([(2, 100.0), (4, 190.0), (8, 300.0)])
    assert three.quality == "too_few_points" and three.sigma is not None


def test_a_poor_fit_is_flagged_for_the_fallback() -> None:
    # Throughput that jumps around with concurrency: no law describes it.
    fit = fit_usl([(1, 100.0), (2, 20.0), (4, 300.0), (8, 40.0), (16, 250.0), (32, 30.0)])
    assert fit.quality == "poor"
    assert fit.r_squared is not None and fit.r_squared < 0.8
    assert "R^2" in (fit.reason or "")
