"""ScaleSegmenter: planted structure, layout, presets, bootstrap, contract, bad input."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from msma_sklearn import HiddenStateExtractor, ScaleSegmenter


def planted(sizes, n=120, d=8, noise=0.2, seed=0):
    """Layers in groups: each layer is a random rotation of its group's latent plus noise."""
    rng = np.random.default_rng(seed)
    layers = []
    for size in sizes:
        z = rng.normal(size=(n, d))
        for _ in range(size):
            q, _ = np.linalg.qr(rng.normal(size=(d, d)))
            layers.append(z @ q + noise * rng.normal(size=(n, d)))
    return np.hstack(layers)


def names(n_layers, hidden):
    return [f"layer{j}__{u}" for j in range(n_layers) for u in range(hidden)]


@pytest.mark.parametrize("sizes", [(3, 6, 4), (2, 2, 9), (5, 1, 5)])
@pytest.mark.parametrize("method", ["cka", "mi"])
def test_recovers_planted_structure_exactly(sizes, method):
    X = planted(sizes, n=400 if method == "mi" else 120, seed=sum(sizes))
    # a planted one-layer scale needs min_scale_size=1 (the default asks for 2 here)
    seg = ScaleSegmenter(method, layers=sum(sizes), min_scale_size=1, random_state=0).fit(X)
    expected = np.cumsum(sizes)[:-1].tolist()
    assert seg.boundaries_ == expected
    assert seg.scale_layers_["local"] == list(range(sizes[0]))
    if method == "mi":
        assert seg.adjacent_mi_.shape == (sum(sizes) - 1,)
        assert np.argsort(seg.adjacent_mi_)[:2].tolist() == sorted(
            (np.array(expected) - 1).tolist(), key=lambda i: seg.adjacent_mi_[i]
        )


def test_layout_from_feature_names_and_pipeline():
    X = planted((2, 3, 2), n=60)
    df = pd.DataFrame(X, columns=names(7, 8))
    seg = ScaleSegmenter().fit(df)
    assert seg.layers_.tolist() == list(range(7)) and seg.hidden_size_ == 8
    assert seg.boundaries_ == [2, 5]
    out = seg.set_output(transform="pandas").transform(df)
    assert list(out.columns[:2]) == ["local__0", "local__1"] and out.shape == (60, 24)


def test_inside_a_pipeline_with_the_extractor(texts):
    pipe = make_pipeline(
        HiddenStateExtractor("tiny-gpt2"), ScaleSegmenter(n_bootstrap=3, random_state=0)
    ).set_output(transform="pandas")
    Z = pipe.fit_transform(texts)
    seg = pipe[-1]
    assert seg.layers_.tolist() == [0, 1, 2, 3, 4]
    assert Z.shape == (len(texts), 3 * 64)
    assert sum(len(v) for v in seg.scale_layers_.values()) == 5
    assert seg.layer_similarity_.shape == (5, 5)
    assert seg.boundary_confidence_.shape == (2,)


def test_subset_of_layers_in_names():
    X = planted((2, 2, 2), n=50)
    cols = [f"layer{j}__{u}" for j in (0, 2, 4, 6, 8, 10) for u in range(8)]
    seg = ScaleSegmenter().fit(pd.DataFrame(X, columns=cols))
    assert seg.scale_layers_ == {"local": [0, 2], "intermediate": [4, 6], "global": [8, 10]}


def test_sample_permutation_leaves_result_unchanged():
    X = planted((3, 4, 3), n=90, noise=0.8, seed=5)
    perm = np.random.default_rng(0).permutation(90)
    a = ScaleSegmenter(layers=10).fit(X)
    b = ScaleSegmenter(layers=10).fit(X[perm])
    assert a.boundaries_ == b.boundaries_
    np.testing.assert_allclose(a.layer_similarity_, b.layer_similarity_, atol=1e-12)
    np.testing.assert_allclose(a.transform(X)[perm], b.transform(X[perm]), atol=1e-12)


@pytest.mark.parametrize("method", ["cka", "mi"])
def test_random_state_makes_bootstrap_repeat(method):
    X = planted((3, 3, 3), n=80, noise=1.5, seed=2)
    fits = [
        ScaleSegmenter(method, layers=9, n_bootstrap=6, random_state=7).fit(X) for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].bootstrap_boundaries_, fits[1].bootstrap_boundaries_)
    assert fits[0].boundary_confidence_.tolist() == fits[1].boundary_confidence_.tolist()
    assert np.all((fits[0].boundary_confidence_ >= 0) & (fits[0].boundary_confidence_ <= 1))


def test_bootstrap_confidence_is_one_for_clear_structure_and_lower_for_none():
    clear = ScaleSegmenter(layers=9, n_bootstrap=10, random_state=0).fit(planted((3, 3, 3)))
    assert clear.boundary_confidence_.tolist() == [1.0, 1.0]
    rng = np.random.default_rng(0)
    noise = ScaleSegmenter(layers=9, n_bootstrap=10, random_state=0).fit(
        rng.normal(size=(40, 9 * 8))
    )
    assert noise.boundary_confidence_.min() < 1.0


