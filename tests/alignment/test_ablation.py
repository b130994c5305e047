"""The ablation runner and the full-pipeline lambda search."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, ShuffleSplit
from sklearn.pipeline import make_pipeline

from msma_sklearn import HiddenStateExtractor, ManifoldAligner, ScaleSegmenter
from msma_sklearn.alignment import alignment_ablation, summarise_ablation
from msma_sklearn.metrics import gaussian_kl
from tests.alignment.test_aligner import three_scales

CONFIGS = {
    "Baseline (no map)": None,
    "Geometry only": (0.1, 0.0, 0.0),
    "Full MSMA": (0.1, 0.1, 0.01),
}


@pytest.fixture(scope="module")
def results():
    X = three_scales(n=150, d=5)
    return X, alignment_ablation(X, configs=CONFIGS, n_seeds=2, max_iter=20)


def test_long_format_and_baseline_is_the_unmapped_scales(results):
    X, res = results
    assert set(res.columns) == {"config", "seed", "pair", "metric", "value"}
    assert len(res) == 3 * 2 * 2 * 8  # configs x seeds x pairs x metrics
    _, test = next(ShuffleSplit(1, test_size=0.2, random_state=0).split(np.zeros(150)))
    glob, inter = X[test, 10:], X[test, 5:10]
    base = res.query(
        "config == 'Baseline (no map)' and seed == 0 and metric == 'kl_sum' "
        "and pair == 'global->intermediate'"
    )["value"].item()
    assert base == pytest.approx(gaussian_kl(glob, inter, kind="diag_sum"))


def test_alignment_beats_no_map_on_kl(results):
    _, res = results
    kl = res.query("metric == 'kl_mean'").groupby("config")["value"].mean()
    assert kl["Geometry only"] < kl["Baseline (no map)"]


def test_seeded_repeat_and_summary(results):
    X, res = results
    again = alignment_ablation(X, configs=CONFIGS, n_seeds=2, max_iter=20)
    np.testing.assert_allclose(res["value"], again["value"])
    table = summarise_ablation(res)
    assert list(table.index) == list(CONFIGS)
    per_seed = (
        res.query("config == 'Full MSMA' and metric == 'cka'").groupby("seed")["value"].mean()
    )
    assert table.loc["Full MSMA", ("cka", "mean")] == pytest.approx(per_seed.mean())
    assert table.loc["Full MSMA", ("cka", "sd")] == pytest.approx(per_seed.std())


def test_grid_search_over_a_full_pipeline(texts):
    pipe = make_pipeline(
        HiddenStateExtractor("tiny-gpt2"),
        ScaleSegmenter(),
        ManifoldAligner(max_iter=10, random_state=0),
    ).set_output(transform="pandas")
    grid = GridSearchCV(
        pipe,
        {"manifoldaligner__lambda_geo": [0.1, 1.0], "manifoldaligner__lambda_info": [0.0, 0.1]},
        cv=2,
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(texts * 4)
    scores = grid.cv_results_["mean_test_score"]
    assert scores.shape == (4,) and np.all(np.isfinite(scores))
    assert set(grid.best_params_) == {"manifoldaligner__lambda_geo", "manifoldaligner__lambda_info"}


def test_return_fits_reports_each_map_but_not_the_baseline():
    X = three_scales(n=150, d=5)
    long, fits = alignment_ablation(X, configs=CONFIGS, n_seeds=2, max_iter=20, return_fits=True)
    assert len(fits) == 2 * 2 * 2  # fitted configs (no baseline) x seeds x pairs
    assert "Baseline (no map)" not in set(fits["config"])
    shares = fits[["share_geo", "share_info", "share_curv"]].sum(axis=1)
    np.testing.assert_allclose(shares, 1.0)
    geo_only = fits.query("config == 'Geometry only'")
    assert (geo_only["share_info"] == 0).all() and (geo_only["share_geo"] == 1).all()
    assert (fits["n_steps"] > 0).all()
    # the metrics table is unchanged by asking for the fits
    plain = alignment_ablation(X, configs=CONFIGS, n_seeds=2, max_iter=20)
    np.testing.assert_allclose(long["value"], plain["value"])
