"""Representation similarity: linear CKA (debiased or not), vectorised over layers."""

from __future__ import annotations

import numpy as np

__all__ = ["cka_matrix", "linear_cka"]


def _as_layers(layers) -> list[np.ndarray]:
    if isinstance(layers, np.ndarray):
        if layers.ndim != 3:
            raise ValueError(
                f"layers must be a 3-D array (n_layers, n_samples, n_features) or a list of "
                f"2-D arrays, got an array of shape {layers.shape}."
            )
        return [layers[i] for i in range(layers.shape[0])]
    out = [np.asarray(x) for x in layers]
    if not out:
        raise ValueError("layers is empty: pass at least one (n_samples, n_features) array.")
    for i, x in enumerate(out):
        if x.ndim != 2:
            raise ValueError(f"layers[{i}] must be 2-D (n_samples, n_features), got {x.shape}.")
        if x.shape[0] != out[0].shape[0]:
            raise ValueError(
                f"layers[{i}] has {x.shape[0]} samples but layers[0] has {out[0].shape[0]}."
            )
    return out


def _centered_gram(x: np.ndarray, debiased: bool) -> np.ndarray:
    """Linear Gram matrix of ``x`` (float64), centred.

    Debiased: U-centring (zero diagonal, row/column means corrected for the
    removed diagonal), whose Frobenius inner products are proportional to the
    unbiased HSIC estimator of Song et al. (2012). Otherwise the usual double
    centring ``H K H``.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    gram = x @ x.T
    n = gram.shape[0]
    if debiased:
        np.fill_diagonal(gram, 0.0)
        means = gram.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0.0)
    # else: features are centred, so the double-centred H K H is K itself
    return gram


def cka_matrix(layers, *, debiased: bool = True, block_size: int = 128) -> np.ndarray:
    """Linear CKA between every pair of layers, computed from Gram matrices.

    Parameters
    ----------
    layers : ndarray of shape (n_layers, n_samples, n_features) or list of 2-D arrays
        One representation per layer, rows aligned across layers (widths may
        differ between list entries).
    debiased : bool, default=True
        Use the unbiased HSIC estimator (Song et al. 2012), as recommended by
        Kornblith et al. (2019) for small sample sizes; the biased estimator
        gives spuriously high similarity between unrelated representations
        when features outnumber samples.
    block_size : int, default=128
        Rows of the Gram matrices built at a time; bounds memory.

    Returns
    -------
    S : ndarray of shape (n_layers, n_layers)
        Symmetric, 1 on the diagonal. A layer with no variance has similarity
        0 to every other layer. Debiased values can be slightly negative.

    Notes
    -----
    Features are centred once per layer. The centred Gram matrices are then
    built ``block_size`` rows at a time for all layers together, and one
    matrix product per block accumulates every pairwise Frobenius inner
    product. The U-centring of the debiased estimator needs only each row's
    squared norm (with centred features, the Gram matrix's row sums are
    minus its diagonal), so blocks are centred exactly without the full
    matrix. Cost: ``O(n_layers n^2 d + n_layers^2 n^2)`` time,
    ``O(n_layers n (d + block_size))`` memory.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 5))
    >>> q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    >>> S = cka_matrix([x, 3 * x @ q, rng.normal(size=(50, 5))])
    >>> round(float(S[0, 1]), 6), bool(abs(S[0, 2]) < 0.2)
    (1.0, True)
    """
    mats = _as_layers(layers)
    n = mats[0].shape[0]
    if n < 4:
        raise ValueError(
            f"CKA needs at least 4 samples (the debiased estimator divides by n - 3), "
            f"got n_samples = {n}."
        )
    centred = [np.asarray(x, dtype=np.float64) - np.mean(x, axis=0, dtype=np.float64) for x in mats]
    n_layers = len(centred)
    if debiased:
        # U-centring offsets: with the diagonal removed, row sums are -||x_i||^2.
        offsets = []
        for x in centred:
            m = -np.einsum("ij,ij->i", x, x) / (n - 2)
            offsets.append(m - m.sum() / (2 * (n - 1)))
    inner = np.zeros((n_layers, n_layers))
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        rows = np.arange(start, stop)
        block = np.empty((n_layers, stop - start, n))
        for i, x in enumerate(centred):
            np.matmul(x[start:stop], x.T, out=block[i])
            if debiased:
                block[i] -= offsets[i][start:stop, None]
                block[i] -= offsets[i][None, :]
                block[i, rows - start, rows] = 0.0
        flat = block.reshape(n_layers, -1)
        inner += flat @ flat.T
    norms = np.sqrt(np.clip(np.diag(inner), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        S = inner / np.outer(norms, norms)
    S[~np.isfinite(S)] = 0.0
    np.fill_diagonal(S, 1.0)
    return S


def linear_cka(X, Y, *, debiased: bool = True) -> float:
    """Linear CKA between two representations of the same samples.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features_x)
        One representation of the samples.
    Y : array-like of shape (n_samples, n_features_y)
        Another representation of the same samples.
    debiased : bool, default=True
        The debiased HSIC estimator (Song et al. 2012) instead of the biased one.

    Returns
    -------
    float
        1 for representations equal up to an isotropic scaling, rotation and shift.

    Examples
    --------
    >>> x = np.random.default_rng(1).normal(size=(30, 4))
    >>> round(linear_cka(x, 2.0 * x + 1.0), 6)
    1.0
    """
    return float(cka_matrix([np.asarray(X), np.asarray(Y)], debiased=debiased)[0, 1])
