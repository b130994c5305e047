"""ManifoldAligner and the objective's terms."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from msma_sklearn import ManifoldAligner
from msma_sklearn.alignment import (
    BilinearCritic,
    infonce_bound,
    knn_graph,
    mean_curvature_loss,
    ot_loss,
    procrustes_rotation,
)
from msma_sklearn.alignment._objective import make_map


def three_scales(n=300, d=6, noise=0.3, seed=0):
    """local = z + e, intermediate = z Q1 + e, global = z Q1 Q2 + e."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
    q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    blocks = [z, z @ q1, z @ q1 @ q2]
    return np.hstack([b + noise * rng.normal(size=b.shape) for b in blocks])


def _standardised(B):
    Z = B - B.mean(0)
    return Z / np.sqrt((Z**2).mean())


def test_procrustes_special_case_equals_scipy():
    X = three_scales()
    al = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    d = 6
    local, inter, glob = X[:, :d], X[:, d : 2 * d], X[:, 2 * d :]
    for (src, tgt), key in [
        ((glob, inter), "global->intermediate"),
        ((inter, local), "intermediate->local"),
    ]:
        R, _ = orthogonal_procrustes(_standardised(src), _standardised(tgt))
        np.testing.assert_allclose(al.coef_[key], R, atol=1e-6)
    assert al.n_iter_.tolist() == [0, 0]


def test_trained_orthogonal_map_stays_orthogonal_and_inverse_transform():
    X = three_scales()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        al = ManifoldAligner(random_state=0, max_iter=30).fit(X)
    for W in al.coef_.values():
        np.testing.assert_allclose(W.T @ W, np.eye(6), atol=1e-5)
    Z = al.transform(X)
    back = al.inverse_transform(Z)
    np.testing.assert_allclose(back[:, :6], X[:, 12:], atol=1e-4)  # global recovered
    np.testing.assert_allclose(back[:, 6:], X[:, 6:12], atol=1e-4)  # intermediate recovered


def test_rotation_and_translation_invariance_of_the_score():
    X = three_scales(seed=1)
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    moved = X.copy()
    moved[:, 12:] = X[:, 12:] @ q + 5.0  # rotate and shift the global scale
    a = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    b = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(moved)
    assert a.score(X) == pytest.approx(b.score(moved), abs=1e-6)  # float32 maps
    assert a.score(X) > 0.8


