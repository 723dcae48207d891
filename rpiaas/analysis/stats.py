"""Statistics of runs: distribution distances, effect size, agreement, confidence intervals.

Two-sample Kolmogorov–Smirnov (statistic and p-value), the first Wasserstein
distance, Cohen's d, and :func:`agreement`: whether a difference is below a
stated tolerance (used by ``rpiaas compare``); Student t quantiles and
:func:`mean_ci`, the mean with its confidence interval (used by sweeps).

With many tasks a KS test finds any offset, however small (every simulated
wait 0, every live one 18 ms: KS = 1, p ~ 1e-19); whether that offset matters
is said by its size in the metric's unit against the testbed's timing
jitter, which :func:`agreement` does.

No scipy: its import alone (0.7 s) would cost more than the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["agreement", "cohens_d", "ks_2samp", "mean_ci", "t_quantile", "wasserstein"]

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


# ---------------------------------------------------------------- confidence intervals
def _betai(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz)."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side only
        return 1.0 - _betai(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d, f = 1.0, 0.0, 1.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-15:
            break
    return front * (f - 1.0)


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` degrees of freedom.

    Bisection on the CDF, ``1 - I_{df/(df+t^2)}(df/2, 1/2) / 2`` for t > 0:
    exact to 1e-12, and no scipy import (0.7 s) at the end of every sweep.
    """
    lo, hi = 0.0, 1.0
    while 1.0 - 0.5 * _betai(df / 2, 0.5, df / (df + hi * hi)) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1.0 - 0.5 * _betai(df / 2, 0.5, df / (df + mid * mid)) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-13 * max(1.0, hi):
            break
    return (lo + hi) / 2


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean, standard deviation and the half-width of the ``level`` confidence interval."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = math.fsum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    if min(values) == max(values):  # exactly: no rounding noise in the interval
        return float(values[0]), 0.0, 0.0
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd, t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
