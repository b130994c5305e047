"""Effect sizes and tests for paired (baseline, intervened) measurements."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

__all__ = ["bootstrap_ci", "paired_cohens_d", "paired_effect", "percent_change"]


def _paired(baseline, treated):
    b = np.asarray(baseline, dtype=np.float64)
    t = np.asarray(treated, dtype=np.float64)
    if b.ndim != 1 or b.shape != t.shape:
        raise ValueError(
            f"baseline and treated must be 1-D and paired, got shapes {b.shape} and {t.shape}."
        )
    if b.size < 2:
        raise ValueError(f"Need at least 2 pairs, got {b.size}.")
    if not (np.isfinite(b).all() and np.isfinite(t).all()):
        raise ValueError("baseline and treated must be finite (no NaN or infinity).")
    return b, t


def percent_change(baseline, treated) -> float:
    """``100 * (mean(treated) - mean(baseline)) / |mean(baseline)|``.

    Parameters
    ----------
    baseline, treated : array-like of shape (n_pairs,)
        Paired measurements (finite, at least 2 pairs).

    Returns
    -------
    float
        The percent change; NaN when the baseline mean is 0.

    Examples
    --------
    >>> percent_change([2.0, 2.0], [3.0, 3.0])
    50.0
    """
    b, t = _paired(baseline, treated)
    denom = abs(b.mean())
    if denom == 0:
        return float("nan")
    return float(100.0 * (t.mean() - b.mean()) / denom)


def paired_cohens_d(baseline, treated) -> float:
    """Standardised mean difference of paired data: ``mean(d) / sd(d)``, ``d = treated - baseline``.

    (Cohen's d_z; 0 when nothing changes, nan when every difference is equal
    and non-zero has no spread -- reported as +/-inf.)

    Parameters
    ----------
    baseline, treated : array-like of shape (n_pairs,)
        Paired measurements (finite, at least 2 pairs).

    Returns
    -------
    float
        d_z; 0 when every difference is 0, signed inf when they are equal and not 0.

    Examples
    --------
    >>> round(paired_cohens_d([1, 2, 3, 4], [2, 2, 4, 5]), 4)
    1.5
    """
    b, t = _paired(baseline, treated)
    d = t - b
    sd = d.std(ddof=1)
    if sd == 0:
        return 0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf)
    return float(d.mean() / sd)


def bootstrap_ci(
    baseline,
    treated,
    statistic=paired_cohens_d,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    random_state=None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a paired statistic (pairs resampled together).

    Parameters
    ----------
    baseline, treated : array-like of shape (n_pairs,)
        Paired measurements (finite, at least 2 pairs).
    statistic : callable, default=paired_cohens_d
        ``statistic(baseline, treated) -> float``.
    n_resamples : int, default=2000
        Bootstrap resamples of the pairs.
    confidence : float, default=0.95
        Coverage of the interval.
    random_state : int, RandomState instance or None, default=None
        Seeds the resampling.

    Returns
    -------
    low, high : float
        The interval's ends (NaN when no resample gives a finite statistic).
    """
    b, t = _paired(baseline, treated)
    rng = check_random_state(random_state)
    idx = rng.randint(0, b.size, size=(n_resamples, b.size))
    values = np.array([statistic(b[i], t[i]) for i in idx])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_effect(baseline, treated, *, random_state=None) -> dict:
    """Percent change, paired Cohen's d with a bootstrap 95% CI, and a Wilcoxon test.

    Returns
    -------
    dict with keys ``baseline_mean, treated_mean, percent_change, cohens_d,
    ci_low, ci_high, wilcoxon_p, n``. ``wilcoxon_p`` is 1.0 when every
    difference is zero.

    Parameters
    ----------
    baseline, treated : array-like of shape (n_pairs,)
        Paired measurements (finite, at least 2 pairs).
    random_state : int, RandomState instance or None, default=None
        Seeds the bootstrap interval.
    """
    b, t = _paired(baseline, treated)
    d = t - b
    p = 1.0 if np.all(d == 0) else float(stats.wilcoxon(t, b, zero_method="wilcox").pvalue)
    lo, hi = bootstrap_ci(b, t, random_state=random_state)
    return {
        "baseline_mean": float(b.mean()),
        "treated_mean": float(t.mean()),
        "percent_change": percent_change(b, t),
        "cohens_d": paired_cohens_d(b, t),
        "ci_low": lo,
        "ci_high": hi,
        "wilcoxon_p": p,
        "n": int(b.size),
    }
