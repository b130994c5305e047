"""ManifoldAligner's optimisation (issue #12): closed forms, early stopping, the guard,
lambdas that act, gradient shares, few samples, seeding."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression

from msma_sklearn import ManifoldAligner
from msma_sklearn.alignment import BilinearCritic, information_loss, procrustes_rotation
from msma_sklearn.alignment._objective import pca_dimension_scores
from tests.alignment.test_aligner import _standardised, three_scales

MAPS = ["orthogonal", "linear", "mlp"]


def _quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X)


def test_linear_closed_form_equals_least_squares():
    X = three_scales(n=300, d=6, noise=0.5)
    al = ManifoldAligner(lambda_info=0, lambda_curv=0, map="linear").fit(X)
    assert al.n_iter_.tolist() == [0, 0]
    src, tgt = _standardised(X[:, 12:]), _standardised(X[:, 6:12])
    oracle = LinearRegression(fit_intercept=False).fit(src, tgt)  # independent solver
    np.testing.assert_allclose(al.coef_["global->intermediate"], oracle.coef_.T, atol=1e-5)
    # the least-squares start beats the orthogonal one on its own rows
    ortho = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    assert al.score(X) > ortho.score(X)


@pytest.mark.parametrize("kind", MAPS)
def test_n_jobs_equals_serial_exactly(kind):
    X = three_scales(n=200)
    kw = dict(map=kind, max_iter=12, random_state=0, lambda_ot=0.05)
    serial = _quiet_fit(ManifoldAligner(**kw), X)
    threads = _quiet_fit(ManifoldAligner(n_jobs=2, **kw), X)
    np.testing.assert_array_equal(serial.transform(X), threads.transform(X))
    assert serial.loss_curve_ == threads.loss_curve_


def test_guard_returns_the_start_when_training_makes_things_worse():
    X = three_scales(n=300, noise=0.3)
    start = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    with pytest.warns(ConvergenceWarning, match="no step lowered the training objective"):
        wild = ManifoldAligner(
            lambda_curv=1.0, learning_rate=50.0, early_stopping=False, max_iter=40, random_state=0
        ).fit(X)
    for key in start.coef_:
        np.testing.assert_allclose(wild.coef_[key], start.coef_[key], atol=1e-5)
        assert wild.prediction_change_[key] == 0.0


def test_training_stops_on_convergence_and_validation_chooses_the_checkpoint():
    X = three_scales(n=2000, noise=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # it must stop by itself
        al = ManifoldAligner(map="linear", batch_size=128, random_state=0).fit(X)
    for key, curve in al.loss_curve_.items():
        steps = al.n_steps_[al.pairs_.index(tuple(key.split("->")))]
        assert len(curve) == steps // al.check_interval
        # stopped after n_iter_no_change checks that were rejected or gained less than tol
        best = al.objective_[key]["start"]
        gains = []
        for c in curve:
            gains.append(best - c["train"] if c["accepted"] else 0.0)
            if c["accepted"]:
                best = c["train"]
        last = gains[-al.n_iter_no_change :]
        assert all(g <= al.tol * (best + g) for g in last)
        assert any(g > 0 for g in gains)  # it did move
    assert (al.n_steps_ < 300 * 15).all()


def test_validation_chooses_among_trained_checkpoints_never_the_start():
    from msma_sklearn.alignment import fit_map

    X = three_scales(n=400, noise=0.3)
    d = X.shape[1] // 3
    S, T = _standardised(X[:, d : 2 * d]), _standardised(X[:, :d])
    fit = fit_map(
        S,
        T,
        weights={"geo": 1.0, "info": 0.1},
        family="linear",
        validation_rows=np.arange(360, 400),
        batch_size=128,
        random_state=0,
    )
    values = [c.get("validation", np.inf) for c in fit.curve]  # accepted checks only
    assert fit.best_check == int(np.argmin(values)) and fit.curve[fit.best_check]["accepted"]
    assert fit.prediction_change > 0 and not fit.returned_start
    assert fit.end_objective <= fit.start_objective


@pytest.mark.parametrize("kind", MAPS)
@pytest.mark.parametrize("term", ["geo", "info", "curv", "ot"])
def test_every_lambda_changes_the_fitted_map(kind, term):
    X = three_scales(n=240, noise=0.5, seed=2)
    base = dict(lambda_geo=0.1, lambda_info=0.1, lambda_curv=0.1, lambda_ot=0.1)
    changed = dict(base, **{f"lambda_{term}": base[f"lambda_{term}"] * 5})
    kw = dict(map=kind, max_iter=20, early_stopping=False, random_state=0)
    a = _quiet_fit(ManifoldAligner(**base, **kw), X)
    b = _quiet_fit(ManifoldAligner(**changed, **kw), X)
    assert np.abs(a.transform(X) - b.transform(X)).max() > 1e-4


def test_gradient_shares_sum_to_one_respond_to_lambda_and_warn_when_inert():
    X = three_scales(n=300, noise=0.5)
    kw = dict(map="linear", max_iter=30, random_state=0)
    low = _quiet_fit(ManifoldAligner(lambda_info=0.1, **kw), X)
    high = _quiet_fit(ManifoldAligner(lambda_info=1.0, **kw), X)
    for al in (low, high):
        for shares in al.term_gradient_share_.values():
            assert set(shares) == {"geo", "info", "curv"}
            assert sum(shares.values()) == pytest.approx(1.0)
    key = "global->intermediate"
    assert high.term_gradient_share_[key]["info"] > low.term_gradient_share_[key]["info"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ManifoldAligner(lambda_curv=1e-9, **kw).fit(X)
    inert = [w for w in caught if "barely" in str(w.message)]
    assert inert and "lambda_curv=1e-09" in str(inert[0].message)
    closed = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    assert closed.term_gradient_share_[key] == {"geo": 1.0}


def test_normalised_and_raw_terms():
    X = three_scales(n=300)
    kw = dict(map="linear", max_iter=10, early_stopping=False, random_state=0)
    unit = _quiet_fit(ManifoldAligner(**kw), X).loss_curve_["global->intermediate"]
    raw = _quiet_fit(ManifoldAligner(normalize_terms=False, **kw), X)
    raw = raw.loss_curve_["global->intermediate"]
    assert all(0 <= c["info"] <= 1.05 for c in unit)  # 1 - bound / log(candidates)
    assert all(c["info"] < 0 for c in raw)  # minus the bound in nats
    # the same identification in both units: raw = -(1 - unit) log(block rows); 300 rows
    # make two blocks of 150 candidates
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(300, 4, generator=gen)
    t = a + 0.5 * torch.randn(300, 4, generator=gen)
    critic = BilinearCritic(4, 4)
    u = information_loss(critic, a, t).item()
    r = information_loss(critic, a, t, normalize=False).item()
    assert r == pytest.approx(-(1 - u) * np.log(150), rel=1e-5)


def _low_rank_scales(n, d, rank=3, noise=1.5, seed=0):
    """Three scales sharing a rank-3 signal under heavy isotropic noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, rank))
    return np.hstack(
        [2 * z @ rng.normal(size=(rank, d)) + noise * rng.normal(size=(n, d)) for _ in range(3)]
    )


