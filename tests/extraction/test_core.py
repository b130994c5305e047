"""Functional core: pooling against an independent numpy reference, padding, reshape."""

import numpy as np
import pytest
import torch

from msma_sklearn.extraction import POOLINGS, reshape_by_layer
from msma_sklearn.extraction._core import pad_batch, pool


def _numpy_pool(h, m, method):
    out = []
    for row, mask in zip(h, m, strict=True):
        real = row[mask]
        out.append(
            {
                "mean": real.mean(0),
                "mean_all": row.mean(0),
                "first": real[0],
                "cls": real[0],
                "last": real[-1],
                "max": real.max(0),
            }[method]
        )
    return np.stack(out)


@pytest.mark.parametrize("method", POOLINGS)
@pytest.mark.parametrize("side", ["right", "left"])
def test_pool_matches_numpy(method, side):
    rng = np.random.default_rng(0)
    lengths = [5, 1, 3, 5]
    h = rng.normal(size=(4, 5, 6)).astype(np.float32)
    m = np.zeros((4, 5), bool)
    for i, n in enumerate(lengths):
        if side == "right":
            m[i, :n] = True
        else:
            m[i, 5 - n :] = True
    got = pool(torch.from_numpy(h), torch.from_numpy(m), method).numpy()
    np.testing.assert_allclose(got, _numpy_pool(h, m, method), rtol=1e-6, atol=1e-6)


def test_pool_ignores_non_finite_padding():
    h = torch.tensor([[[1.0, 2.0], [float("nan"), float("inf")]]])
    m = torch.tensor([[True, False]])
    for method in ("mean", "max", "first", "last"):
        assert torch.isfinite(pool(h, m, method)).all()


def test_pool_unknown_method():
    with pytest.raises(ValueError, match="pooling must be one of"):
        pool(torch.zeros(1, 2, 3), torch.ones(1, 2, dtype=torch.bool), "median")


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_batch(side):
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, side=side)
    if side == "right":
        assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
        assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    else:
        assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
        assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, _ = pad_batch([[1]], pad_id=9, side=side, length=3)
    assert ids.shape == (1, 3)


def test_reshape_by_layer():
    X = np.arange(24).reshape(2, 12)
    R = reshape_by_layer(X, 3)
    assert R.shape == (2, 3, 4)
    np.testing.assert_array_equal(R[1, 2], X[1, 8:12])
    with pytest.raises(ValueError, match="multiple of n_layers=5"):
        reshape_by_layer(X, 5)
