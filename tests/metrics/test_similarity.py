"""Linear CKA: against the written-out unbiased-HSIC formula, and its invariances."""

import numpy as np
import pytest

from msma_sklearn.metrics import cka_matrix, linear_cka
from msma_sklearn.metrics._similarity import _as_layers


# Reference implementation, written out independently of the vectorised code.
def _naive_debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Reference: the unbiased HSIC formula of Song et al. (2012), written out."""
    k = (x - x.mean(0)) @ (x - x.mean(0)).T
    l_ = (y - y.mean(0)) @ (y - y.mean(0)).T

    def hsic(a: np.ndarray, b: np.ndarray) -> float:
        n = a.shape[0]
        a = a.copy()
        b = b.copy()
        np.fill_diagonal(a, 0.0)
        np.fill_diagonal(b, 0.0)
        one = np.ones(n)
        term1 = np.trace(a @ b)
        term2 = (one @ a @ one) * (one @ b @ one) / ((n - 1) * (n - 2))
        term3 = 2.0 / (n - 2) * (one @ a @ b @ one)
        return (term1 + term2 - term3) / (n * (n - 3))

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def naive_cka_matrix(layers) -> np.ndarray:
    """Pairwise loop over layers with the written-out formula (the oracle for cka_matrix)."""
    mats = _as_layers(layers)
    n_layers = len(mats)
    S = np.eye(n_layers)
    for i in range(n_layers):
        for j in range(i + 1, n_layers):
            S[i, j] = S[j, i] = _naive_debiased_cka(
                np.asarray(mats[i], float), np.asarray(mats[j], float)
            )
    return S


def test_vectorised_equals_written_out_formula():
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(40, d)) for d in (3, 7, 12)]
    layers.append(layers[0] @ rng.normal(size=(3, 5)) + 0.3 * rng.normal(size=(40, 5)))
    np.testing.assert_allclose(cka_matrix(layers), naive_cka_matrix(layers), atol=1e-10)


def test_biased_equals_classic_definition():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 6))
    xc, yc = x - x.mean(0), y - y.mean(0)
    classic = np.linalg.norm(yc.T @ xc) ** 2 / (
        np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    )
    assert linear_cka(x, y, debiased=False) == pytest.approx(classic, rel=1e-10)


@pytest.mark.parametrize("debiased", [True, False])
def test_invariances(debiased):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    for y in (x @ q, 4.0 * x, x + 7.0):
        assert linear_cka(x, y, debiased=debiased) == pytest.approx(1.0, abs=1e-10)


def test_debiased_removes_high_dimensional_bias():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 500)), rng.normal(size=(60, 500))
    assert linear_cka(x, y, debiased=False) > 0.8  # biased: unrelated look similar
    assert abs(linear_cka(x, y, debiased=True)) < 0.05


def test_matrix_properties_and_constant_layer():
    rng = np.random.default_rng(4)
    layers = np.stack([rng.normal(size=(20, 3)) for _ in range(4)])
    layers[2] = 1.0  # no variance
    S = cka_matrix(layers)
    np.testing.assert_allclose(S, S.T)
    np.testing.assert_allclose(np.diag(S), 1.0)
    assert np.all(S[2, [0, 1, 3]] == 0.0)


def test_errors():
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="at least 4 samples.*n_samples = 3"):
        cka_matrix([rng.normal(size=(3, 2))] * 2)
    with pytest.raises(ValueError, match="layers\\[1\\] has 5 samples"):
        cka_matrix([rng.normal(size=(6, 2)), rng.normal(size=(5, 2))])
    with pytest.raises(ValueError, match="3-D array"):
        cka_matrix(rng.normal(size=(6, 2)))
    with pytest.raises(ValueError, match="empty"):
        cka_matrix([])


def test_naive_reference_is_symmetric():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(25, 4))
    assert _naive_debiased_cka(x, y) == pytest.approx(_naive_debiased_cka(y, x))