def test_transform_aggregates():
    X = planted((2, 3, 2), n=30)
    cube = X.reshape(30, 7, 8)
    mean = ScaleSegmenter(layers=7).fit(X)
    np.testing.assert_allclose(mean.transform(X)[:, 8:16], cube[:, 2:5].mean(axis=1))
    weighted = ScaleSegmenter(layers=7, aggregate="weighted").fit(X)
    w = weighted.layer_weights_["intermediate"]
    assert w.shape == (3,) and w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        weighted.transform(X)[:, 8:16], np.einsum("nlh,l->nh", cube[:, 2:5], w)
    )
    concat = ScaleSegmenter(layers=7, aggregate="concat").fit(X)
    assert concat.transform(X).shape == (30, 7 * 8)
    assert concat.get_feature_names_out()[16] == "intermediate__layer2__0"


def test_presets_manual_and_shares():
    X = planted((4, 5, 4), n=30)
    readme = ScaleSegmenter("preset", family="gpt2", layers=13).fit(X)
    assert readme.scale_layers_ == {
        "local": [0, 1, 2],
        "intermediate": list(range(3, 9)),
        "global": [9, 10, 11, 12],
    }
    assert readme.layer_shares_ == pytest.approx(
        {"local": 3 / 13, "intermediate": 6 / 13, "global": 4 / 13}
    )
    assert readme.share_denominator_ == "13 hidden states (embedding output + 12 block outputs)"
    assert readme.distribution_table("GPT-2") == "| GPT-2 | 0-2 (23%) | 3-8 (46%) | 9-12 (31%) |"
    code = ScaleSegmenter("preset", preset="msma_code", family="bert", layers=13).fit(X)
    assert code.scale_layers_["global"] == [8, 9, 10]  # 11 and 12 unused, as in the code
    uniform = ScaleSegmenter("preset", preset="uniform", layers=13).fit(X)
    assert [len(v) for v in uniform.scale_layers_.values()] == [5, 4, 4]
    manual = ScaleSegmenter(
        "manual",
        layers=13,
        scale_layers={"local": [0, 1], "intermediate": [2, 3], "global": [4, 5, 6]},
    ).fit(X)
    assert manual.boundaries_ == [2, 4]
    assert sum(manual.layer_shares_.values()) == pytest.approx(7 / 13)
    gaps = ScaleSegmenter(
        "manual", layers=13, require_contiguous=False, scale_layers=[[0, 2], [4, 6], [8, 12]]
    ).fit(X)
    assert gaps.scale_layers_["global"] == [8, 12]


def test_exclude_embeddings():
    X = planted((3, 3, 3), n=40)
    seg = ScaleSegmenter(layers=9, include_embeddings=False).fit(X)
    assert 0 not in [j for v in seg.scale_layers_.values() for j in v]
    assert seg.share_denominator_ == "8 hidden states (8 block outputs)"
    assert seg.layer_similarity_.shape == (8, 8)


def test_attention_span_method():
    spans = np.array([1.0, 1.2, 4.0, 4.1, 4.2, 9.0, 9.5])  # blocks 1..7
    X = planted((2, 3, 3), n=20)
    seg = ScaleSegmenter("attention_span", layers=8, attention_spans=spans).fit(X)
    assert seg.scale_layers_ == {"local": [0, 1, 2], "intermediate": [3, 4, 5], "global": [6, 7]}
    thr = ScaleSegmenter(
        "attention_span", layers=8, attention_spans=spans, span_thresholds=(2.0, 6.0)
    ).fit(X)
    assert thr.boundaries_ == [3, 6]
    with pytest.raises(ValueError, match="do not give 3 contiguous scales"):
        ScaleSegmenter(
            "attention_span", layers=8, attention_spans=spans[::-1], span_thresholds=(2.0, 6.0)
        ).fit(X)
    with pytest.raises(ValueError, match="must hold 7 finite values"):
        ScaleSegmenter("attention_span", layers=8, attention_spans=spans[:3]).fit(X)


def test_attention_span_from_extractor(texts):
    ext = HiddenStateExtractor("tiny-bert").fit(texts)
    spans = ext.attention_span(texts)
    assert spans.shape == (4,) and np.all(spans > 0)
    from msma_sklearn.extraction import load_model

    model, _ = load_model("tiny-bert")
    assert model.config._attn_implementation == "sdpa"  # restored after the call
    seg = ScaleSegmenter("attention_span", layers=5, attention_spans=spans)
    assert len(seg.fit(ext.transform(texts)).boundaries_) == 2


