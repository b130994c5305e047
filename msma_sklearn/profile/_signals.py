"""Per-layer signals computed from states alone: angular distance between depths,
intrinsic dimension (TwoNN), and the largest unit's share of the norm. Pure functions
on arrays; each returns per-text values (or an estimate with its interval) so the
profile can state an interval over texts."""

from __future__ import annotations

import numpy as np

__all__ = ["angular_distance", "largest_unit_share", "mean_interval", "twonn_dimension"]


def angular_distance(a, b) -> np.ndarray:
    """Angular distance per row between two states of the same texts, in [0, 1].

    ``arccos(cos(a_i, b_i)) / pi`` (Gromov et al. 2024, "The Unreasonable
    Ineffectiveness of the Deeper Layers"): 0 for the same direction, 1 for
    opposite ones. A row of zeros is NaN.

    Parameters
    ----------
    a, b : array-like of shape (n_texts, n_features)
        Two states of the same texts.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> angular_distance([[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0]]).tolist()
    [0.5, 1.0]
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"a and b must be (n_texts, n_features) of one shape, got {a.shape}, {b.shape}."
        )
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.einsum("ij,ij->i", a, b) / norms
    cos = np.where(norms > 0, np.clip(cos, -1.0, 1.0), np.nan)
    return np.arccos(cos) / np.pi


def largest_unit_share(states) -> np.ndarray:
    """The largest unit's share of each row's L2 norm: ``max_i |h_i| / ||h||``.

    Near ``1/sqrt(d)`` for a state spread over its units, near 1 when one
    massive activation dominates (Sun et al. 2024). A row of zeros is NaN.

    Parameters
    ----------
    states : array-like of shape (n_texts, n_features)
        One state per text.

    Returns
    -------
    ndarray of shape (n_texts,)

    Examples
    --------
    >>> largest_unit_share([[3.0, 4.0], [0.0, 0.0]]).tolist()
    [0.8, nan]
    """
    h = np.abs(np.asarray(states, dtype=np.float64))
    norm = np.linalg.norm(h, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, h.max(axis=1) / norm, np.nan)


def mean_interval(values, *, n_bootstrap: int = 1000, confidence: float = 0.95, random_state=None):
    """Mean of the finite values and its percentile bootstrap interval (over the rows).

    Parameters
    ----------
    values : array-like of shape (n,)
        One value per text.
    n_bootstrap : int, default=1000
        Resamples.
    confidence : float, default=0.95
        Coverage.
    random_state : int, Generator or None
        Seeds the resamples.

    Returns
    -------
    mean, low, high : float
        NaN when no value is finite.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    boot = v[rng.integers(0, v.size, size=(n_bootstrap, v.size))].mean(axis=1)
    lo, hi = np.quantile(boot, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(v.mean()), float(lo), float(hi)


def twonn_dimension(
    X,
    *,
    discard: float = 0.1,
    n_subsamples: int = 20,
    subsample: float = 0.8,
    confidence: float = 0.95,
    random_state=None,
) -> tuple[float, float, float]:
    """Intrinsic dimension by TwoNN (Facco et al. 2017), with a subsampling interval.

    For each point the ratio ``mu = r2 / r1`` of its second to first
    nearest-neighbour distance follows a Pareto law with exponent ``d`` on a
    locally uniform ``d``-dimensional manifold; the estimate is the maximum
    slope of ``-log(1 - F(mu))`` against ``log mu`` through the origin (``F``
    the empirical distribution of ``mu``), fitted without the ``discard``
    share with the largest ``mu`` (the noisiest), as Facco et al. do. Points that coincide with their nearest neighbour (``r1 = 0``) are
    left out. The interval is the spread of the estimate over
    ``n_subsamples`` random subsets of ``subsample`` of the points (without
    replacement: a bootstrap with replacement would duplicate points and
    make ``r1 = 0``); TwoNN's own bias grows with ``d`` (it underestimates
    high dimensions on few points), and that is not in the interval.

    Parameters
    ----------
    X : array-like of shape (n_points, n_features)
        The points (e.g. one state per text).
    discard : float, default=0.1
        Share of the largest ratios dropped.
    n_subsamples : int, default=20
        Subsets behind the interval (0: no interval).
    subsample : float, default=0.8
        Share of the points in each subset.
    confidence : float, default=0.95
        Coverage of the interval.
    random_state : int, Generator or None
        Seeds the subsets.

    Returns
    -------
    dimension, low, high : float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 50))  # 3-d subspace
    >>> d, lo, hi = twonn_dimension(X, random_state=0)
    >>> bool(2.7 < d < 3.3)
    True
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 10:
        raise ValueError(
            f"X must be (n_points, n_features) with at least 10 points, got {X.shape}."
        )
    if not 0 <= discard < 1:
        raise ValueError(f"discard must lie in [0, 1), got {discard}.")
    d = _twonn(X, discard)
    if n_subsamples < 1:
        return d, float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    m = max(10, int(round(subsample * X.shape[0])))
    draws = [
        _twonn(X[rng.choice(X.shape[0], m, replace=False)], discard) for _ in range(n_subsamples)
    ]
    lo, hi = np.nanquantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return d, float(lo), float(hi)


def _twonn(X: np.ndarray, discard: float) -> float:
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=3).fit(X).kneighbors(X)
    r1, r2 = dist[:, 1], dist[:, 2]
    keep = r1 > 0
    mu = np.sort(r2[keep] / r1[keep])
    n = mu.size
    if n < 3:
        return float("nan")
    # Facco et al.'s fit: -log(1 - F(mu)) = d log(mu) through the origin, on the
    # empirical CDF of all points, the largest `discard` share left out of the fit
    cdf = np.arange(1, n + 1) / n
    used = max(2, int(np.floor(n * (1 - discard))))
    used = min(used, n - 1)  # F = 1 at the last point: -log(0)
    x, y = np.log(mu[:used]), -np.log(1 - cdf[:used])
    denominator = float((x * x).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")
