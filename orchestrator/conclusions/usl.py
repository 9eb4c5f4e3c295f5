"""Universal Scalability Law fit: throughput against concurrency, from the holds.

X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)) (Gunther): sigma is contention (the
serialised share of the work), kappa coherency (crosstalk, which makes throughput fall past
N* = sqrt((1 - sigma) / kappa)), lambda the throughput of one user. The fit is a model: its
peak is labelled a prediction, and a poor fit (R^2 < 0.8) or too few points (< 4) is said
so, for callers to fall back to the measured holds.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestrator.conclusions.models import UslFit

if TYPE_CHECKING:
    import numpy as np

LOG = logging.getLogger(__name__)

MIN_POINTS = 4
MIN_R_SQUARED = 0.8
# Below this kappa the retrograde peak lies so far out that it is no finding.
KAPPA_EPS = 1e-9
SIGMA_EPS = 1e-9
ZERO = 1e-12


def usl_throughput(
    n: float | np.ndarray, sigma: float, kappa: float, lambda_: float
) -> float | np.ndarray:
    """X(N) of the law; ``n`` may be an array (curve_fit and plots)."""
    return lambda_ * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def predict(fit: UslFit, n: float) -> float | None:
    """The fitted throughput at ``n`` users (an estimate); None without parameters."""
    if fit.sigma is None or fit.kappa is None or fit.lambda_ is None:
        return None
    return float(usl_throughput(float(n), fit.sigma, fit.kappa, fit.lambda_))


def _r_squared(y: np.ndarray, fitted: np.ndarray) -> float:
    import numpy as np

    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - fitted) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def _best_fit(n: np.ndarray, x: np.ndarray) -> tuple[float, float, float] | None:
    """Least squares from a few starting points (deterministic); the lowest residual wins."""
    import numpy as np
    from scipy.optimize import OptimizeWarning, curve_fit

    slope0 = float(np.max(x / n))
    best: tuple[float, tuple[float, float, float]] | None = None
    for sigma0, kappa0 in ((0.05, 1e-4), (0.3, 1e-3), (0.01, 1e-6), (0.8, 1e-2)):
        try:
            with warnings.catch_warnings():
                # No covariance with as many points as parameters: none is used.
                warnings.simplefilter("ignore", OptimizeWarning)
                params, _ = curve_fit(
                    usl_throughput,
                    n,
                    x,
                    p0=(sigma0, kappa0, slope0),
                    bounds=([0.0, 0.0, 1e-12], [1.0, np.inf, np.inf]),
                    maxfev=20_000,
                )
        except (RuntimeError, ValueError) as exc:
            LOG.debug("USL fit from sigma=%s kappa=%s failed: %s", sigma0, kappa0, exc)
            continue
        sigma, kappa, lambda_ = (float(p) for p in params)
        sse = float(np.sum((x - usl_throughput(n, sigma, kappa, lambda_)) ** 2))
        if best is None or sse < best[0]:
            best = (sse, (sigma, kappa, lambda_))
    return None if best is None else best[1]


def fit_usl(points: Sequence[tuple[float, float]]) -> UslFit:
    """Fit the law to (concurrency, throughput) points (concurrency > 0, throughput >= 0).

    Always returns a fit; ``quality`` says whether to use it: ``good`` (>= 4 points and
    R^2 >= 0.8), ``poor``, ``too_few_points`` (parameters still given when a fit was
    possible) or ``failed``.
    """
    usable = sorted((float(c), float(t)) for c, t in points if c > 0 and t >= 0)
    count = len(usable)
    levels = len({c for c, _ in usable})
    if levels < 3:
        return UslFit(
            points=count,
            quality="too_few_points",
            reason=f"{levels} distinct concurrency level(s); the law has 3 parameters "
            f"and needs at least {MIN_POINTS}",
        )
    # numpy and scipy only for a fit that can be made: a single run never pays for them.
    import numpy as np

    n = np.array([c for c, _ in usable])
    x = np.array([t for _, t in usable])
    if not np.any(x > 0):
        return UslFit(points=count, quality="failed", reason="no throughput at any level")
    params = _best_fit(n, x)
    if params is None:
        return UslFit(points=count, quality="failed", reason="least squares did not converge")
    # Parameters at their bound come back as round-off (1e-18): they are zero.
    sigma, kappa, lambda_ = (0.0 if abs(p) < ZERO else p for p in params)
    r2 = _r_squared(x, np.asarray(usl_throughput(n, sigma, kappa, lambda_)))
    peak_n: float | None = None
    if kappa > KAPPA_EPS and sigma < 1.0:
        peak_n = math.sqrt((1.0 - sigma) / kappa)
    if peak_n is not None:
        peak_x: float | None = float(usl_throughput(peak_n, sigma, kappa, lambda_))
    elif sigma > SIGMA_EPS:
        peak_x = lambda_ / sigma
    else:
        peak_x = None
    if levels < MIN_POINTS:
        quality, reason = "too_few_points", f"{levels} concurrency levels; needs {MIN_POINTS}"
    elif r2 < MIN_R_SQUARED:
        quality, reason = "poor", f"R^2 {r2:.3f} < {MIN_R_SQUARED}: the law does not describe it"
    else:
        quality, reason = "good", None
    return UslFit(
        points=count,
        quality=quality,
        reason=reason,
        sigma=sigma,
        kappa=kappa,
        lambda_=lambda_,
        r_squared=r2,
        peak_concurrency=peak_n,
        peak_throughput=peak_x,
        peak_beyond_measured=peak_n is not None and peak_n > float(n.max()),
    )
