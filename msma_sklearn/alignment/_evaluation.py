"""Held-out metrics that respect pairing, and the test that compares two alignment methods
over repeated random splits (issue #15)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "BASELINES",
    "corrected_resampled_ttest",
    "fit_baseline",
    "paired_r2",
    "retrieval_top1",
]


def paired_r2(mapped, target) -> float:
    """Held-out coefficient of determination of ``target`` by ``mapped``, row by row.

    ``1 - sum((target - mapped)**2) / sum((target - mean(target))**2)`` over all
    entries (variance-weighted over dimensions): 1 for a perfect map, 0 for
    predicting each dimension's mean, negative when worse than that. Unlike KL
    between the two clouds, it depends on which row maps to which.

    Examples
    --------
    >>> T = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    >>> paired_r2(T, T), paired_r2(np.full_like(T, T.mean(0)), T)
    (1.0, 0.0)
    """
    a = np.asarray(mapped, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"mapped and target must be 2-D of one shape, got {a.shape}, {b.shape}.")
    total = np.sum((b - b.mean(axis=0)) ** 2)
    if total == 0:
        return float("nan")
    return float(1.0 - np.sum((b - a) ** 2) / total)


def retrieval_top1(mapped, target) -> float:
    """Share of rows whose nearest target row (cosine, after centring both on their
    own means) is their own pair; chance is ``1 / n_rows``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> T = rng.normal(size=(50, 8))
    >>> retrieval_top1(T + 0.01 * rng.normal(size=T.shape), T)
    1.0
    """
    a = np.asarray(mapped, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"mapped and target must be 2-D of one shape, got {a.shape}, {b.shape}.")
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    nearest = np.argmax(a @ b.T, axis=1)
    return float(np.mean(nearest == np.arange(len(a))))


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


#: the maps a reviewer compares MSMA with (issue #15), each fitted on training rows only
BASELINES = ("no map", "mean and scale", "procrustes", "ridge", "cca")


def fit_baseline(name: str, source, target, *, n_components: int = 8):
    """Fit one baseline map from ``source`` to ``target`` rows; return ``predict(S)``.

    * ``"no map"``: the source as it is (same hidden space, so comparable);
    * ``"mean and scale"``: centred, divided by its RMS and put into the
      target's mean and RMS (no rotation: what matching moments alone gives);
    * ``"procrustes"``: the same standardisation plus the closed-form
      orthogonal map (:func:`rotation_from_cross`);
    * ``"ridge"``: ridge regression of the target on the source, its penalty
      chosen by efficient leave-one-out on the training rows (``RidgeCV``);
    * ``"cca"``: scikit-learn's CCA with ``n_components`` pairs, predicting the
      target through the canonical space.

    Every statistic (means, RMS, rotation, coefficients) comes from the rows
    passed here, so a held-out evaluation stays held out.
    """
    from ._objective import rotation_from_cross

    S = np.asarray(source, dtype=np.float64)
    T = np.asarray(target, dtype=np.float64)
    if S.shape[0] != T.shape[0] or S.ndim != 2 or T.ndim != 2:
        raise ValueError(f"source and target need the same rows, got {S.shape} and {T.shape}.")
    mu_s, mu_t = S.mean(axis=0), T.mean(axis=0)
    rms_s = max(float(np.sqrt(np.mean((S - mu_s) ** 2))), 1e-12)
    rms_t = float(np.sqrt(np.mean((T - mu_t) ** 2)))
    if name == "no map":
        return lambda X: np.asarray(X, dtype=np.float64)
    if name == "mean and scale":
        return lambda X: (np.asarray(X, np.float64) - mu_s) / rms_s * rms_t + mu_t
    if name == "procrustes":
        rotation = rotation_from_cross((S - mu_s).T @ (T - mu_t))
        return lambda X: (np.asarray(X, np.float64) - mu_s) / rms_s @ rotation * rms_t + mu_t
    if name == "ridge":
        from sklearn.linear_model import RidgeCV

        model = RidgeCV(alphas=np.logspace(-3, 5, 17)).fit(S, T)
        return lambda X: model.predict(np.asarray(X, np.float64))
    if name == "cca":
        from sklearn.cross_decomposition import CCA

        k = max(1, min(n_components, S.shape[1], T.shape[1], S.shape[0] - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = CCA(n_components=k, max_iter=1000).fit(S, T)
        return lambda X: model.predict(np.asarray(X, np.float64))
    raise ValueError(f"Unknown baseline {name!r}; choose from {list(BASELINES)}.")
