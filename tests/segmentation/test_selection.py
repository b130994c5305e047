"""Number of scales, random-split nulls, bootstrap stability: planted structure and noise."""

from math import comb

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from msma_sklearn import ScaleSegmenter
from msma_sklearn.segmentation import (
    boundary_distance,
    compare_to_random_splits,
    cut_costs,
    explained_similarity,
    optimal_segments,
    random_contiguous_splits,
    scale_count_curve,
    segment_labels,
)
from tests.segmentation.test_segmenter import planted


@pytest.mark.parametrize("sizes", [(4, 4), (3, 4, 3), (3, 3, 3, 3), (2, 3, 4, 2, 3)])
def test_scale_count_recovers_planted_k(sizes):
    X = planted(sizes, n=160, seed=len(sizes))
    seg = ScaleSegmenter(layers=sum(sizes), n_scales="auto", min_scale_size=1, random_state=0)
    seg.fit(X)
    assert seg.n_scales_ == len(sizes)
    assert seg.boundaries_ == np.cumsum(sizes)[:-1].tolist()
    curve = seg.scale_count_curve_
    assert curve.best_k == len(sizes) and curve.k.tolist() == list(range(1, 7))
    assert curve.gap[len(sizes) - 1] > 0.1  # far above the no-block null


def test_scale_count_on_noise_finds_no_structure():
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(200, 6)) for _ in range(10)]
    curve = scale_count_curve(layers, random_state=0)
    assert curve.best_k == 1
    assert np.all(np.abs(curve.gap) < 0.01)


