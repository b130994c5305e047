"""Metrics comparing two representations of the same samples.

Each comes in the form the original MSMA code used (named ``*_original`` or
``kind="diag_sum"``, for like-for-like reproduction of its README numbers)
and, where that form is unsound, a sound one.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "cca_similarity_original",
    "covariance_distance",
    "distance_correlation",
    "gaussian_kl",
    "histogram_mi_original",
    "procrustes_disparity",
]


def _pair(X, Y, *, same_width=False, min_samples=2, paired=True):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"X and Y must be 2-D, got shapes {X.shape} and {Y.shape}.")
    if paired and X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must describe the same samples: {X.shape[0]} rows vs {Y.shape[0]}."
        )
    if same_width and X.shape[1] != Y.shape[1]:
        raise ValueError(
            f"X and Y must have the same number of columns, got {X.shape[1]} and {Y.shape[1]}."
        )
    if min(X.shape[0], Y.shape[0]) < min_samples:
        raise ValueError(
            f"Need at least {min_samples} samples, got n_samples = {min(X.shape[0], Y.shape[0])}."
        )
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite (no NaN or infinity).")
    return X, Y


def gaussian_kl(X, Y, *, kind: str = "diag_mean", ridge: float = 1e-6) -> float:
    """KL(N_X || N_Y) between Gaussians fitted to two samples' moments, in nats.

    Parameters
    ----------
    X, Y : array-like of shape (n_samples, n_features)
        Same width; rows need not correspond.
    kind : {"diag_sum", "diag_mean", "full"}, default="diag_mean"
        ``"diag_sum"``: diagonal covariances, summed over dimensions -- the
        original MSMA code's metric, which grows with the dimension and the
        scale of the states (kept for reproducing its numbers);
        ``"diag_mean"``: the same, averaged per dimension;
        ``"full"``: full covariances.
    ridge : float, default=1e-6
        Added to variances (times the mean variance of Y) so that degenerate
        directions do not give infinities.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3))
    >>> gaussian_kl(x, x)
    0.0
    """
    X, Y = _pair(X, Y, same_width=True, paired=False)
    if kind not in ("diag_sum", "diag_mean", "full"):
        raise ValueError(f"kind must be 'diag_sum', 'diag_mean' or 'full', got {kind!r}.")
    mx, my = X.mean(0), Y.mean(0)
    eps = ridge * max(float(Y.var(0).mean()), 1e-300)
    if kind != "full":
        vx, vy = X.var(0) + eps, Y.var(0) + eps
        per_dim = 0.5 * (np.log(vy / vx) + (vx + (mx - my) ** 2) / vy - 1.0)
        return float(per_dim.sum() if kind == "diag_sum" else per_dim.mean())
    d = X.shape[1]
    sx = np.cov(X, rowvar=False, bias=True).reshape(d, d) + eps * np.eye(d)
    sy = np.cov(Y, rowvar=False, bias=True).reshape(d, d) + eps * np.eye(d)
    ly = np.linalg.cholesky(sy)
    solve = np.linalg.solve
    a = solve(ly, sx)
    trace = float(np.trace(solve(ly.T, a)))  # tr(Sy^-1 Sx)
    diff = solve(ly, my - mx)
    _, logdet_x = np.linalg.slogdet(sx)
    logdet_y = 2.0 * np.log(np.diag(ly)).sum()
    return float(0.5 * (trace + diff @ diff - d + logdet_y - logdet_x))


def histogram_mi_original(X, Y, *, bins: int = 64) -> float:
    """The original MSMA code's "mutual information", in nats -- not the MI between X and Y.

    Matched coordinates ``(X[i, j], Y[i, j])`` of all samples and dimensions
    are pooled into one 2-D histogram with ``bins`` equal-width bins per
    axis, and the MI of that histogram is returned. It measures how well one
    coordinate value predicts the matched one, across all coordinates, and is
    bounded by ``log(bins)`` (4.16 for 64). Kept only to re-measure the
    original README's numbers; use :func:`ksg_mutual_information` (on reduced
    dimensions) for the MI between representations.

    Parameters
    ----------
    X, Y : array-like of shape (n_samples, d)
        Same shape: coordinates are matched by row and column.
    bins : int, default=64
        Equal-width bins per axis.

    Returns
    -------
    float
        In nats, at most ``log(bins)``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(200, 4))
    >>> bool(histogram_mi_original(x, x) > 3.0)
    True
    """
    X, Y = _pair(X, Y, same_width=True)
    joint, _, _ = np.histogram2d(X.ravel(), Y.ravel(), bins=bins)
    p = joint / joint.sum()
    px, py = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / (px @ py)[nz])))


def distance_correlation(X, Y, *, max_samples: int = 1024, random_state=None) -> float:
    """Distance correlation (Székely et al. 2007) between two representations.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
        One representation of the samples.
    Y : array-like of shape (n_samples, n_features_y)
        Another representation of the same samples.
    max_samples : int, default=1024
        Above this many rows, a seeded random subsample of this size is used
        (the statistic costs O(n^2) memory).
    random_state : int, RandomState or None
        Seeds the subsample.

    Returns
    -------
    float in [0, 1]
        0 only under independence (in the population); 1 when Y is a
        similarity transform of X.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 3))
    >>> round(distance_correlation(x, 2 * x + 1), 6)
    1.0
    """
    X, Y = _pair(X, Y, min_samples=4)
    n = X.shape[0]
    if n > max_samples:
        rows = np.sort(check_random_state(random_state).choice(n, max_samples, replace=False))
        X, Y = X[rows], Y[rows]

    def centred_distances(Z):
        sq = np.einsum("ij,ij->i", Z, Z)
        D = np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0, None))
        return D - D.mean(0) - D.mean(1)[:, None] + D.mean()

    A, B = centred_distances(X), centred_distances(Y)
    dcov2 = (A * B).mean()
    denom = np.sqrt((A * A).mean() * (B * B).mean())
    if denom <= 0:
        return 0.0
    return float(np.sqrt(max(dcov2, 0.0) / denom))


def procrustes_disparity(X, Y) -> float:
    """Procrustes disparity: residual after the best translation, scaling and rotation.

    Both inputs are centred and scaled to unit Frobenius norm; the disparity
    is ``1 - (sum of singular values of X^T Y)^2``, in [0, 1], equal to
    :func:`scipy.spatial.procrustes`'s. A narrower input is zero-padded to
    the wider one's width.

    Parameters
    ----------
    X, Y : array-like of shape (n_samples, d_x) and (n_samples, d_y)
        Two representations of the same samples.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 3))
    >>> q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    >>> round(procrustes_disparity(x, 5 * x @ q + 2), 10)
    0.0
    """
    X, Y = _pair(X, Y)
    width = max(X.shape[1], Y.shape[1])
    X = np.pad(X, ((0, 0), (0, width - X.shape[1])))
    Y = np.pad(Y, ((0, 0), (0, width - Y.shape[1])))
    X = X - X.mean(0)
    Y = Y - Y.mean(0)
    nx, ny = np.linalg.norm(X), np.linalg.norm(Y)
    if nx == 0 or ny == 0:
        raise ValueError("Procrustes disparity is undefined for constant inputs.")
    s = np.linalg.svd((X / nx).T @ (Y / ny), compute_uv=False)
    return float(max(0.0, 1.0 - s.sum() ** 2))


def cca_similarity_original(X, Y, *, n_components: int = 32) -> float:
    """The original MSMA code's CCA similarity: PCA each side to ``n_components``,
    then the mean canonical correlation of a CCA fitted and measured on the
    same samples (so it is optimistic; kept for like-for-like reproduction).

    Parameters
    ----------
    X, Y : array-like of shape (n_samples, n_features)
        Two representations of the same samples.
    n_components : int, default=32
        PCA dimensions per side (at most the width and n_samples - 1).

    Returns
    -------
    float
        Mean absolute canonical correlation, in [0, 1].

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(100, 6))
    >>> round(cca_similarity_original(x, x @ np.eye(6)[::-1], n_components=4), 6)
    1.0
    """
    from sklearn.cross_decomposition import CCA
    from sklearn.decomposition import PCA

    X, Y = _pair(X, Y, min_samples=3)
    k = min(n_components, X.shape[1], Y.shape[1], X.shape[0] - 1)
    Xr = PCA(k, svd_solver="full").fit_transform(X)
    Yr = PCA(k, svd_solver="full").fit_transform(Y)
    u, v = CCA(n_components=k, max_iter=1000).fit(Xr, Yr).transform(Xr, Yr)
    corr = [np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(k)]
    return float(np.nanmean(np.abs(corr)))


def covariance_distance(X, Y, *, ridge: float = 1e-6) -> float:
    """Affine-invariant Riemannian distance between the covariances of X and Y.

    Uses geomstats' ``SPDAffineMetric`` on the manifold of symmetric positive
    definite matrices: ``|| log(Sx^-1/2 Sy Sx^-1/2) ||_F``. Invariant to any
    invertible linear map applied to both; 0 when the covariances agree.
    Rows need not correspond; widths must match (reduce with PCA first for
    wide states: the cost is cubic in the width).

    Parameters
    ----------
    X, Y : array-like of shape (n_x, d) and (n_y, d)
        Two clouds of the same width; rows need not correspond.
    ridge : float, default=1e-6
        Added to each covariance's diagonal (relative to Y's mean variance) so
        both are positive definite.

    Returns
    -------
    float

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(400, 3))
    >>> round(covariance_distance(x, x), 8)
    0.0
    """
    from geomstats.geometry.spd_matrices import SPDMatrices

    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must be 2-D with equal widths, got {X.shape} and {Y.shape}.")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("X and Y must be finite (no NaN or infinity).")
    d = X.shape[1]
    scale = max(float(np.trace(np.cov(Y, rowvar=False).reshape(d, d))) / d, 1e-300)
    sx = np.cov(X, rowvar=False).reshape(d, d) + ridge * scale * np.eye(d)
    sy = np.cov(Y, rowvar=False).reshape(d, d) + ridge * scale * np.eye(d)
    return float(SPDMatrices(d).metric.dist(sx, sy))
