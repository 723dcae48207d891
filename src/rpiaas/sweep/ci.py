"""Confidence intervals of a sweep's means: Student t quantiles and :func:`mean_ci`.

No scipy: its import alone would cost more than the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["mean_ci", "t_quantile"]


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
    exact to 1e-12, and no scipy import at the end of every sweep.
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
