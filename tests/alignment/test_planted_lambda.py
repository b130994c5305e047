"""λ that a search can choose between, on planted data: GridSearchCV must pick the setting
that the planted structure favours, scored by the metric the user tunes for."""

import warnings

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

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


def _search(X, grid, metric, **kw):
    base = dict(
        lambda_geo=1.0,
        scales=("a", "b"),
        pairs=[("a", "b")],
        n_components=None,
        random_state=0,
    )
    search = GridSearchCV(
        ManifoldAligner(**{**base, **kw}), grid, scoring=get_alignment_scorer(metric), cv=3
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return search.fit(X)


@pytest.mark.parametrize("seed", [0, 1])
def test_information_wins_retrieval_when_the_loud_directions_carry_nothing(seed):
    search = _search(
        loud_uninformative_target(300, seed),
        {"lambda_info": [0.0, 1.0]},
        "retrieval",
        lambda_curv=0.0,
        map="linear",
    )
    without, with_info = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"lambda_info": 1.0} and with_info > 1.2 * without


@pytest.mark.parametrize("seed", [0, 1])
def test_information_loses_r2_when_least_squares_is_the_answer(seed):
    search = _search(
        clean_linear_target(300, seed),
        {"lambda_info": [0.0, 1.0]},
        "r2",
        lambda_curv=0.0,
        map="linear",
    )
    without, with_info = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"lambda_info": 0.0} and without > with_info + 0.01


@pytest.mark.parametrize("seed", [0, 1])
def test_curvature_loses_r2_on_a_bent_target_for_an_mlp(seed):
    search = _search(
        bent_target(300, seed), {"lambda_curv": [0.0, 1.0]}, "r2", lambda_info=0.0, map="mlp"
    )
    without, with_curv = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"lambda_curv": 0.0} and without > with_curv + 0.01
