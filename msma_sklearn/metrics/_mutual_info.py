"""Mutual information between multivariate representations (KSG estimator)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma
from sklearn.utils import check_random_state

__all__ = ["ksg_mutual_information"]


def ksg_mutual_information(X, Y, *, n_neighbors: int = 3, random_state=None) -> float:
    """Kraskov-Stögbauer-Grassberger estimate of I(X; Y) in nats (algorithm 1).

    A consistent k-nearest-neighbour estimator for continuous multivariate
    variables: for each sample, the distance to its ``n_neighbors``-th
    neighbour in the joint space (max-norm) sets the radius within which
    neighbours are counted in each marginal space.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
        One variable's samples.
    Y : array-like of shape (n_samples, n_features_y)
        The other's, row by row.
    n_neighbors : int, default=3
        k of the k-nearest-neighbour estimator.
    random_state : int, RandomState or None
        Seeds the tiny jitter (1e-10 of each column's scale) that breaks ties
        between identical samples.

    Returns
    -------
    float
        May be slightly negative when X and Y are independent (estimation
        noise); not clipped.

    Notes
    -----
    Columns are standardised first. The estimator suffers from the curse of
    dimensionality: reduce representations (e.g. PCA to <= 10 components)
    before calling it, as :class:`~msma_sklearn.segmentation.ScaleSegmenter`
    does.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1))
    >>> y = 0.8 * x + 0.6 * rng.normal(size=(2000, 1))   # corr 0.8
    >>> exact = -0.5 * np.log(1 - 0.8 ** 2)
    >>> bool(abs(ksg_mutual_information(x, y, random_state=0) - exact) < 0.05)
    True
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if Y.ndim == 1:
        Y = Y[:, None]
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must be 2-D with the same number of rows, got {X.shape} and {Y.shape}."
        )
    n = X.shape[0]
    if n <= n_neighbors:
        raise ValueError(f"Need more than n_neighbors={n_neighbors} samples, got {n}.")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite (no NaN or infinity).")
    rng = check_random_state(random_state)

    def prep(a):
        scale = a.std(axis=0)
        scale[scale == 0] = 1.0
        a = (a - a.mean(axis=0)) / scale
        return a + 1e-10 * rng.standard_normal(a.shape)

    X, Y = prep(X), prep(Y)
    joint = np.hstack([X, Y])
    dist, _ = cKDTree(joint).query(joint, k=n_neighbors + 1, p=np.inf)
    radius = np.nextafter(dist[:, -1], 0)  # strictly closer than the k-th neighbour
    nx = cKDTree(X).query_ball_point(X, r=radius, p=np.inf, return_length=True) - 1
    ny = cKDTree(Y).query_ball_point(Y, r=radius, p=np.inf, return_length=True) - 1
    return float(digamma(n_neighbors) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1)))