def test_few_samples_warn_and_choose_the_pca_dimension_on_held_out_rows():
    X = _low_rank_scales(60, 40)
    with pytest.warns(UserWarning, match=r"fewer rows than 5 per dimension .*\(n < 5 d\)"):
        al = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(X)
    scores = al.n_components_scores_
    assert al.n_components_ == max(scores, key=scores.get)
    # a rank-3 signal under noise: a few principal components beat the full width
    assert al.n_components_ is not None and al.n_components_ < 40
    assert scores[al.n_components_] > scores[None] + 0.05
    assert al.scale_dims_["global"] == al.n_components_
    assert al.transform(X).shape == (60, 80)
    with pytest.warns(UserWarning, match="n_components=None"):
        ManifoldAligner(lambda_info=0, lambda_curv=0, n_components=None).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        enough = ManifoldAligner(lambda_info=0, lambda_curv=0).fit(three_scales(n=200, d=20))
    assert enough.n_components_ is None and enough.n_components_scores_ is None


def test_pca_dimension_scores_match_the_estimator():
    """The selection's 'no PCA' score is the closed-form aligner's held-out score."""
    X = _low_rank_scales(80, 30, seed=1)
    rng = np.random.default_rng(0)
    order = rng.permutation(80)
    val, train = np.sort(order[:16]), np.sort(order[16:])
    blocks = {
        s: X[:, i * 30 : (i + 1) * 30] for i, s in enumerate(("local", "intermediate", "global"))
    }
    pairs = [("global", "intermediate"), ("intermediate", "local")]
    for family in ("orthogonal", "linear"):
        scores = pca_dimension_scores(blocks, pairs, train, val, [None, 30], family)
        ref = ManifoldAligner(lambda_info=0, lambda_curv=0, map=family, n_components=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            expected = ref.fit(X[train]).score(X[val])
            full = ManifoldAligner(lambda_info=0, lambda_curv=0, map=family, n_components=30).fit(
                X[train]
            )
        assert scores[None] == pytest.approx(expected, abs=1e-6)
        # PCA keeping every dimension is a rotation: the same closed form
        assert scores[30] == pytest.approx(scores[None], abs=1e-6)
        assert full.score(X[val]) == pytest.approx(expected, abs=1e-4)


def test_scores_compare_across_n_components():
    # PCA keeping every component is a rotation of centred data: the closed form and its
    # score in the original coordinates are unchanged
    X = three_scales(n=300, noise=0.5)
    full = ManifoldAligner(lambda_info=0, lambda_curv=0, n_components=None).fit(X)
    rotated = ManifoldAligner(lambda_info=0, lambda_curv=0, n_components=6).fit(X)
    assert rotated.score(X) == pytest.approx(full.score(X), abs=1e-5)
    np.testing.assert_allclose(rotated.transform(X), full.transform(X), atol=1e-4)


def test_planted_nonlinear_map_only_the_mlp_recovers():
    rng = np.random.default_rng(0)
    n, d = 3000, 3
    z = rng.normal(size=(n, d))
    bent = np.tanh(2.0 * z) + 0.05 * rng.normal(size=(n, d))
    X = np.hstack([bent, bent, z])  # global -> intermediate is the non-linear map
    train, test = X[:2500], X[2500:]
    kw = dict(lambda_info=0, lambda_curv=0, pairs=[("global", "intermediate")])
    linear = ManifoldAligner(map="linear", **kw).fit(train)
    mlp = ManifoldAligner(map="mlp", batch_size=256, random_state=0, **kw).fit(train)
    assert linear.score(test) < 0.93
    assert mlp.score(test) > linear.score(test) + 0.03


def test_global_rng_untouched_and_start_is_procrustes():
    X = three_scales(n=200)
    before = torch.get_rng_state()
    al = _quiet_fit(ManifoldAligner(map="mlp", max_iter=5, random_state=0), X)
    assert torch.equal(torch.get_rng_state(), before)
    # the MLP's linear part starts at least squares; orthogonal maps at Procrustes
    ortho = _quiet_fit(ManifoldAligner(max_iter=1, check_interval=50, random_state=0), X)
    src, tgt = _standardised(X[:, 12:]), _standardised(X[:, 6:12])
    R = procrustes_rotation(src, tgt)
    assert np.abs(ortho.coef_["global->intermediate"] - R).max() < 0.2
    assert al.n_steps_.min() >= 1


def test_a_search_shows_the_few_rows_warning_once_at_the_callers_line():
    """GridSearchCV fits the aligner once per candidate and fold: the warning is one stable
    message attributed to the caller, so the default filter shows it once, not per fit."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import numpy as np
        from sklearn.model_selection import GridSearchCV
        from msma_sklearn import ManifoldAligner
        rng = np.random.default_rng(0)
        z = rng.normal(size=(60, 3))
        X = np.hstack([z @ rng.normal(size=(3, 20)) + rng.normal(size=(60, 20)) for _ in range(3)])
        search = GridSearchCV(
            ManifoldAligner(lambda_info=0, lambda_curv=0, max_iter=2, random_state=0),
            {"lambda_geo": [0.1, 1.0]}, cv=2,
        )
        search.fit(X)  # the user's line
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stderr
    assert out.count("fewer rows than 5 per dimension") == 1, out
    assert "<string>:12: UserWarning" in out, out  # attributed to search.fit(X)


@pytest.mark.parametrize("init", ["identity", "random"])
def test_a_start_away_from_the_optimum_still_reaches_least_squares(init):
    """Geometry alone, from the identity or a random rotation: training must arrive where
    the closed form is (the oracle), so the start does not decide the answer."""
    from msma_sklearn.alignment import fit_map

    X = three_scales(n=600, noise=0.3)
    d = X.shape[1] // 3
    S, T = _standardised(X[:, d : 2 * d]), _standardised(X[:, :d])
    ls = fit_map(S, T, weights={"geo": 1.0}, family="linear")
    assert ls.n_steps == 0  # the closed form
    far = fit_map(
        S, T, weights={"geo": 1.0}, family="linear", init=init, random_state=3, max_iter=2000
    )
    assert far.n_steps > 0 and far.start_objective > 2 * ls.end_objective
    assert far.end_objective <= ls.end_objective * 1.02


@pytest.mark.parametrize("kind", ["linear", "mlp"])
@pytest.mark.parametrize("cfg", [(1.0, 0.1, 0.0), (1.0, 0.1, 0.01), (0.1, 0.1, 0.01)])
def test_an_information_or_curvature_term_moves_the_map_from_its_start(kind, cfg):
    """From the least-squares start the geometry term is at its optimum: a term that is
    on must move the predictions, and the training objective must fall."""
    X = three_scales(n=800, noise=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP may use every epoch
        al = ManifoldAligner(*cfg, map=kind, random_state=0).fit(X)
    for key, change in al.prediction_change_.items():
        assert change > 1e-3, (key, change)
        assert al.objective_[key]["end"] < al.objective_[key]["start"]


def test_the_start_is_a_setting_and_repeated_fits_are_identical():
    X = three_scales(n=300, noise=0.3)
    kw = dict(map="linear", init="random", random_state=5, max_iter=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = ManifoldAligner(**kw).fit(X), ManifoldAligner(**kw).fit(X)
        c = ManifoldAligner(**{**kw, "random_state": 6}).fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert not np.array_equal(a.transform(X), c.transform(X))
    with pytest.raises(ValueError, match="init"):
        ManifoldAligner(init="zeros").fit(X)


def test_term_effects_measure_what_dropping_a_term_changes():
    from msma_sklearn.alignment import term_effects

    X = three_scales(n=500, noise=0.3)
    kw = dict(map="linear", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        effects = term_effects(ManifoldAligner(1.0, 0.1, 0.0, **kw), X[:400], X[400:])
        tiny = term_effects(ManifoldAligner(1.0, 1e-9, 0.0, **kw), X[:400], X[400:])
    assert set(effects) == {"start", "geo", "info"}  # curvature is off: no row
    for pair, change in effects["info"].items():
        assert change > 1e-3 and effects["start"][pair] > 1e-3
    # a term with a negligible weight has a negligible effect (the oracle: zero)
    assert max(tiny["info"].values()) < 1e-4


@pytest.mark.parametrize("lam", [1.0, 100.0])
def test_the_solver_reaches_the_closed_form_of_geometry_plus_curvature(lam):
    """A linear map under ``L_geo + λ L_curv`` is a quadratic problem on a fixed neighbour
    graph (one block of rows): its minimiser is a linear solve (the oracle). The solver,
    started at least squares, must reach its objective and its map."""
    import torch

    from msma_sklearn.alignment import fit_map
    from msma_sklearn.alignment._objective import knn_graph

    rng = np.random.default_rng(0)
    n, d = 200, 12
    S = _standardised(rng.normal(size=(n, d)) @ rng.normal(size=(d, d)))
    T = _standardised(np.tanh(S @ rng.normal(size=(d, d))) + 0.3 * rng.normal(size=(n, d)))
    nb = knn_graph(torch.as_tensor(S, dtype=torch.float32)).numpy()

    def lap(M):
        return M - M[nb].mean(axis=1)

    LS, LT = lap(S), lap(T)
    a, c = 1.0 / (n * d), lam / float((LT**2).sum())
    W = np.linalg.solve(a * S.T @ S + c * LS.T @ LS, a * S.T @ T + c * LS.T @ LT)
    best = a * ((S @ W - T) ** 2).sum() + c * ((LS @ W - LT) ** 2).sum()

    fit = fit_map(S, T, weights={"geo": 1.0, "curv": lam}, family="linear", max_iter=2000)
    assert fit.n_steps > 0 and fit.start_objective > best * 1.005  # the start is not it
    # the solver closes at least 90% of the gap between the start and the minimum
    assert fit.end_objective - best <= 0.1 * (fit.start_objective - best)
    with torch.no_grad():
        mapped = fit.map(torch.as_tensor(S, dtype=torch.float32)).numpy()
    start = S @ fit.start
    # and its predictions are far closer to the minimiser's than the start's are
    assert np.linalg.norm(mapped - S @ W) < 0.3 * np.linalg.norm(start - S @ W)
