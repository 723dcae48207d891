"""Statistics: KS and Wasserstein against scipy, Cohen's d and agreement by hand, Student t."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rpiaas.analysis.stats import agreement, cohens_d, ks_2samp, wasserstein
from rpiaas.sweep.ci import mean_ci, t_quantile


@pytest.mark.parametrize("n,m,shift", [(50, 80, 0.0), (400, 300, 0.3), (2000, 1500, 0.05)])
def test_ks_and_wasserstein_agree_with_scipy(n: int, m: int, shift: float) -> None:
    rng = np.random.default_rng(n)
    a = rng.exponential(1.0, n)
    b = rng.exponential(1.0, m) + shift
    d, p = ks_2samp(a, b)
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, abs=0.02)
    assert wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_statistics_ignore_nan_and_handle_empty_samples() -> None:
    a = np.array([1.0, np.nan, 2.0, 3.0])
    assert ks_2samp(a, a) == (0.0, 1.0)
    assert wasserstein(a, np.array([2.0, 3.0, 4.0])) == pytest.approx(1.0)
    d, p = ks_2samp(a, np.array([np.nan]))
    assert np.isnan(d) and np.isnan(p) and np.isnan(wasserstein(np.zeros(0), a))




@pytest.mark.parametrize("df", [1, 2, 3, 4, 7, 12, 29, 60, 250, 10_000])
def test_student_t_quantiles_are_scipys(df: int) -> None:
    from scipy.stats import t

    for p in (0.9, 0.95, 0.975, 0.995):
        assert t_quantile(p, df) == pytest.approx(float(t.ppf(p, df)), rel=1e-9)


def test_mean_and_confidence_interval() -> None:
    mean, sd, half = mean_ci([1.0, 2.0, 3.0])
    assert (mean, sd) == (2.0, 1.0) and half == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-6)
    assert mean_ci([5.0, 5.0]) == (5.0, 0.0, 0.0)
    assert mean_ci([4.0])[0] == 4.0


def test_cohens_d_by_hand() -> None:
    # means 2 and 4, sample variances 1 and 4 (n = 3 each): pooled sd sqrt(2.5)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    assert cohens_d(a, b) == pytest.approx(2.0 / math.sqrt(2.5), rel=1e-12)
    assert cohens_d(b, a) == pytest.approx(-2.0 / math.sqrt(2.5), rel=1e-12)
    assert cohens_d(np.array([1.0, np.nan, 3.0]), np.array([1.0, 3.0])) == 0.0
    # constant samples: no spread, so any difference is infinitely large
    assert cohens_d(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == math.inf
    assert cohens_d(np.array([1.0, 1.0]), np.array([1.0])) == 0.0
    assert math.isnan(cohens_d(np.zeros(0), a))


def test_agreement_is_the_size_of_the_difference_against_a_tolerance() -> None:
    assert agreement(0.018, 0.02) == {"agree": True, "abs_diff": 0.018, "tolerance": 0.02}
    assert agreement(-0.03, 0.02) == {"agree": False, "abs_diff": 0.03, "tolerance": 0.02}
    assert agreement(None, 0.02)["agree"] is None and agreement(math.nan, 0.0)["agree"] is None
