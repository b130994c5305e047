"""KSG mutual information against Gaussian closed forms."""

import numpy as np
import pytest

from msma_sklearn.metrics import ksg_mutual_information


def _gaussian_mi(cov, dx):
    sx = np.linalg.det(cov[:dx, :dx])
    sy = np.linalg.det(cov[dx:, dx:])
    return 0.5 * np.log(sx * sy / np.linalg.det(cov))


def test_multivariate_gaussian_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + 0.5 * np.eye(4)
    z = rng.multivariate_normal(np.zeros(4), cov, size=3000)
    est = ksg_mutual_information(z[:, :2], z[:, 2:], random_state=0)
    assert est == pytest.approx(_gaussian_mi(cov, 2), abs=0.08)


def test_independent_is_near_zero():
    rng = np.random.default_rng(1)
    est = ksg_mutual_information(
        rng.normal(size=(2000, 2)), rng.normal(size=(2000, 3)), random_state=0
    )
    assert abs(est) < 0.03


def test_invariant_to_per_column_affine_maps_and_seeded():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(800, 2))
    y = x @ rng.normal(size=(2, 2)) + 0.5 * rng.normal(size=(800, 2))
    a = ksg_mutual_information(x, y, random_state=3)
    b = ksg_mutual_information(5 * x - 2, 0.1 * y, random_state=3)
    assert a == pytest.approx(b, abs=1e-6)
    assert a == ksg_mutual_information(x, y, random_state=3)


def test_errors():
    with pytest.raises(ValueError, match="same number of rows"):
        ksg_mutual_information(np.zeros((5, 1)), np.zeros((6, 1)))
    with pytest.raises(ValueError, match="more than n_neighbors=3"):
        ksg_mutual_information(np.zeros((3, 1)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        ksg_mutual_information(np.full((9, 1), np.nan), np.zeros((9, 1)))
