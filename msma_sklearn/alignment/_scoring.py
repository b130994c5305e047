"""Scorers for a λ search: what "a better alignment" means, chosen by the user.

Each metric compares the mapped held-out sources with their targets, pair by pair, in
the target scale's standardised original coordinates (``ManifoldAligner._mapped``);
the score is the mean over pairs, higher is better. :func:`get_alignment_scorer`
returns an object in scikit-learn's scorer protocol (``scorer(estimator, X, y=None)``),
so ``GridSearchCV(pipe, grid, scoring=get_alignment_scorer("ksg_mi"))`` tunes the λ for
mutual information; inside a ``Pipeline`` the last step must be the aligner.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from ..metrics import (
    distance_correlation,
    gaussian_kl,
    ksg_mutual_information,
    linear_cka,
    procrustes_disparity,
)
from ._evaluation import paired_r2, retrieval_top1

__all__ = ["ALIGNMENT_METRICS", "AlignmentScorer", "alignment_score", "get_alignment_scorer"]

#: dimensions the KSG estimate is computed in (PCA of each side; KSG needs few)
KSG_DIMENSIONS = 8


def _ksg(mapped, target) -> float:
    k = min(KSG_DIMENSIONS, mapped.shape[1], mapped.shape[0] - 1)
    a = PCA(k, svd_solver="full").fit_transform(mapped)
    b = PCA(k, svd_solver="full").fit_transform(target)
    return ksg_mutual_information(a, b, random_state=0)


#: name -> (what it measures, metric(mapped, target) with higher = better)
ALIGNMENT_METRICS = {
    "r2": ("held-out r² of the target by the mapped source (row by row)", paired_r2),
    "neg_kl": (
        "minus the Gaussian KL(f(S) || T), diagonal, per dimension (nats)",
        lambda m, t: -gaussian_kl(m, t, kind="diag_mean"),
    ),
    "ksg_mi": (f"KSG mutual information on PCA-{KSG_DIMENSIONS} of each side (nats)", _ksg),
    "cka": ("debiased linear CKA between f(S) and T", linear_cka),
    "retrieval": ("share of rows whose nearest target is their own pair", retrieval_top1),
    "neg_procrustes": (
        "minus the Procrustes disparity",
        lambda m, t: -procrustes_disparity(m, t),
    ),
    "dcor": (
        "distance correlation (1,024-row seeded subsample)",
        lambda m, t: distance_correlation(m, t, random_state=0),
    ),
}


def alignment_score(aligner, X, metric: str = "r2") -> float:
    """Mean over the fitted ``aligner``'s pairs of ``metric`` on rows ``X``.

    Parameters
    ----------
    aligner : fitted ManifoldAligner
        The maps to score.
    X : array-like
        Scale features of the rows to score (held-out rows, for a fair score).
    metric : str, default="r2"
        A key of :data:`ALIGNMENT_METRICS`.

    Returns
    -------
    score : float
        Higher is better.
    """
    if metric not in ALIGNMENT_METRICS:
        raise ValueError(
            f"Unknown alignment metric {metric!r}; choose from {sorted(ALIGNMENT_METRICS)}."
        )
    fn = ALIGNMENT_METRICS[metric][1]
    mapped, targets = aligner._mapped(X)
    return float(np.mean([fn(m, targets[pair]) for pair, m in mapped.items()]))


class AlignmentScorer:
    """A scikit-learn scorer: ``scorer(estimator, X, y=None) -> float``, higher is better.

    ``estimator`` is a fitted ManifoldAligner, or a Pipeline whose last step is one
    (the earlier steps transform ``X`` first).

    Parameters
    ----------
    metric : str
        A key of :data:`ALIGNMENT_METRICS`.
    """

    def __init__(self, metric: str):
        if metric not in ALIGNMENT_METRICS:
            raise ValueError(
                f"Unknown alignment metric {metric!r}; choose from {sorted(ALIGNMENT_METRICS)}."
            )
        self.metric = metric

    def __call__(self, estimator, X, y=None) -> float:
        aligner = estimator
        if hasattr(estimator, "steps"):  # a Pipeline: transform through the earlier steps
            for _, step in estimator.steps[:-1]:
                if step is not None and step != "passthrough":
                    X = step.transform(X)
            aligner = estimator.steps[-1][1]
        if not hasattr(aligner, "_mapped"):
            raise TypeError(
                f"AlignmentScorer scores a ManifoldAligner (or a Pipeline ending in one), got "
                f"{type(aligner).__name__}."
            )
        return alignment_score(aligner, X, self.metric)

    def __repr__(self) -> str:
        return f"AlignmentScorer({self.metric!r})"


def get_alignment_scorer(metric: str) -> AlignmentScorer:
    """The scorer for ``metric`` (a key of :data:`ALIGNMENT_METRICS`), for ``scoring=``.

    Parameters
    ----------
    metric : str
        A key of :data:`ALIGNMENT_METRICS`.

    Returns
    -------
    AlignmentScorer
        ``scorer(aligner, X, y=None)``, higher is better.

    Examples
    --------
    >>> import numpy as np
    >>> from msma_sklearn import ManifoldAligner
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(200, 4))
    >>> X = np.hstack([z, z, z])
    >>> aligner = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    >>> round(get_alignment_scorer("retrieval")(aligner, X), 3)
    1.0
    """
    return AlignmentScorer(metric)
