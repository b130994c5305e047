"""Scorers for the λ search: each metric in scikit-learn's scorer protocol."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from msma_sklearn import ManifoldAligner
from msma_sklearn.alignment import ALIGNMENT_METRICS, alignment_score, get_alignment_scorer
from tests.alignment.test_aligner import three_scales


@pytest.mark.parametrize("metric", sorted(ALIGNMENT_METRICS))
def test_every_metric_is_a_scorer_and_the_aligners_own_score(metric):
    X = three_scales(n=200, noise=0.3)
    al = ManifoldAligner(lambda_info=0, lambda_curv=0, scoring=metric).fit(X[:150])
    scorer = get_alignment_scorer(metric)
    value = scorer(al, X[150:])
    assert np.isfinite(value) and value == al.score(X[150:]) == alignment_score(al, X[150:], metric)
    # a perfect map scores at least as well as a map of noise (higher is better)
    rng = np.random.default_rng(0)
    noise = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(rng.normal(size=X[:150].shape))
    if metric != "dcor":
        assert value >= scorer(noise, rng.normal(size=X[150:].shape))


def test_a_pipeline_is_scored_through_its_earlier_steps():
    X = three_scales(n=200, noise=0.3)
    pipe = make_pipeline(StandardScaler(), ManifoldAligner(lambda_info=0, lambda_curv=0)).fit(X)
    scorer = get_alignment_scorer("cka")
    assert scorer(pipe, X) == alignment_score(pipe[-1], pipe[0].transform(X), "cka")


def test_grid_search_takes_a_scorer_by_object():
    X = three_scales(n=240, noise=0.3)
    search = GridSearchCV(
        ManifoldAligner(lambda_curv=0, map="linear", random_state=0, max_iter=20),
        {"lambda_info": [0.0, 0.1]},
        scoring=get_alignment_scorer("retrieval"),
        cv=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert "AlignmentScorer('retrieval')" in repr(search.scoring)


def test_unknown_metrics_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"Unknown alignment metric 'mse'; choose from"):
        get_alignment_scorer("mse")
    with pytest.raises(ValueError, match="scoring"):
        ManifoldAligner(scoring="mse").fit(three_scales(n=50))
