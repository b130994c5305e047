"""What each term of the objective changes: refit without it, compare held-out predictions.

A term's share of the gradient (``term_gradient_share_``) measures its *pull*; what a
reader wants is its *effect*: how different the returned map is when the term is off.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone

__all__ = ["term_effects"]

_LAMBDAS = {"info": "lambda_info", "curv": "lambda_curv", "ot": "lambda_ot", "geo": "lambda_geo"}


def term_effects(aligner, X_train, X_test) -> dict:
    """Each active term's effect on held-out predictions, per pair of scales.

    For every term whose lambda is non-zero, ``aligner`` is cloned with that lambda
    set to 0 (same start, budget and ``random_state``, and ``early_stopping=False``
    for every fit, so all of them use the same rows), fitted on ``X_train``, and
    its predictions on ``X_test`` compared with those of the full objective:
    ``||f_full(S) - f_without(S)|| / ||f_full(S) - mean||`` in the target scale's
    standardised original coordinates (0: the term changes nothing).

    Parameters
    ----------
    aligner : ManifoldAligner
        Unfitted or fitted; it is cloned, never modified.
    X_train, X_test : array-like
        Scale features (``ScaleSegmenter`` output): the fitting rows and held-out
        rows.

    Returns
    -------
    effects : dict
        ``{term: {pair: relative change}}`` for each term with a non-zero lambda,
        plus ``"start"``: ``{pair: relative change}`` between the full objective's
        predictions and its start's (``prediction_change_`` on held-out rows).

    Examples
    --------
    >>> import numpy as np
    >>> from msma_sklearn import ManifoldAligner
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(300, 4))
    >>> X = np.hstack([z + 0.3 * rng.normal(size=z.shape) for _ in range(3)])
    >>> effects = term_effects(ManifoldAligner(1.0, 0.1, 0.0, map="linear", random_state=0),
    ...                        X[:240], X[240:])
    >>> sorted(effects), sorted(effects["info"])
    (['geo', 'info', 'start'], ['global->intermediate', 'intermediate->local'])
    """
    # every fit on the same rows: no validation split (a closed form would use every
    # row and a trained fit 90% of them, and that difference would pass for an effect)
    aligner = clone(aligner).set_params(early_stopping=False)
    full = clone(aligner).fit(X_train)
    predicted = _predictions(full, X_test)
    effects = {"start": _relative(predicted, _start_predictions(aligner, X_train, X_test))}
    for term, name in _LAMBDAS.items():
        if not getattr(aligner, name):
            continue
        without = clone(aligner).set_params(**{name: 0.0})
        if term == "geo" and not any(
            getattr(aligner, n) for t, n in _LAMBDAS.items() if t != "geo"
        ):
            continue  # nothing would be left to fit
        effects[term] = _relative(predicted, _predictions(without.fit(X_train), X_test))
    return effects


def _predictions(aligner, X) -> dict:
    mapped, _ = aligner._mapped(X)
    return {f"{a}->{b}": m for (a, b), m in mapped.items()}


def _start_predictions(aligner, X_train, X_test) -> dict:
    """The predictions of each map's untrained start: a refit whose steps are never
    checked, so no state is accepted and the start is returned."""
    probe = clone(aligner).set_params(max_iter=1, check_interval=10**9, critic_warmup=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "did not converge", "start returned": intended
        return _predictions(probe.fit(X_train), X_test)


def _relative(a: dict, b: dict) -> dict:
    out = {}
    for key, pa in a.items():
        pb = b[key]
        scale = np.linalg.norm(pa - pa.mean(0))
        out[key] = float(np.linalg.norm(pa - pb) / scale) if scale > 0 else 0.0
    return out
