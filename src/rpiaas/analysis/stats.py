"""Statistics of two runs: distribution distances, effect size, agreement.

Two-sample Kolmogorov–Smirnov (statistic and p-value), the first Wasserstein
distance, Cohen's d, and :func:`agreement`: whether a difference is below a
stated tolerance (used by ``rpiaas compare``).  A sweep's confidence intervals
are :mod:`rpiaas.sweep.ci`'s.

With many tasks a KS test finds any offset, however small (every simulated
wait 0, every live one 18 ms: KS = 1, p ~ 1e-19); whether that offset matters
is said by its size in the metric's unit against the testbed's timing
jitter, which :func:`agreement` does.

No scipy: its import alone would cost more than the statistics.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["agreement", "cohens_d", "fit_line", "ks_2samp", "wasserstein"]

Floats = npt.NDArray[np.float64]


def _clean(x: Floats) -> Floats:
    return np.sort(x[np.isfinite(x)])


def ks_2samp(a: Floats, b: Floats) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic and asymptotic p-value (``nan`` if a sample is empty).

    The statistic is exact; the p-value is Kolmogorov's limiting distribution
    with Stephens' small-sample correction (as in Numerical Recipes' ``kstwo``).
    """
    a, b = _clean(a), _clean(b)
    n, m = a.size, b.size
    if not n or not m:
        return math.nan, math.nan
    both = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, both, side="right") / n
                            - np.searchsorted(b, both, side="right") / m)))
    en = math.sqrt(n * m / (n + m))
    return d, _kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


def _kolmogorov_sf(lam: float) -> float:
    if lam < 0.2:
        return 1.0
    total, sign = 0.0, 1.0
    for k in range(1, 101):
        term = sign * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12 * abs(total) or abs(term) < 1e-300:
            break
        sign = -sign
    return min(1.0, max(0.0, 2.0 * total))


def wasserstein(a: Floats, b: Floats) -> float:
    """First Wasserstein distance between two samples: the area between their CDFs."""
    a, b = _clean(a), _clean(b)
    if not a.size or not b.size:
        return math.nan
    both = np.sort(np.concatenate([a, b]))
    deltas = np.diff(both)
    fa = np.searchsorted(a, both[:-1], side="right") / a.size
    fb = np.searchsorted(b, both[:-1], side="right") / b.size
    return float(np.sum(np.abs(fa - fb) * deltas))


def cohens_d(a: Floats, b: Floats) -> float:
    """Cohen's d of ``b`` against ``a``: the difference of means over the pooled standard
    deviation (``nan`` if a sample is empty or both are constant)."""
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not a.size or not b.size:
        return math.nan
    diff = float(b.mean() - a.mean())
    na, nb = a.size, b.size
    var = ((na - 1) * float(a.var(ddof=1) if na > 1 else 0.0)
           + (nb - 1) * float(b.var(ddof=1) if nb > 1 else 0.0)) / max(na + nb - 2, 1)
    if var <= 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def agreement(mean_diff: float | None, tolerance: float) -> dict[str, Any]:
    """Whether a mean difference (in the metric's unit) is within ``tolerance``."""
    if mean_diff is None or not math.isfinite(mean_diff):
        return {"agree": None, "abs_diff": None, "tolerance": tolerance}
    return {"agree": abs(mean_diff) <= tolerance, "abs_diff": abs(mean_diff), "tolerance": tolerance}


def fit_line(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Least-squares ``y = a + b x`` with ``a ≥ 0``; ``(a, b)``.  A single x gives ``a = 0``."""
    if x.size >= 2 and float(np.ptp(x)) > 0:
        design = np.column_stack([np.ones_like(x), x])
        (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
        if a >= 0:
            return float(a), float(b)
    xx = float(np.dot(x, x))
    return 0.0, (float(np.dot(x, y)) / xx if xx > 0 else math.nan)
