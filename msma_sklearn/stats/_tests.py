"""Tests, power and sensitivity for paired designs and repeated random splits."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = [
    "corrected_resampled_ttest",
    "detectable_advantage",
    "minimum_detectable_effect",
    "paired_power",
    "tost_paired",
]


def corrected_resampled_ttest(differences, n_train: int, n_test: int) -> tuple[float, float]:
    """Nadeau & Bengio's corrected resampled t-test over repeated random splits.

    ``differences`` holds one score difference (method A - method B) per split;
    the splits share training rows, so the naive variance of their mean is too
    small. The correction multiplies it by ``1/J + n_test/n_train`` instead of
    ``1/J`` (Nadeau & Bengio 2003, "Inference for the generalization error").

    Returns
    -------
    t : float
    p : float
        Two-sided, Student t with ``J - 1`` degrees of freedom; NaN with fewer
        than two splits or no spread.

    Parameters
    ----------
    differences : array-like of shape (n_splits,)
        One score difference per split (non-finite values are dropped).
    n_train, n_test : int
        Training and test rows of each split.

    Examples
    --------
    >>> t, p = corrected_resampled_ttest([0.02, 0.03, 0.01, 0.04, 0.02], 80, 20)
    >>> round(t, 2), round(p, 3)
    (3.14, 0.035)
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    j = d.size
    if j < 2 or n_train < 1 or n_test < 1:
        return float("nan"), float("nan")
    var = d.var(ddof=1)
    if var == 0:
        return float("nan"), float("nan")
    t = d.mean() / math.sqrt((1.0 / j + n_test / n_train) * var)
    return float(t), float(2 * stats.t.sf(abs(t), j - 1))


def detectable_advantage(
    differences, n_train: int, n_test: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The mean advantage the corrected resampled t-test detects with ``power``.

    With the spread of ``differences`` (one per split) and Nadeau & Bengio's
    variance correction: ``(t_{1-alpha/2} + t_{power}) * sqrt((1/J +
    n_test/n_train) * var)``, Student t with ``J - 1`` degrees of freedom
    (the usual approximation of the noncentral t). NaN with fewer than two
    splits.

    Parameters
    ----------
    differences : array-like of shape (n_splits,)
        One score difference per split; only their spread is used.
    n_train, n_test : int
        Training and test rows of each split.
    alpha : float, default=0.05
        Two-sided level of the test (pass the Holm-adjusted level a verdict uses).
    power : float, default=0.8
        Probability of detecting the advantage.

    Returns
    -------
    float
        The smallest mean advantage detected with ``power``.

    Examples
    --------
    >>> round(detectable_advantage([0.02, 0.03, 0.01, 0.04, 0.02], 80, 20), 4)
    0.0284
    """
    from scipy import stats

    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    j = d.size
    if j < 2 or n_train < 1 or n_test < 1:
        return float("nan")
    quantiles = stats.t.ppf(1 - alpha / 2, j - 1) + stats.t.ppf(power, j - 1)
    return float(quantiles * math.sqrt((1.0 / j + n_test / n_train) * d.var(ddof=1)))


def paired_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of a one-sided paired t-test to detect a mean difference ``effect``.

    ``sd`` is the standard deviation of the paired differences and ``n`` the
    number of pairs; the power is that of rejecting "no difference" in the
    direction of ``effect`` at level ``alpha`` (noncentral t distribution).

    Parameters
    ----------
    effect : float
        The mean paired difference to detect.
    sd : float
        Standard deviation of the paired differences.
    n : int
        Number of pairs.
    alpha : float, default=0.05
        One-sided level.

    Returns
    -------
    float
        The power (NaN with fewer than 2 pairs or no spread).
    """
    if n < 2 or not np.isfinite(sd) or sd <= 0:
        return float("nan")
    df = n - 1
    noncentrality = abs(effect) / sd * np.sqrt(n)
    critical = stats.t.ppf(1 - alpha, df)
    return float(stats.nct.sf(critical, df, noncentrality))


def minimum_detectable_effect(n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest standardised paired effect ``d_z`` a one-sided paired t-test on ``n``
    pairs detects with probability ``power`` at level ``alpha`` (a design's sensitivity).

    Parameters
    ----------
    n : int
        Number of pairs.
    alpha : float, default=0.05
        One-sided level.
    power : float, default=0.8
        Probability of detection.

    Returns
    -------
    float
        The smallest detectable ``d_z`` (NaN with fewer than 2 pairs).

    Examples
    --------
    >>> round(minimum_detectable_effect(24, 0.05, 0.8), 2)
    0.52
    """
    if n < 2:
        return float("nan")
    if not (0 < alpha < 1 and alpha < power < 1):
        raise ValueError(f"Need 0 < alpha < power < 1, got alpha={alpha}, power={power}.")
    from scipy.optimize import brentq

    return float(brentq(lambda d: paired_power(d, 1.0, n, alpha) - power, 1e-6, 50.0))


def tost_paired(differences, margin: float) -> float:
    """Two one-sided tests that the mean paired difference lies within ``(-margin, margin)``.

    Returns the TOST p-value: the larger of the two one-sided t-test
    p-values (Schuirmann 1987). Small means "equivalent to zero within the
    margin".

    Parameters
    ----------
    differences : array-like of shape (n_pairs,)
        Paired differences.
    margin : float
        Positive half-width of the equivalence interval.

    Returns
    -------
    float
        The TOST p-value (NaN with fewer than 2 differences).
    """
    d = np.asarray(differences, dtype=np.float64)
    if margin <= 0 or not np.isfinite(margin):
        raise ValueError(f"margin must be positive and finite, got {margin}.")
    if d.size < 2:
        return float("nan")
    above = stats.ttest_1samp(d, -margin, alternative="greater").pvalue
    below = stats.ttest_1samp(d, margin, alternative="less").pvalue
    return float(max(above, below))
