"""Alignment metrics against independent references and closed forms."""

import numpy as np
import pytest
from scipy.linalg import eigh
from scipy.spatial import procrustes
from scipy.stats import multivariate_normal
from sklearn.metrics import mutual_info_score

from msma_sklearn.metrics import (
    cca_similarity_original,
    covariance_distance,
    distance_correlation,
    gaussian_kl,
    histogram_mi_original,
    procrustes_disparity,
)


def _moments(z):
    return z.mean(0), np.cov(z, rowvar=False, bias=True)


def test_full_kl_matches_monte_carlo_of_the_fitted_gaussians():
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal([0, 1, 0], [[2, 0.5, 0], [0.5, 1, 0.2], [0, 0.2, 0.5]], 400)
    y = rng.multivariate_normal([1, 0, 0], [[1, 0, 0], [0, 2, -0.3], [0, -0.3, 1]], 400)
    (mx, sx), (my, sy) = _moments(x), _moments(y)
    p, q = multivariate_normal(mx, sx), multivariate_normal(my, sy)
    draws = p.rvs(200_000, random_state=1)
    mc = float(np.mean(p.logpdf(draws) - q.logpdf(draws)))
    assert gaussian_kl(x, y, kind="full") == pytest.approx(mc, abs=0.02)


def test_diag_kl_is_full_kl_on_axis_aligned_data_and_sum_vs_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5000, 4)) * [1, 2, 3, 4]
    y = rng.normal(size=(5000, 4)) * [2, 2, 1, 1] + 0.5
    full = gaussian_kl(x, y, kind="full")
    assert gaussian_kl(x, y, kind="diag_sum") == pytest.approx(full, rel=0.02)
    assert gaussian_kl(x, y, kind="diag_mean") == pytest.approx(
        gaussian_kl(x, y, kind="diag_sum") / 4
    )


def test_kl_zero_on_identical_and_diag_sum_grows_with_dimension():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8))
    for kind in ("diag_sum", "diag_mean", "full"):
        assert gaussian_kl(x, x, kind=kind) == pytest.approx(0.0, abs=1e-9)
    y = x + 1.0
    assert gaussian_kl(x, y, kind="diag_sum") == pytest.approx(
        8 * gaussian_kl(x, y, kind="diag_mean")
    )


def test_histogram_mi_matches_sklearn_on_the_same_bins():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5))
    y = x + 0.5 * rng.normal(size=(200, 5))
    ours = histogram_mi_original(x, y, bins=16)
    _, ex, ey = np.histogram2d(x.ravel(), y.ravel(), bins=16)
    bx = np.clip(np.digitize(x.ravel(), ex[1:-1]), 0, 15)
    by = np.clip(np.digitize(y.ravel(), ey[1:-1]), 0, 15)
    assert ours == pytest.approx(mutual_info_score(bx, by), abs=1e-9)
    assert histogram_mi_original(x, x) <= np.log(64) + 1e-9


def test_distance_correlation_bivariate_normal_closed_form():
    rho = 0.6
    rng = np.random.default_rng(4)
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=3000)
    num = (
        rho * np.arcsin(rho)
        + np.sqrt(1 - rho**2)
        - rho * np.arcsin(rho / 2)
        - np.sqrt(4 - rho**2)
        + 1
    )
    exact = np.sqrt(num / (1 + np.pi / 3 - np.sqrt(3)))
    est = distance_correlation(z[:, :1], z[:, 1:], max_samples=3000)
    assert est == pytest.approx(exact, abs=0.03)


def test_distance_correlation_subsample_is_seeded_and_invariant():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1500, 3))
    y = x @ rng.normal(size=(3, 2)) + rng.normal(size=(1500, 2))
    a = distance_correlation(x, y, max_samples=500, random_state=0)
    assert a == distance_correlation(x, y, max_samples=500, random_state=0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    assert distance_correlation(3 * x @ q + 1, y, max_samples=500, random_state=0) == (
        pytest.approx(a, abs=1e-10)
    )
    assert distance_correlation(x[:500], rng.normal(size=(500, 2))) < 0.15


def test_procrustes_disparity_equals_scipy():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    assert procrustes_disparity(x, y) == pytest.approx(procrustes(x, y)[2], abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        procrustes_disparity(np.ones((5, 2)), y[:5, :2])


def test_cca_similarity_original():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 6))
    assert cca_similarity_original(x, x @ rng.normal(size=(6, 6)), n_components=6) == (
        pytest.approx(1.0, abs=1e-6)
    )
    assert cca_similarity_original(x, rng.normal(size=(200, 6)), n_components=3) < 0.4


def test_covariance_distance_closed_form():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(500, 3))
    y = rng.normal(size=(500, 3)) @ np.diag([1.0, 2.0, 0.5])
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    exact = np.sqrt(np.sum(np.log(eigh(sy, sx, eigvals_only=True)) ** 2))
    assert covariance_distance(x, y, ridge=0) == pytest.approx(exact, rel=1e-6)
    a = rng.normal(size=(3, 3))
    assert covariance_distance(x @ a, y @ a, ridge=0) == pytest.approx(exact, rel=1e-6)


@pytest.mark.parametrize(
    "fn", [gaussian_kl, histogram_mi_original, distance_correlation, procrustes_disparity]
)
def test_bad_input(fn):
    x = np.zeros((10, 3))
    with pytest.raises(ValueError, match="finite"):
        fn(np.full((10, 3), np.nan), x)
    with pytest.raises(ValueError, match="2-D"):
        fn(np.zeros(10), x)
