"""λ that a search can choose between, on planted data: GridSearchCV must pick the setting
that the planted structure favours, scored by the metric the user tunes for."""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold

from msma_sklearn import ManifoldAligner
from msma_sklearn.alignment import get_alignment_scorer

D, SIGNAL = 24, 8


def _source(rng, n):
    z = rng.normal(size=(n, SIGNAL))
    rotation = np.linalg.qr(rng.normal(size=(D, D)))[0]
    return z, np.hstack([z, 0.3 * rng.normal(size=(n, D - SIGNAL))]) @ rotation


def loud_uninformative_target(n, seed):
    """The target's geometry is dominated by loud directions that carry nothing about the
    source; the informative ones are quiet."""
    rng = np.random.default_rng(seed)
    z, S = _source(rng, n)
    T = np.hstack(
        [0.3 * z @ rng.normal(size=(SIGNAL, SIGNAL)), 3.0 * rng.normal(size=(n, D - SIGNAL))]
    )
    return np.hstack([S, T])


def clean_linear_target(n, seed):
    """A linear image of the source's signal, little noise: least squares is the answer."""
    rng = np.random.default_rng(seed)
    z, S = _source(rng, n)
    T = np.hstack([z @ rng.normal(size=(SIGNAL, SIGNAL)), 0.3 * rng.normal(size=(n, D - SIGNAL))])
    return np.hstack([S, T])


def bent_target(n, seed):
    """A curved, nearly noise-free image of the source's signal."""
    rng = np.random.default_rng(seed)
    z, S = _source(rng, n)
    A = rng.normal(size=(SIGNAL, SIGNAL))
    T = np.hstack(
        [np.tanh(2 * z @ A / 3), np.sin(2 * z[:, :4]), 0.05 * rng.normal(size=(n, D - 12))]
    )
    return np.hstack([S, T])


def document_offsets_target(n, seed, n_docs=40):
    """Rows come from documents: each document shifts the source in directions that carry
    no signal (so the source's neighbourhoods are documents) and shifts the target by an
    offset of its own that nothing in the source predicts. Least squares memorises the
    training documents' offsets through the source's document directions; the curvature
    term compares neighbourhood Laplacians, which a per-document offset cancels from (a
    within-document, fixed-effects fit). Held-out rows are whole documents."""
    rng = np.random.default_rng(seed)
    per = n // n_docs
    groups = np.repeat(np.arange(n_docs), per)
    z = rng.normal(size=(len(groups), SIGNAL))
    rotation = np.linalg.qr(rng.normal(size=(D, D)))[0]
    noise = 0.3 * rng.normal(size=(len(groups), D - SIGNAL))
    doc_source = rng.normal(size=(n_docs, D - SIGNAL))[groups]
    S = np.hstack([z, noise + doc_source]) @ rotation
    T = np.hstack(
        [z @ rng.normal(size=(SIGNAL, SIGNAL)), 0.3 * rng.normal(size=(len(groups), D - SIGNAL))]
    )
    T = T + rng.normal(size=(n_docs, D))[groups]
    return np.hstack([S, T]), groups


def _search(X, grid, metric, groups=None, **kw):
    base = dict(
        lambda_geo=1.0,
        scales=("a", "b"),
        pairs=[("a", "b")],
        n_components=None,
        random_state=0,
    )
    cv = 3 if groups is None else GroupKFold(3)
    search = GridSearchCV(
        ManifoldAligner(**{**base, **kw}), grid, scoring=get_alignment_scorer(metric), cv=cv
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return search.fit(X, groups=groups)


CASES = {
    # the loud directions carry nothing: the information term wins held-out retrieval.
    # With validation choosing the checkpoint (0.053 / 0.059 against 0.028 / 0.022 on
    # seeds 0 / 1, whatever the thread count); trained to convergence on every row (the
    # default) its gain is within a few of the ~107 held-out rows and changes sign with
    # the data size and the thread count, so the default is not what this case tests
    "information wins retrieval": (
        loud_uninformative_target,
        "lambda_info",
        "retrieval",
        dict(lambda_curv=0.0, map="linear", early_stopping=True),
        1.0,
    ),
    # least squares is the answer: the information term loses held-out r²
    "information loses r2": (
        clean_linear_target,
        "lambda_info",
        "r2",
        dict(lambda_curv=0.0, map="linear"),
        0.0,
    ),
    # per-document target offsets that least squares memorises: the curvature term wins
    # held-out r² on unseen documents
    "curvature wins r2": (
        document_offsets_target,
        "lambda_curv",
        "r2",
        dict(lambda_info=0.0, map="linear"),
        1.0,
    ),
    # a curved image fitted by an MLP: the curvature term loses held-out r²
    "curvature loses r2": (bent_target, "lambda_curv", "r2", dict(lambda_info=0.0, map="mlp"), 0.0),
}


#: how clearly a term must win, by metric: (factor, absolute gain) over the term left out
WIN_MARGIN = {"retrieval": (1.2, 0.01), "r2": (1.05, 0.03)}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", list(CASES))
def test_the_search_picks_the_setting_the_planted_structure_favours(case, seed):
    make, param, metric, kw, expected = CASES[case]
    data = make(320, seed)
    X, groups = data if isinstance(data, tuple) else (data, None)
    search = _search(X, {param: [0.0, 1.0]}, metric, groups=groups, **kw)
    off, on = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {param: expected}
    if expected:  # the term must win clearly, not by a tie broken in grid order
        factor, gain = WIN_MARGIN[metric]
        assert on > factor * off and on > off + gain
    else:
        assert off > on + 0.01