def test_infonce_bound_below_true_mi_on_gaussians():
    rng = np.random.default_rng(0)
    rho, d, n = 0.8, 2, 512
    x = rng.normal(size=(n, d))
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(n, d))
    true_mi = -0.5 * d * np.log(1 - rho**2)
    a, t = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    critic = BilinearCritic(d, d)
    opt = torch.optim.Adam(critic.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        (-infonce_bound(critic, a, t)).backward()
        opt.step()
    bound = infonce_bound(critic, a, t).item()
    assert 0.5 * true_mi < bound <= true_mi + 0.05
    assert bound <= np.log(n)
    shuffled = t[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    assert infonce_bound(critic, a, shuffled).item() < 0.1  # no information once shuffled


def _circle(radius, n=24):
    angles = 2 * np.pi * np.arange(n) / n
    return torch.tensor(
        np.c_[radius * np.cos(angles), radius * np.sin(angles)], dtype=torch.float64
    )


def test_mean_curvature_on_circles_matches_the_closed_form():
    """On n equally spaced points of a circle, x_i - (x_{i-1} + x_{i+1}) / 2 points to the
    centre with length r (1 - cos(2 pi / n)): the discrete mean-curvature vector."""
    n, r1, r2 = 24, 1.0, 3.0
    small, large = _circle(r1, n), _circle(r2, n)
    neighbors = knn_graph(small, k=2)
    assert sorted(neighbors[0].tolist()) == [1, n - 1]
    shrink = 1 - np.cos(2 * np.pi / n)
    raw = mean_curvature_loss(small, large, neighbors, normalize=False).item()
    assert raw == pytest.approx((r1 - r2) ** 2 * shrink**2 / 2, rel=1e-9)
    assert mean_curvature_loss(large, large, neighbors).item() == pytest.approx(0.0, abs=1e-12)
    flat = torch.zeros_like(large)  # every neighbourhood mapped flat scores 1
    assert mean_curvature_loss(flat, large, neighbors).item() == pytest.approx(1.0)
    ratio = mean_curvature_loss(small, large, neighbors).item()
    assert ratio == pytest.approx((r1 - r2) ** 2 / r2**2, rel=1e-9)


@pytest.mark.parametrize("kind", ["orthogonal", "linear", "mlp"])
def test_curvature_term_has_a_gradient_at_the_procrustes_start(kind):
    # a curved source (a parabola) and a target bent the other way: the Procrustes start
    # fits the points, not their local curvature
    rng = np.random.default_rng(0)
    u = rng.uniform(-2, 2, size=(256, 1))
    S = np.c_[u, u**2, 0.1 * rng.normal(size=(256, 1))]
    T = np.c_[u, -0.5 * u**2, 0.1 * rng.normal(size=(256, 1))]
    S, T = S - S.mean(0), T - T.mean(0)
    R = procrustes_rotation(S, T)
    fmap = make_map(kind, 3, 3, R, 8, generator=torch.Generator().manual_seed(0))
    s, t = (torch.tensor(a, dtype=torch.float32) for a in (S, T))
    loss = mean_curvature_loss(fmap(s), t, knn_graph(s))
    assert loss.item() > 1e-3
    loss.backward()
    norm = sum(float(p.grad.norm()) for p in fmap.parameters() if p.grad is not None)
    assert norm > 1e-3


def test_ot_loss_small_for_matching_clouds():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(128, 4, generator=gen)
    same = float(ot_loss(a, a[torch.randperm(128, generator=gen)]))
    moved = float(ot_loss(a, a + 3.0))
    assert same < moved


@pytest.mark.parametrize("map_", ["orthogonal", "linear", "mlp"])
def test_seeded_fits_repeat_exactly(map_):
    X = three_scales(n=200)
    kw = dict(map=map_, max_iter=15, random_state=3, lambda_ot=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = ManifoldAligner(**kw).fit(X), ManifoldAligner(**kw).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.loss_curve_ == b.loss_curve_
    rng_before = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ManifoldAligner(**kw).fit(X)
    assert torch.equal(torch.get_rng_state(), rng_before)


def test_loss_curve_terms_and_pickle():
    X = three_scales(n=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        al = ManifoldAligner(map="mlp", max_iter=25, early_stopping=True, random_state=0).fit(X)
    curve = al.loss_curve_["global->intermediate"]
    assert len(curve) == al.n_steps_[0] // al.check_interval
    keys = {"step", "epoch", "total", "geo", "info", "curv", "ot", "train", "accepted"}
    for entry in curve:  # validation is measured on the accepted checkpoints only
        assert set(entry) == keys | ({"validation"} if entry["accepted"] else set())
    accepted = [c["train"] for c in curve if c["accepted"]]
    assert accepted and accepted == sorted(accepted, reverse=True)  # never rises
    assert (
        al.objective_["global->intermediate"]["end"]
        < al.objective_["global->intermediate"]["start"]
    )
    restored = pickle.loads(pickle.dumps(al))
    np.testing.assert_array_equal(restored.transform(X), al.transform(X))
    # the default (early_stopping=False) trains on every row and measures no validation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = ManifoldAligner(map="mlp", max_iter=25, random_state=0).fit(X)
    assert all("validation" not in c for c in plain.loss_curve_["global->intermediate"])
    with pytest.raises(ValueError, match="not invertible"):
        al.inverse_transform(al.transform(X))


def test_non_convergence_warns():
    with pytest.warns(ConvergenceWarning, match="did not converge in max_iter=3"):
        ManifoldAligner(max_iter=3, random_state=0).fit(three_scales(n=100))


def test_feature_names_pca_and_scoring_options():
    X = three_scales(n=120, d=8)
    cols = [f"{s}__{u}" for s in ("local", "intermediate", "global") for u in range(8)]
    df = pd.DataFrame(X, columns=cols)
    al = ManifoldAligner(lambda_info=0, lambda_curv=0, n_components=4).fit(df)
    assert al.scales_ == ("local", "intermediate", "global")
    assert al.scale_dims_ == {"local": 4, "intermediate": 4, "global": 4}
    # transform maps back through the target's PCA: original widths
    assert al.transform(df).shape == (120, 16)
    assert len(al.get_feature_names_out()) == 16
    assert al.get_feature_names_out()[0] == "global_to_intermediate__0"
    for scoring in ("r2", "cka", "neg_procrustes", "neg_kl", "dcor"):
        value = al.set_params(scoring=scoring).score(df)
        assert np.isfinite(value)


def test_score_is_independent_of_lambdas_and_works_in_grid_search():
    X = three_scales(n=240)
    grid = GridSearchCV(
        ManifoldAligner(max_iter=20, random_state=0),
        {"lambda_geo": [0.1, 1.0], "lambda_info": [0.0, 0.1]},
        cv=3,
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X)
    assert grid.cv_results_["mean_test_score"].shape == (4,)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))
    # the same maps scored under different lambdas give the same score
    a = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    b = clone(a).set_params(lambda_geo=5.0).fit(X)
    assert a.score(X) == pytest.approx(b.score(X))


@pytest.mark.parametrize(
    "params,X_fn,match",
    [
        ({"lambda_geo": -1.0}, lambda X: X, "lambda_geo"),
        ({}, lambda X: np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), "NaN"),
        ({}, lambda X: X[:5], "5 sample"),
        ({}, lambda X: X[:1], "1 sample"),
        ({}, lambda X: np.where(np.arange(X.size).reshape(X.shape) == 3, np.inf, X), "infinity"),
        ({"lambda_info": -0.1}, lambda X: X, "lambda_info"),
        ({"validation_fraction": 1.5}, lambda X: X, "validation_fraction"),
        ({}, lambda X: X[:, :10], "cannot be split into 3"),
        ({"pairs": [("global", "word")]}, lambda X: X, "unknown: \\['word'\\]"),
        ({}, lambda X: np.hstack([X[:, :12], np.ones((X.shape[0], 6))]), "'global' is constant"),
    ],
)
def test_bad_input(params, X_fn, match):
    X = three_scales(n=60)
    with pytest.raises(ValueError, match=match):
        ManifoldAligner(**params).fit(X_fn(X))


_BLOCKS = (
    "sklearn's check data has 3 or 5 columns, which cannot split into the two equal "
    "scale blocks this instance declares; the aligner rejects it by design"
)
_BLOCK_CHECKS = [
    "check_fit_score_takes_y",
    "check_dont_overwrite_parameters",
    "check_estimators_dtypes",
    "check_pipeline_consistency",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
    "check_transformer_n_iter",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_fit2d_1feature",
    "check_dict_unchanged",
    "check_fit2d_predict1d",
]


@parametrize_with_checks(
    [ManifoldAligner(scales=("a", "b"), pairs=[("a", "b")], map="linear", max_iter=5)],
    expected_failed_checks=lambda est: {name: _BLOCKS for name in _BLOCK_CHECKS},
    xfail_strict=True,
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_transform_rejects_mismatched_width_and_unfitted():
    from sklearn.exceptions import NotFittedError

    X = three_scales(n=60)
    with pytest.raises(NotFittedError):
        ManifoldAligner().transform(X)
    al = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        al.transform(X[:, :12])
    with pytest.raises(ValueError, match="Expected 12 columns"):
        al.inverse_transform(X[:, :5])


def test_the_pca_basis_and_the_closed_form_do_not_depend_on_the_seed():
    """700 rows x 120 dimensions per scale with a slowly decaying spectrum, PCA to 40: a
    randomized SVD (scikit-learn's "auto" here) gave each seed another trailing subspace,
    and the closed-form maps of two seeds differed by 62% of their norm; the exact SVD
    gives one map whatever random_state is."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(700, 120)) * np.linspace(1.0, 0.8, 120)
    X = np.hstack([z + 0.5 * rng.normal(size=z.shape) for _ in range(3)])
    fits = [
        ManifoldAligner(1.0, 0.0, 0.0, n_components=40, random_state=seed).fit(X)
        for seed in (0, 1, 2)
    ]
    assert all(np.all(f.n_iter_ == 0) for f in fits)  # the closed form
    for f in fits[1:]:
        np.testing.assert_allclose(f.transform(X), fits[0].transform(X), atol=1e-8)
    # a trained fit repeats exactly under one random_state, and with n_jobs=2
    X = three_scales(n=200, d=8)
    kw = dict(map="mlp", n_components=4, max_iter=10, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = ManifoldAligner(**kw).fit(X).transform(X)
        b = ManifoldAligner(**kw, n_jobs=2).fit(X).transform(X)
    np.testing.assert_array_equal(a, b)
