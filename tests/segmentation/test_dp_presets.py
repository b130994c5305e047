"""Exact segmentation (against brute force) and the original project's presets."""

import itertools

import numpy as np
import pytest

from msma_sklearn.segmentation import (
    optimal_segments,
    preset_scale_layers,
    similarity_costs,
    sse_costs,
)


def _brute_force(costs, n, k):
    best, arg = np.inf, None
    for cuts in itertools.combinations(range(1, n), k - 1):
        bounds = [0, *cuts, n]
        total = sum(costs[a, b] for a, b in itertools.pairwise(bounds))
        if total < best - 1e-12:
            best, arg = total, list(cuts)
    return arg


@pytest.mark.parametrize("seed", range(5))
def test_dp_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = 9, 3
    a = rng.normal(size=(n, n))
    S = a @ a.T
    costs = similarity_costs(S)
    assert optimal_segments(costs, k) == _brute_force(costs, n, k)
    values = rng.normal(size=n)
    assert optimal_segments(sse_costs(values), k) == _brute_force(sse_costs(values), n, k)


@pytest.mark.parametrize("sizes", [(3, 6, 4), (1, 1, 11), (5, 5, 5, 5), (2, 9)])
def test_planted_blocks_recovered_exactly(sizes):
    rng = np.random.default_rng(len(sizes))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    S = np.where(labels[:, None] == labels[None, :], 0.9, 0.2)
    S = S + 0.05 * rng.uniform(-1, 1, size=S.shape)
    S = (S + S.T) / 2
    expected = np.cumsum(sizes)[:-1].tolist()
    assert optimal_segments(similarity_costs(S), len(sizes)) == expected


def test_piecewise_constant_recovered():
    values = np.array([1.0, 1.1, 0.9, 5.0, 5.2, 9.0, 9.1, 8.9, 9.0])
    assert optimal_segments(sse_costs(values), 3) == [3, 5]


def test_dp_errors():
    with pytest.raises(ValueError, match="Cannot split 3 layers into 4"):
        optimal_segments(similarity_costs(np.eye(3)), 4)


# The original README's "Semantic Layer Distribution" table and the code's lists.
README = {
    "gpt2": (12, [(0, 2), (3, 8), (9, 12)]),
    "bert": (12, [(0, 4), (5, 8), (9, 12)]),
    "roberta": (12, [(0, 4), (5, 8), (9, 12)]),
    "t5": (6, [(0, 2), (3, 4), (5, 6)]),
}
CODE = {"bert": (12, [(0, 3), (4, 7), (8, 10)]), "gpt2": (12, [(0, 3), (4, 7), (8, 11)])}


@pytest.mark.parametrize("preset,table", [("readme", README), ("msma_code", CODE)])
def test_presets_equal_original_lists_at_reference_depth(preset, table):
    for family, (depth, ranges) in table.items():
        expected = [list(range(a, b + 1)) for a, b in ranges]
        assert preset_scale_layers(preset, family, depth) == expected


@pytest.mark.parametrize("depth", [3, 4, 6, 24, 30, 48])
@pytest.mark.parametrize("family", ["gpt2", "bert", "t5"])
def test_mapped_presets_are_contiguous_and_cover(depth, family):
    scales = preset_scale_layers("readme", family, depth)
    flat = [j for s in scales for j in s]
    assert flat == list(range(depth + 1))
    assert all(scales)


def test_uniform_and_errors():
    assert preset_scale_layers("uniform", None, 5, 3) == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(ValueError, match="needs family= one of"):
        preset_scale_layers("readme", None, 12)
    with pytest.raises(ValueError, match="only for BERT and GPT-2"):
        preset_scale_layers("msma_code", "t5", 6)
    with pytest.raises(ValueError, match="Unknown preset 'paper'"):
        preset_scale_layers("paper", "gpt2", 12)
    with pytest.raises(ValueError, match="defines 3 scales"):
        preset_scale_layers("readme", "gpt2", 12, n_scales=4)
