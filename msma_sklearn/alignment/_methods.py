"""The alignment study's methods, each declared once: the baselines (name -> fitter) and
the ablation's MSMA rows (name -> λ).

``paired_ablation``, ``run_alignment_study``, ``msma run`` and the report read these
tables, so a new baseline is one :func:`register_baseline` call (and its tests) and a new
ablation row one entry of :data:`ABLATION_CONFIGS`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["ABLATION_CONFIGS", "BASELINES", "fit_baseline", "register_baseline"]

#: name -> (lambda_geo, lambda_info, lambda_curv); None is the unaligned baseline.
ABLATION_CONFIGS: dict[str, tuple[float, float, float] | None] = {
    "Baseline (no map)": None,
    "Full MSMA": (0.1, 0.1, 0.01),
    "No Geometry": (0.0, 0.1, 0.01),
    "No Information": (0.1, 0.0, 0.01),
    "No Curvature": (0.1, 0.1, 0.0),
    "Geometry only": (0.1, 0.0, 0.0),
    "Information only": (0.0, 0.1, 0.0),
    "Curvature only": (0.0, 0.0, 0.01),
    "λ_geo = 0.3": (0.3, 0.1, 0.01),
    "λ_geo = 0.5": (0.5, 0.1, 0.01),
    "λ_geo = 1.0": (1.0, 0.1, 0.01),
}

#: a baseline: ``fit(source_rows, target_rows)`` returning ``predict(source_rows)``
BaselineFit = Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]

#: the maps a reviewer compares MSMA with, in the order of the report's tables; each is
#: fitted on training rows only
BASELINES: dict[str, BaselineFit] = {}

#: canonical pairs of the CCA baseline
CCA_COMPONENTS = 8


def register_baseline(name: str, fit: BaselineFit | None = None):
    """Add a baseline to :data:`BASELINES` (usable as a decorator).

    Parameters
    ----------
    name : str
        Its name in the study's tables.
    fit : callable, default=None
        ``fit(S, T)`` on training rows (2-D float arrays with the same rows)
        returning ``predict(S_new) -> T_hat``; every statistic it uses must come
        from the rows it is given. None: return a decorator.

    Returns
    -------
    callable
        ``fit`` (or the decorator).

    Examples
    --------
    >>> @register_baseline("zero")
    ... def _zero(S, T):
    ...     return lambda X: np.zeros((len(X), T.shape[1]))
    >>> "zero" in BASELINES
    True
    >>> del BASELINES["zero"]
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A baseline needs a non-empty name, got {name!r}.")

    def add(f: BaselineFit) -> BaselineFit:
        if not callable(f):
            raise TypeError(f"A baseline must be callable, got {type(f).__name__}.")
        BASELINES[name] = f
        return f

    return add if fit is None else add(fit)


def fit_baseline(name: str, source, target):
    """Fit the baseline ``name`` from ``source`` to ``target`` rows; return ``predict(S)``.

    * ``"no map"``: the source as it is (same hidden space, so comparable);
    * ``"mean and scale"``: centred, divided by its RMS and put into the
      target's mean and RMS (no rotation: what matching moments alone gives);
    * ``"procrustes"``: the same standardisation plus the closed-form
      orthogonal map (:func:`rotation_from_cross`);
    * ``"least squares"``: ordinary least squares with an intercept on every
      training row (the geometry term's minimiser for a linear map, without the
      rows the aligner holds back for early stopping);
    * ``"ridge"``: ridge regression of the target on the source, its penalty
      chosen by efficient leave-one-out on the training rows (``RidgeCV``);
    * ``"cca"``: scikit-learn's CCA with :data:`CCA_COMPONENTS` pairs,
      predicting the target through the canonical space;
    * anything added with :func:`register_baseline`.

    Every statistic (means, RMS, rotation, coefficients) comes from the rows
    passed here, so a held-out evaluation stays held out.

    Parameters
    ----------
    name : str
        A key of :data:`BASELINES`.
    source, target : array-like of shape (n_rows, d_source) and (n_rows, d_target)
        Paired training rows.

    Returns
    -------
    callable
        ``predict(S_new)``.
    """
    S = np.asarray(source, dtype=np.float64)
    T = np.asarray(target, dtype=np.float64)
    if S.shape[0] != T.shape[0] or S.ndim != 2 or T.ndim != 2:
        raise ValueError(f"source and target need the same rows, got {S.shape} and {T.shape}.")
    if name not in BASELINES:
        raise ValueError(f"Unknown baseline {name!r}; choose from {list(BASELINES)}.")
    return BASELINES[name](S, T)


def _moments(S, T):
    mu_s, mu_t = S.mean(axis=0), T.mean(axis=0)
    rms_s = max(float(np.sqrt(np.mean((S - mu_s) ** 2))), 1e-12)
    rms_t = float(np.sqrt(np.mean((T - mu_t) ** 2)))
    return mu_s, mu_t, rms_s, rms_t


@register_baseline("no map")
def _no_map(S, T):
    return lambda X: np.asarray(X, dtype=np.float64)


@register_baseline("mean and scale")
def _mean_and_scale(S, T):
    mu_s, mu_t, rms_s, rms_t = _moments(S, T)
    return lambda X: (np.asarray(X, np.float64) - mu_s) / rms_s * rms_t + mu_t


@register_baseline("procrustes")
def _procrustes(S, T):
    from ._objective import rotation_from_cross

    mu_s, mu_t, rms_s, rms_t = _moments(S, T)
    rotation = rotation_from_cross((S - mu_s).T @ (T - mu_t))
    return lambda X: (np.asarray(X, np.float64) - mu_s) / rms_s @ rotation * rms_t + mu_t


@register_baseline("least squares")
def _least_squares(S, T):
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(S, T)
    return lambda X: model.predict(np.asarray(X, np.float64))


@register_baseline("ridge")
def _ridge(S, T):
    from sklearn.linear_model import RidgeCV

    model = RidgeCV(alphas=np.logspace(-3, 5, 17)).fit(S, T)
    return lambda X: model.predict(np.asarray(X, np.float64))


@register_baseline("cca")
def _cca(S, T):
    from sklearn.cross_decomposition import CCA

    k = max(1, min(CCA_COMPONENTS, S.shape[1], T.shape[1], S.shape[0] - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = CCA(n_components=k, max_iter=1000).fit(S, T)
    return lambda X: model.predict(np.asarray(X, np.float64))