def test_scale_count_on_smooth_drift_finds_no_blocks():
    """A random walk across layers: similarity decays smoothly with depth, no blocks."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(200, 8))
    layers = []
    for _ in range(12):
        z = 0.9 * z + 0.45 * rng.normal(size=z.shape)
        layers.append(z.copy())
    assert scale_count_curve(layers, random_state=0).best_k == 1


def test_auto_needs_cka_and_names_scales():
    X = planted((3, 3), n=80)
    with pytest.raises(ValueError, match="n_scales='auto' .* needs method='cka'"):
        ScaleSegmenter("mi", layers=6, n_scales="auto").fit(X)
    seg = ScaleSegmenter(layers=6, n_scales="auto", random_state=0).fit(X)
    assert seg.scale_names_ == ("scale0", "scale1")


def test_random_contiguous_splits_exact_and_sampled():
    all_splits = random_contiguous_splits(31, 3)
    assert len(all_splits) == comb(30, 2) and len({tuple(s) for s in all_splits}) == comb(30, 2)
    assert np.all((all_splits[:, 0] >= 1) & (all_splits[:, 0] < all_splits[:, 1]))
    sampled = random_contiguous_splits(31, 6, max_splits=300, random_state=0)
    assert sampled.shape == (300, 5) and np.all(np.diff(sampled, axis=1) > 0)


def test_compare_to_random_splits_against_brute_force():
    n, ref, ours = 7, [2, 5], [3, 5]
    c = compare_to_random_splits(ours, ref, n)
    lab = segment_labels(ref, n)
    aris = [
        adjusted_rand_score(lab, segment_labels([a, b], n))
        for a in range(1, n)
        for b in range(a + 1, n)
    ]
    dists = [abs(a - 2) / 2 + abs(b - 5) / 2 for a in range(1, n) for b in range(a + 1, n)]
    assert c.n_random == 15
    assert c.ari == pytest.approx(adjusted_rand_score(lab, segment_labels(ours, n)))
    assert c.distance == boundary_distance(ours, ref) == 0.5
    assert c.null_ari_mean == pytest.approx(np.mean(aris))
    assert c.null_distance_mean == pytest.approx(np.mean(dists))
    assert c.p_ari == pytest.approx(np.mean(np.array(aris) >= c.ari - 1e-12))


def test_explained_similarity_bounds():
    S = np.kron(np.eye(3), np.ones((2, 2)))
    assert explained_similarity(S, []) == 0.0
    assert explained_similarity(S, [2, 4]) == pytest.approx(1.0)
    assert 0 < explained_similarity(S, [3]) < 1


def test_bootstrap_stability_beside_its_null():
    X = planted((3, 4, 3), n=120)
    seg = ScaleSegmenter(layers=10, n_bootstrap=10, random_state=0).fit(X)
    st = seg.bootstrap_stability_
    assert st["ari"] == 1.0 and st["distance"] == 0.0
    # chance is drawn from the splits the segmenter's minimum size admits
    assert st["null_ari"] < 0.6 and st["null_distance"] >= 1.0
    rng = np.random.default_rng(0)
    noise = ScaleSegmenter(layers=10, n_bootstrap=10, random_state=0).fit(
        rng.normal(size=(120, 80))
    )
    assert noise.bootstrap_stability_["ari"] < 0.9


def test_mi_respects_min_scale_size_and_cuts_weakest_allowed_links():
    mi = np.array([0.1, 5.0, 5.0, 4.0, 5.0, 5.0, 0.2])  # weak links at both ends
    assert optimal_segments(cut_costs(mi), 3) == [1, 7]  # the old rule: {0} .. {7}
    assert optimal_segments(cut_costs(mi), 3, min_size=2) == [2, 4]
    assert optimal_segments(cut_costs(mi), 2, min_size=3) == [4]


def test_mi_on_planted_edges_does_not_split_off_single_states():
    """Planted: the first and last states are weakly tied to their neighbours (like the
    embedding output and the final norm); the default min_scale_size keeps them in."""
    rng = np.random.default_rng(0)
    X = planted((3, 3, 3), n=400, seed=3)
    cube = X.reshape(400, 9, 8)
    cube[:, 0] = rng.normal(size=(400, 8))  # unrelated embedding output
    cube[:, 8] = rng.normal(size=(400, 8))  # unrelated final state
    seg = ScaleSegmenter("mi", layers=9, min_scale_size=2, random_state=0).fit(
        cube.reshape(400, -1)
    )
    assert seg.boundaries_ == [3, 6]  # the planted groups, edges included
    old = ScaleSegmenter("mi", layers=9, min_scale_size=1, random_state=0).fit(
        cube.reshape(400, -1)
    )
    assert min(len(v) for v in old.scale_layers_.values()) == 1  # the artefact removed


def test_vectorised_adjusted_rand_equals_scikit_learn():
    """The null's ARIs are computed for all splits at once; scikit-learn is the oracle,
    including the degenerate partitions (one cluster, all singletons)."""
    from msma_sklearn.segmentation._selection import _adjusted_rand_many

    rng = np.random.default_rng(0)
    n = 13
    cases = [rng.integers(0, k, size=n) for k in (1, 2, 3, 5, 13) for _ in range(4)]
    cases += [np.zeros(n, dtype=int), np.arange(n)]
    for ref in cases:
        got = _adjusted_rand_many(ref, np.vstack(cases))
        want = [adjusted_rand_score(ref, lab) for lab in cases]
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_admissible_random_splits_are_exactly_those_a_minimum_size_allows():
    from itertools import combinations

    from msma_sklearn.segmentation import random_contiguous_splits

    n, k, m = 13, 3, 3
    brute = [c for c in combinations(range(1, n), k - 1) if min(np.diff((0, *c, n))) >= m]
    got = random_contiguous_splits(n, k, min_size=m)
    assert sorted(map(tuple, got.tolist())) == brute
    # drawn (more splits than max_splits): every draw admissible, every split reachable
    drawn = random_contiguous_splits(n, k, min_size=m, max_splits=20, random_state=0)
    assert all(min(np.diff((0, *row, n))) >= m for row in drawn.tolist())
    many = random_contiguous_splits(40, 4, min_size=5, max_splits=1000, random_state=1)
    assert many.shape == (1000, 3)  # 1,771 admissible splits: drawn, not enumerated
    sizes = np.diff(np.hstack([np.zeros((1000, 1)), many, np.full((1000, 1), 40)]), axis=1)
    assert sizes.min() >= 5
    # uniform over compositions: each scale's expected size is n / k
    np.testing.assert_allclose(sizes.mean(0), 10.0, atol=0.6)
    with pytest.raises(ValueError, match="at least 5 layers"):
        random_contiguous_splits(12, 3, min_size=5)


def test_chance_agreement_is_drawn_from_admissible_splits():
    """Agreement with a reference that the minimum size makes likely is less surprising
    once chance is drawn from the splits the segmenter could return."""
    from msma_sklearn.segmentation import compare_to_random_splits

    ref = [4, 8]
    every = compare_to_random_splits([4, 9], ref, 12)
    admissible = compare_to_random_splits([4, 9], ref, 12, min_size=4)
    assert admissible.p_ari > every.p_ari
    assert admissible.null_ari_mean > every.null_ari_mean
