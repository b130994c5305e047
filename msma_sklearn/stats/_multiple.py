"""Multiple-comparison adjustments of p-values."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["benjamini_hochberg", "holm"]


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    Parameters
    ----------
    p_values : array-like of shape (m,)
        The unadjusted p-values of a family of m tests.

    Returns
    -------
    ndarray of shape (m,)
        Adjusted p-values, in the input's order: reject where below alpha for a
        family-wise error rate of alpha.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate; scipy's implementation).

    Parameters
    ----------
    p_values : array-like of shape (m,)
        The unadjusted p-values of a family of m tests.

    Returns
    -------
    ndarray of shape (m,)
        Adjusted p-values (q-values), in the input's order.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    return stats.false_discovery_control(p, method="bh")
