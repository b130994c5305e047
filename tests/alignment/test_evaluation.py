"""Pairing-aware held-out metrics and the corrected resampled t-test (issue #15)."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from msma_sklearn.alignment import paired_r2, retrieval_top1
from msma_sklearn.stats import corrected_resampled_ttest


def test_paired_r2_is_sklearns_variance_weighted_r2():
    rng = np.random.default_rng(0)
    T = rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5]
    M = T + rng.normal(size=T.shape)
    assert paired_r2(M, T) == pytest.approx(r2_score(T, M, multioutput="variance_weighted"))
    # pairing matters: the same cloud, rows shuffled, explains nothing
    assert paired_r2(T[rng.permutation(40)], T) < 0.2 < paired_r2(M, T)


def test_retrieval_is_one_for_the_pairs_and_chance_for_a_shuffle():
    rng = np.random.default_rng(1)
    T = rng.normal(size=(200, 16))
    assert retrieval_top1(2.0 * T + 3.0, T) == 1.0  # invariant to scale and shift
    shuffled = [retrieval_top1(T[rng.permutation(200)], T) for _ in range(20)]
    assert np.mean(shuffled) < 0.03  # chance is 1/200
    with pytest.raises(ValueError, match="2-D of one shape"):
        retrieval_top1(T, T[:10])


def test_corrected_t_reduces_to_the_one_sample_t_without_overlap():
    d = np.random.default_rng(2).normal(0.1, 0.2, size=12)
    t, p = corrected_resampled_ttest(d, n_train=10**9, n_test=1)
    ref = stats.ttest_1samp(d, 0.0)
    assert t == pytest.approx(ref.statistic, rel=1e-6) and p == pytest.approx(ref.pvalue, rel=1e-5)
    # overlap between splits' training sets makes the test more conservative
    t_c, p_c = corrected_resampled_ttest(d, n_train=80, n_test=20)
    assert abs(t_c) < abs(t) and p_c > p
    assert np.isnan(corrected_resampled_ttest([0.1], 80, 20)[0])


def test_corrected_t_keeps_its_level_on_repeated_splits_of_a_null():
    """Oracle: two identical 'methods' scored on 10 repeated 80/20 splits of one data set;
    the score difference is pure split noise. The naive t-test rejects far too often, the
    corrected one near its level."""
    rng = np.random.default_rng(3)
    naive = corrected = 0
    n_sim = 300
    for _ in range(n_sim):
        x = rng.normal(size=100)  # per-row losses of A minus B, true mean 0
        diffs = []
        for _ in range(10):
            test = rng.choice(100, size=20, replace=False)
            diffs.append(x[test].mean())
        naive += stats.ttest_1samp(diffs, 0.0).pvalue < 0.05
        corrected += corrected_resampled_ttest(diffs, 80, 20)[1] < 0.05
    assert naive / n_sim > 0.15
    assert corrected / n_sim < 0.08


def test_baselines_recover_what_their_family_can_on_planted_maps():
    from scipy.stats import ortho_group

    from msma_sklearn.alignment import BASELINES, fit_baseline

    rng = np.random.default_rng(4)
    d = 6
    S = rng.normal(size=(300, d)) * np.linspace(0.5, 2.0, d)
    R = ortho_group.rvs(d, random_state=5)
    T = 3.0 * S @ R + 5.0 + 0.01 * rng.normal(size=S.shape)
    train, test = slice(0, 240), slice(240, 300)
    r2 = {
        name: paired_r2(fit_baseline(name, S[train], T[train])(S[test]), T[test])
        for name in BASELINES
    }
    # a rotation, a scale and a shift: Procrustes and ridge recover it, moments alone do not
    assert r2["procrustes"] > 0.999 and r2["ridge"] > 0.999 and r2["least squares"] > 0.999
    assert r2["mean and scale"] < 0.5 and r2["no map"] < 0
    assert r2["cca"] > 0.8  # predicts through the canonical space: close, not exact
    moments = fit_baseline("mean and scale", S[train], T[train])(S[train])
    np.testing.assert_allclose(moments.mean(0), T[train].mean(0), atol=1e-9)
    with pytest.raises(ValueError, match="Unknown baseline 'pca'"):
        fit_baseline("pca", S, T)


def test_paired_ablation_scores_every_method_alike_and_the_comparison_can_fail():
    """Planted: the target scale is a rotation of the source plus noise. Procrustes should
    beat 'mean and scale' (supported); 'no map' cannot beat Procrustes (contradicted)."""
    from scipy.stats import ortho_group

    from msma_sklearn.alignment import compare_methods, paired_ablation

    rng = np.random.default_rng(6)
    S = rng.normal(size=(120, 12)) * np.linspace(0.5, 2.0, 12)
    T = S @ ortho_group.rvs(12, random_state=7) + 0.3 * rng.normal(size=S.shape)
    res = paired_ablation(
        {"local": S, "global": T},
        configs={"Geometry only": (0.1, 0.0, 0.0)},
        map="orthogonal",
        n_splits=10,
        max_iter=20,
        init="least_squares",  # the closed form, for the equality below
    )
    assert {k: res.attrs[k] for k in ("n_train", "n_test", "n_components")} == {
        "n_train": 96,
        "n_test": 24,
        "n_components": 12,
    }
    assert [f["method"] for f in res.attrs["fits"]] == ["Geometry only"] * 10
    assert set(res["method"]) == {
        "no map",
        "mean and scale",
        "procrustes",
        "least squares",
        "ridge",
        "cca",
        "Geometry only",
    }
    assert (res.groupby(["method", "metric"]).size() == 10).all()  # 10 splits x 1 pair
    verdicts = compare_methods(res, "procrustes", ["mean and scale"]).iloc[0]
    assert verdicts["verdict"] == "supported" and verdicts["n_splits"] == 10
    assert compare_methods(res, "no map", ["procrustes"]).iloc[0]["verdict"] == "contradicted"
    # the orthogonal aligner with only the geometry term is the closed form: the same numbers
    r2 = res[res.metric == "r2"].groupby("method")["value"].mean()
    assert r2["Geometry only"] == pytest.approx(r2["procrustes"], abs=1e-6)


def test_paired_ablation_z_scores_units_so_a_rogue_unit_does_not_decide_r2():
    """Planted: two scales share one huge unit (a decoder's rogue dimension) and nothing
    else. Raw coordinates: 'no map' scores r² near 1 from that unit alone. By default each
    unit is z-scored on the training rows, and the unrelated units decide (r² <= ~0)."""
    from msma_sklearn.alignment import paired_ablation

    rng = np.random.default_rng(11)
    n, width = 200, 10
    rogue = 1000.0 * rng.normal(size=n)
    S, T = rng.normal(size=(n, width)), rng.normal(size=(n, width))
    S[:, 0] = T[:, 0] = rogue
    kwargs = dict(configs={}, baselines=("no map",), n_splits=3)
    raw = paired_ablation({"local": S, "global": T}, standardize=False, **kwargs)
    std = paired_ablation({"local": S, "global": T}, **kwargs)
    r2_raw = raw[raw.metric == "r2"]["value"].mean()
    r2_std = std[std.metric == "r2"]["value"].mean()
    assert r2_raw > 0.99
    assert r2_std < 0.0  # one shared unit of ten, nine unrelated ones with variance 1 + 1


def test_paired_ablation_fits_the_scales_on_training_texts_only(monkeypatch):
    from msma_sklearn import ScaleSegmenter
    from msma_sklearn.alignment import paired_ablation

    rng = np.random.default_rng(8)
    n, width = 60, 4
    base = rng.normal(size=(n, width))
    # 6 layers in two planted blocks: 0-2 share one signal, 3-5 another
    other = rng.normal(size=(n, width))
    layers = [base + 0.1 * rng.normal(size=(n, width)) for _ in range(3)]
    layers += [other + 0.1 * rng.normal(size=(n, width)) for _ in range(3)]
    X = np.hstack(layers)
    seen = []
    real_fit = ScaleSegmenter.fit

    def spy(self, X_fit, y=None):
        seen.append(len(X_fit))
        return real_fit(self, X_fit, y)

    monkeypatch.setattr(ScaleSegmenter, "fit", spy)
    seg = ScaleSegmenter(n_scales=2, scale_names=["low", "high"], layers=6, min_scale_size=2)
    res = paired_ablation(X, segmenter=seg, configs={}, n_splits=3, rows_per_dim=5)
    assert seen == [48, 48, 48]  # the training rows of each split, never all 60
    assert res.attrs["scale_layers"] == [{"low": [0, 1, 2], "high": [3, 4, 5]}] * 3
    assert set(res["pair"]) == {"low->high"}