def test_attention_span_matches_a_direct_computation(texts):
    import torch

    from msma_sklearn.extraction import load_model

    ext = HiddenStateExtractor("tiny-gpt2", batch_size=3).fit(texts)
    spans = ext.attention_span(texts)
    model, tok = load_model("tiny-gpt2")
    model.set_attn_implementation("eager")
    try:
        total, count = np.zeros(4), 0
        for t in texts:
            ids = tok(t, return_tensors="pt").to(model.device)
            with torch.inference_mode():
                att = model.base_model(**ids, output_attentions=True).attentions
            n = ids.input_ids.shape[1]
            dist = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
            for j, a in enumerate(att):
                total[j] += (a[0].mean(0).numpy() * dist).sum()
            count += n
    finally:
        model.set_attn_implementation("sdpa")
    np.testing.assert_allclose(spans, total / count, rtol=1e-5)


# ---------------------------------------------------------------- bad input
def test_bad_input_messages():
    X = planted((2, 2, 2), n=20)
    with pytest.raises(ValueError, match="no feature names"):
        ScaleSegmenter().fit(X)
    with pytest.raises(ValueError, match="not a multiple of the 5 layers"):
        ScaleSegmenter(layers=5).fit(X)
    with pytest.raises(ValueError, match="look like 'layer3__17'"):
        ScaleSegmenter().fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(48)]))
    shuffled = names(6, 8)
    shuffled[0], shuffled[9] = shuffled[9], shuffled[0]
    with pytest.raises(ValueError, match="contiguous per-layer blocks"):
        ScaleSegmenter().fit(pd.DataFrame(X, columns=shuffled))
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ScaleSegmenter(layers=6).fit(bad)
    bad[3, 5] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        ScaleSegmenter(layers=6).fit(bad)
    with pytest.raises(ValueError, match="3 sample"):
        ScaleSegmenter(layers=6).fit(X[:3])
    with pytest.raises(ValueError, match="method"):
        ScaleSegmenter("spectral", layers=6).fit(X)
    with pytest.raises(ValueError, match="preset"):
        ScaleSegmenter("preset", preset="paper", layers=6).fit(X)
    with pytest.raises(ValueError, match="into n_scales=7"):
        ScaleSegmenter(layers=6, n_scales=7).fit(X)
    fitted = ScaleSegmenter(layers=6).fit(X)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:, :40])


@pytest.mark.parametrize(
    "lists,match",
    [
        ([[0, 1], [1, 2], [3, 4]], "in both 'local' and 'intermediate'"),
        ([[0, 2], [3], [4, 5]], "not contiguous"),
        ([[0], [1], [4, 9]], r"out of range 0\.\.5"),
        ([[3, 4], [0, 1], [5]], "depth order"),
        ([[0], [1]], "2 lists but n_scales=3"),
        ({"a": [0], "b": [1], "c": [2]}, "must be the scale names"),
    ],
)
def test_bad_manual_lists(lists, match):
    X = planted((2, 2, 2), n=20)
    with pytest.raises(ValueError, match=match):
        ScaleSegmenter("manual", layers=6, scale_layers=lists).fit(X)


def test_clone_keeps_params():
    seg = ScaleSegmenter("mi", n_scales=4, random_state=3)
    assert clone(seg).get_params() == seg.get_params()


def _expected_failures(estimator):
    return {
        "check_fit2d_1feature": "one column is one layer: a single layer cannot be split",
    }


@parametrize_with_checks(
    [ScaleSegmenter(layers="columns", n_scales=2)],
    expected_failed_checks=_expected_failures,
    xfail_strict=True,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_standardize_removes_a_dominant_direction():
    """A huge unit shared by layers 4..8 (a planted rogue dimension crossing the planted
    boundary at 6) makes raw CKA see one block; standardising (the default) recovers the
    planted structure underneath."""
    rng = np.random.default_rng(0)
    X = planted((3, 3, 3), n=100, noise=0.1)
    spike = 1e3 * rng.normal(size=100)
    cube = X.reshape(100, 9, 8).copy()
    cube[:, 4:, 0] = spike[:, None]  # one massive unit in layers 4..8
    X = cube.reshape(100, -1)
    raw = ScaleSegmenter(layers=9, standardize=False).fit(X)  # the old behaviour
    std = ScaleSegmenter(layers=9).fit(X)  # the default ignores the rogue unit
    assert raw.layer_similarity_[4, 8] > 0.99
    assert raw.boundaries_ == [2, 4]  # follows the rogue unit
    assert std.boundaries_ == [3, 6]
    assert raw.boundaries_ != std.boundaries_
    # the MI method too: the spike dominates the PCA of raw states, not of standardised ones
    mi_std = ScaleSegmenter("mi", layers=9, random_state=0).fit(X)
    assert mi_std.boundaries_ == [3, 6]
    # transform still pools the raw (unstandardised) states
    np.testing.assert_allclose(std.transform(X)[:, :8], cube[:, 0:3].mean(axis=1))
    np.testing.assert_allclose(std.transform(X)[:, 16:], cube[:, 6:9].mean(axis=1))
