"""The number-of-scales null against the simplest structure-free data: smooth drift
with no blocks (equal, slowing, quickening, U-shaped steps; renormalised or
accumulating) must come out as one scale, and planted blocks must still be found."""

import numpy as np
import pytest

from msma_sklearn.datasets import DRIFT_KINDS, make_layer_blocks, make_layer_drift
from msma_sklearn.metrics import cka_matrix
from msma_sklearn.segmentation import fit_smooth_drift, scale_count_curve


def _k(layers, seed, null="drift"):
    return scale_count_curve(
        layers, k_max=6, n_splits=4, min_size=2, null=null, random_state=seed
    ).best_k


@pytest.mark.parametrize("kind", sorted(DRIFT_KINDS))
@pytest.mark.parametrize("accumulate", [False, True])
def test_smooth_drift_is_one_scale(kind, accumulate):
    for seed in range(2):
        layers = make_layer_drift(kind, 19, accumulate=accumulate, random_state=seed)
        assert _k(layers, seed) == 1, (kind, accumulate, seed)


@pytest.mark.parametrize("n_layers", [19, 31])
@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_planted_blocks_are_recovered(n_layers, k):
    layers = make_layer_blocks(k, n_layers, random_state=k)
    assert _k(layers, k) == k


def test_blocks_with_drift_inside_and_unequal_sizes_are_recovered():
    layers = make_layer_blocks(3, 19, sizes=(4, 9, 6), drift=0.15, random_state=0)
    assert _k(layers, 0) == 3


def test_the_toeplitz_null_finds_scales_in_drift_that_slows():
    """Why the null changed: equal steps only, the old null calls slowing drift scales."""
    layers = make_layer_drift("decelerating", 19, random_state=0)
    assert _k(layers, 0, null="toeplitz") > 1
    assert _k(layers, 0) == 1


def test_the_fitted_drift_reproduces_a_drift_matrix_and_not_a_block_matrix():
    drift = cka_matrix(make_layer_drift("u-shaped", 19, n_samples=1024, random_state=1))
    blocks = cka_matrix(make_layer_blocks(3, 19, n_samples=1024, random_state=1))
    fit_d, fit_b = fit_smooth_drift(drift), fit_smooth_drift(blocks)
    off = ~np.eye(19, dtype=bool)
    assert np.abs(fit_d.matrix - drift)[off].max() < 0.05
    assert np.abs(fit_b.matrix - blocks)[off].max() > 0.2
    # the fitted speed has no interior maximum: it falls, then rises
    v = fit_d.speed
    low = int(np.argmin(v))
    assert np.all(np.diff(v[: low + 1]) <= 1e-9) and np.all(np.diff(v[low:]) >= -1e-9)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="null must be one of"):
        scale_count_curve(make_layer_drift("equal", 6, random_state=0), null="flat")
    with pytest.raises(ValueError, match="square"):
        fit_smooth_drift(np.ones((3, 4)))
    with pytest.raises(ValueError, match="kind must be one of"):
        make_layer_drift("wavy")


@pytest.mark.slow
@pytest.mark.parametrize("n_layers", [19, 31])
def test_drift_is_one_scale_in_at_least_95_percent_of_seeds(n_layers):
    """The calibration target: >= 95% of 20 seeds per drift (4 kinds x 2 variants)."""
    for kind in sorted(DRIFT_KINDS):
        for accumulate in (False, True):
            ks = [
                _k(make_layer_drift(kind, n_layers, accumulate=accumulate, random_state=s), s)
                for s in range(20)
            ]
            assert np.mean(np.asarray(ks) == 1) >= 0.95, (kind, accumulate, ks)
