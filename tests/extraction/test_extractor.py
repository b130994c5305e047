"""HiddenStateExtractor on tiny models: oracles, invariants, contract, bad input."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from msma_sklearn import HiddenStateExtractor
from msma_sklearn.extraction import load_model, reshape_by_layer
from msma_sklearn.extraction._core import resolve_layout
from tests.conftest import all_hooks, counting_block_calls, numpy_pool, reference_states

ARCHS = [
    ("tiny-gpt2", "auto"),
    ("tiny-bert", "auto"),
    ("tiny-roberta", "auto"),
    ("tiny-t5", "encoder"),
    ("tiny-t5", "decoder"),
]


def _reference(name, stack, texts, pooling, layers=None, skip=0):
    model, tokenizer = load_model(name)
    rows = []
    for text in texts:
        hs = reference_states(model, tokenizer, text, stack=stack)
        chosen = range(len(hs)) if layers is None else layers
        rows.append(np.concatenate([numpy_pool(hs[j], pooling, skip) for j in chosen]))
    return np.stack(rows)


@pytest.mark.parametrize("name,stack", ARCHS)
@pytest.mark.parametrize("pooling", ["mean", "first", "last", "max"])
def test_matches_model_own_hidden_states(name, stack, pooling, texts):
    """Oracle: batched, length-sorted, padded extraction == the model's own
    output_hidden_states on each unpadded text, pooled independently (the
    default leaves the first token out on causal stacks: tiny-gpt2, T5 decoder)."""
    ext = HiddenStateExtractor(name, pooling=pooling, stack=stack, batch_size=3).fit(texts)
    X = ext.transform(texts)
    causal = name == "tiny-gpt2" or stack == "decoder"
    assert ext.sink_tokens_ == (1 if causal else 0)
    ref = _reference(name, stack, texts, pooling, skip=ext.sink_tokens_)
    assert X.dtype == np.float32
    assert X.shape == (len(texts), (ext.n_layers_ + 1) * ext.hidden_size_)
    np.testing.assert_allclose(X, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,stack", ARCHS)
def test_left_padding_equals_right_padding(name, stack, texts):
    right = HiddenStateExtractor(name, stack=stack, batch_size=4, padding_side="right")
    left = HiddenStateExtractor(name, stack=stack, batch_size=4, padding_side="left")
    np.testing.assert_allclose(
        right.fit(texts).transform(texts), left.fit(texts).transform(texts), atol=1e-5
    )


@pytest.mark.parametrize("name,stack", ARCHS)
def test_batched_equals_one_at_a_time(name, stack, texts):
    batched = HiddenStateExtractor(name, stack=stack, batch_size=len(texts)).fit(texts)
    single = HiddenStateExtractor(name, stack=stack, batch_size=1).fit(texts)
    np.testing.assert_allclose(batched.transform(texts), single.transform(texts), atol=1e-5)
    # and each text alone, in a call of its own
    alone = np.vstack([single.transform([t]) for t in texts])
    np.testing.assert_allclose(batched.transform(texts), alone, atol=1e-5)


def test_mean_all_reproduces_padding_included_mean(texts):
    """`mean_all` == the model's own states on texts padded to max_length, averaged
    over every position (the original code's pooling)."""
    max_length = 40
    ext = HiddenStateExtractor("tiny-bert", pooling="mean_all", max_length=max_length)
    X = ext.fit(texts).transform(texts)
    model, tokenizer = load_model("tiny-bert")
    enc = tokenizer(texts, padding="max_length", max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        hs = model.base_model(**enc.to(model.device), output_hidden_states=True).hidden_states
    ref = torch.cat([h.mean(dim=1) for h in hs], dim=1).cpu().numpy()
    np.testing.assert_allclose(X, ref, atol=1e-5)
    # and it differs from the mask-aware mean, which is the point of having both
    mean = HiddenStateExtractor("tiny-bert", max_length=max_length).fit(texts).transform(texts)
    assert np.abs(mean - X).max() > 1e-2


@pytest.mark.parametrize("name,stack", ARCHS)
def test_layer_subset_equals_columns_of_all(name, stack, texts):
    full = HiddenStateExtractor(name, stack=stack).fit(texts)
    X_full = full.reshape_by_layer(full.transform(texts))
    sub = HiddenStateExtractor(name, stack=stack, layers=[2, 0, -1]).fit(texts)
    assert sub.layers_.tolist() == [0, 2, full.n_layers_]
    X_sub = sub.reshape_by_layer(sub.transform(texts))
    np.testing.assert_allclose(X_sub, X_full[:, [0, 2, full.n_layers_]], atol=1e-6)


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-bert"])
def test_forward_stops_after_deepest_requested_layer(name, texts):
    ext = HiddenStateExtractor(name, layers=[1, 2]).fit(texts)
    model, _ = load_model(name)
    with counting_block_calls(model) as calls:
        ext.transform(texts[:3])
    # hidden state 2 is the input of block 2: blocks 0 and 1 ran, none after
    assert calls[0] == 1 and calls[1] == 1
    assert calls[2:] == [0] * (len(calls) - 2), calls


def test_gpt2_without_pad_token(texts):
    _, tokenizer = load_model("tiny-gpt2")
    assert tokenizer.pad_token is None
    X = HiddenStateExtractor("tiny-gpt2", pooling="last", batch_size=4).fit(texts).transform(texts)
    assert np.isfinite(X).all()


@pytest.mark.parametrize("name", ["tiny-gpt2", "tiny-t5"])
def test_no_hook_left_after_success_or_exception(name, texts, monkeypatch):
    ext = HiddenStateExtractor(name, layers=[1]).fit(texts)
    model, _ = load_model(name)
    before = all_hooks(model)
    ext.transform(texts)
    assert all_hooks(model) == before
    # an exception inside the forward pass leaves nothing behind either
    block = resolve_layout(model).blocks[0]

    def boom(*args, **kwargs):
        raise RuntimeError("forward failed")

    monkeypatch.setattr(block, "forward", boom)
    with pytest.raises(RuntimeError, match="forward failed"):
        ext.transform(texts)
    assert all_hooks(model) == before


def test_truncation_warns_once_with_count(texts):
    ext = HiddenStateExtractor("tiny-bert", max_length=8).fit(texts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = ext.transform(texts)
    messages = [str(w.message) for w in caught if "truncated" in str(w.message)]
    _, tokenizer = load_model("tiny-bert")
    n_long = sum(len(tokenizer(t).input_ids) > 8 for t in texts)
    assert len(messages) == 1
    assert messages[0].startswith(f"{n_long} of {len(texts)} text(s) exceed max_length=8")
    assert X.shape[0] == len(texts)


def test_transform_tokens_matches_reference_and_pools_to_transform(texts):
    ext = HiddenStateExtractor("tiny-gpt2", layers=[0, 3], batch_size=3).fit(texts)
    states, tokens = ext.transform_tokens(texts, return_tokens=True)
    model, tokenizer = load_model("tiny-gpt2")
    for text, s, toks in zip(texts, states, tokens, strict=True):
        ref = reference_states(model, tokenizer, text)
        assert s.shape == (2, len(toks), ext.hidden_size_)
        np.testing.assert_allclose(s, np.stack([ref[0], ref[3]]), atol=1e-5)
    k = ext.sink_tokens_  # the pooled output leaves the causal LM's first token out
    assert k == 1
    pooled = np.stack([s[:, k:].mean(axis=1).reshape(-1) for s in states])
    np.testing.assert_allclose(pooled, ext.transform(texts), atol=1e-5)


def test_fitted_attributes_and_feature_names(texts):
    ext = HiddenStateExtractor("tiny-gpt2", layers=[0, 4])
    assert not hasattr(ext, "layers_")
    ext.fit(texts)
    assert ext.n_layers_ == 4 and ext.hidden_size_ == 64
    assert ext.model_type_ == "gpt2" and ext.stack_ == "decoder"
    names = ext.get_feature_names_out()
    assert names[0] == "layer0__0" and names[64] == "layer4__0" and names[-1] == "layer4__63"
    X = ext.transform(texts)
    assert X.shape[1] == len(names)
    np.testing.assert_array_equal(ext.reshape_by_layer(X), reshape_by_layer(X, 2))


def test_set_output_pandas(texts):
    pd = pytest.importorskip("pandas")
    ext = HiddenStateExtractor("tiny-gpt2", layers=[1]).set_output(transform="pandas")
    df = ext.fit(texts).transform(texts)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(ext.get_feature_names_out())


def test_half_precision_close_to_float32(texts):
    ref = HiddenStateExtractor("tiny-bert").fit(texts).transform(texts)
    half = HiddenStateExtractor("tiny-bert", dtype="bfloat16").fit(texts).transform(texts)
    assert half.dtype == np.float32
    scale = np.abs(ref).max()
    assert np.abs(half - ref).max() < 0.05 * scale
    assert np.abs(half - ref).max() > 0  # really ran in another precision


# ---------------------------------------------------------------- contract
def test_clone_and_params():
    ext = HiddenStateExtractor("tiny-gpt2", layers=[1, 2], pooling="max")
    cloned = clone(ext)
    assert cloned.get_params() == ext.get_params()
    assert cloned is not ext


def test_pickle_drops_weights_and_reloads(texts):
    ext = HiddenStateExtractor("tiny-gpt2").fit(texts)
    X = ext.transform(texts)
    blob = pickle.dumps(ext)
    assert len(blob) < 100_000  # no weights inside
    assert "_model" not in ext.__getstate__()
    restored = pickle.loads(blob)
    assert getattr(restored, "_model", None) is None
    np.testing.assert_array_equal(restored.transform(texts), X)


def test_fit_is_idempotent_and_does_not_modify_params_or_input(texts):
    ext = HiddenStateExtractor("tiny-gpt2", layers=[-1])
    params = ext.get_params()
    original = list(texts)
    assert ext.fit(texts) is ext
    X1 = ext.transform(texts)
    ext.fit(texts)
    np.testing.assert_array_equal(X1, ext.transform(texts))
    assert ext.get_params() == params
    assert texts == original


def test_sample_order_invariance(texts):
    ext = HiddenStateExtractor("tiny-roberta", batch_size=2).fit(texts)
    perm = np.random.default_rng(0).permutation(len(texts))
    X = ext.transform(texts)
    np.testing.assert_allclose(ext.transform([texts[i] for i in perm]), X[perm], atol=1e-5)


def test_not_fitted_raises(texts):
    ext = HiddenStateExtractor("tiny-gpt2")
    for method in (ext.transform, ext.transform_tokens):
        with pytest.raises(NotFittedError):
            method(texts)
    with pytest.raises(NotFittedError):
        ext.get_feature_names_out()


def test_pipeline_with_memory(tmp_path, texts):
    def make():
        return Pipeline(
            [("hidden", HiddenStateExtractor("tiny-gpt2", layers=[2])), ("pca", PCA(2))],
            memory=str(tmp_path / "memory"),
        )

    Z1 = make().fit_transform(texts)
    assert any((tmp_path / "memory").rglob("*.pkl"))
    Z2 = make().fit_transform(texts)
    np.testing.assert_allclose(Z1, Z2, atol=1e-6)


# ------------------------------------------------------------------ cache_dir
def test_cache_dir_hit_and_corruption(tmp_path, texts, monkeypatch):
    ext = HiddenStateExtractor("tiny-gpt2", layers=[1], cache_dir=tmp_path).fit(texts)
    X = ext.transform(texts)
    files = list(tmp_path.glob("hidden-*.npz"))
    assert len(files) == 1
    # a hit does not compute
    monkeypatch.setattr(ext, "_compute", lambda t: pytest.fail("cache miss"))
    np.testing.assert_array_equal(ext.transform(texts), X)
    monkeypatch.undo()
    # other texts or other parameters -> another key
    ext.transform(texts[:3])
    HiddenStateExtractor("tiny-gpt2", layers=[2], cache_dir=tmp_path).fit(texts).transform(texts)
    assert len(list(tmp_path.glob("hidden-*.npz"))) == 3
    # a truncated entry is detected and recomputed
    raw = files[0].read_bytes()
    files[0].write_bytes(raw[: len(raw) // 2])
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        np.testing.assert_array_equal(ext.transform(texts), X)
    # a well-formed entry with wrong numbers (checksum mismatch) too
    with np.load(files[0]) as data:
        bad = data["X"].copy()
        digest = data["sha256"]
    bad[0, 0] += 1.0
    with open(files[0], "wb") as fh:
        np.savez(fh, X=bad, sha256=digest)
    with pytest.warns(UserWarning, match="checksum"):
        np.testing.assert_array_equal(ext.transform(texts), X)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X,exc,match",
    [
        ([], ValueError, "X is empty"),
        ("one text", TypeError, "single str"),
        (None, TypeError, "got None"),
        (["ok", 3], TypeError, "index 1: int"),
        (["ok", "  "], ValueError, "no visible character.*at index 1"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, r"shape \(2, 2\)"),
    ],
)
def test_bad_texts(X, exc, match):
    ext = HiddenStateExtractor("tiny-gpt2")
    with pytest.raises(exc, match=match):
        ext.fit(X)
    ext.fit(["fine"])
    with pytest.raises(exc, match=match):
        ext.transform(X)


@pytest.mark.parametrize(
    "params,exc,match",
    [
        ({"pooling": "median"}, ValueError, "pooling"),
        ({"max_length": 0}, ValueError, "max_length"),
        ({"batch_size": -1}, ValueError, "batch_size"),
        ({"dtype": "float64"}, ValueError, "dtype"),
        ({"layers": [0, 9]}, ValueError, r"layers \[9\] out of range.*0\.\.4"),
        ({"layers": [1, -4]}, ValueError, "duplicates"),
        ({"layers": []}, ValueError, "non-empty"),
        ({"stack": "encoder"}, ValueError, "only a decoder stack"),
        ({"max_length": 10_000}, ValueError, "max_length=10000 exceeds"),
        ({"device": "quantum"}, ValueError, "not a valid torch device"),
        ({"model": "tiny-llama"}, ValueError, "Unknown offline model 'tiny-llama'"),
        ({"model": 3}, ValueError, "model"),
    ],
)
def test_bad_params(params, exc, match):
    ext = HiddenStateExtractor(**{"model": "tiny-gpt2", **params})
    with pytest.raises(exc, match=match):
        ext.fit(["some text"])


def test_unknown_hub_model_fails_fast_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ValueError, match="'nobody/no-such-model'.*minilm, smollm2-135m, gemma3-270m, tiny-gpt2"
    ):
        HiddenStateExtractor("nobody/no-such-model").fit(["text"])


def test_verbose_shows_progress_bar(capsys, texts):
    HiddenStateExtractor("tiny-gpt2", batch_size=2, verbose=1).fit(texts).transform(texts)
    assert "Extracting" in capsys.readouterr().err


@pytest.mark.parametrize("name,stack", ARCHS)
@pytest.mark.parametrize("sinks", [0, 2])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_sink_tokens_leave_leading_tokens_out(name, stack, sinks, padding_side, texts):
    """Oracle: pooling with sink_tokens=n == pooling each unpadded text's tokens n.. ."""
    ext = HiddenStateExtractor(
        name, stack=stack, sink_tokens=sinks, batch_size=3, padding_side=padding_side
    ).fit(texts)
    assert ext.sink_tokens_ == sinks
    ref = _reference(name, stack, texts, "mean", skip=sinks)
    np.testing.assert_allclose(ext.transform(texts), ref, atol=1e-5, rtol=0)


def test_sink_tokens_short_text_keeps_its_tokens_and_warns():
    ext = HiddenStateExtractor("tiny-gpt2", sink_tokens=50).fit(["a"])
    with pytest.warns(UserWarning, match=r"1 of 1 text\(s\) have no more than sink_tokens=50"):
        X = ext.transform(["a short text"])
    ref = _reference("tiny-gpt2", "auto", ["a short text"], "mean", skip=0)
    np.testing.assert_allclose(X, ref, atol=1e-5, rtol=0)


def test_sink_tokens_refused_where_it_cannot_apply():
    for pooling in ("cls", "mean_all"):
        with pytest.raises(
            ValueError, match=f"sink_tokens=1 does not apply to pooling='{pooling}'"
        ):
            HiddenStateExtractor("tiny-gpt2", pooling=pooling, sink_tokens=1).fit(["a"])
        assert HiddenStateExtractor("tiny-gpt2", pooling=pooling).fit(["a"]).sink_tokens_ == 0


def test_sink_tokens_in_cache_key(tmp_path, texts):
    a = HiddenStateExtractor("tiny-gpt2", cache_dir=tmp_path).fit(texts).transform(texts)
    b = HiddenStateExtractor("tiny-gpt2", sink_tokens=0, cache_dir=tmp_path).fit(texts)
    assert not np.allclose(a, b.transform(texts))
    assert len(list(tmp_path.glob("hidden-*.npz"))) == 2


def test_truncation_warning_points_at_the_callers_line():
    """It was attributed to scikit-learn's _set_output.py (the wrapper around transform)."""
    import warnings

    ext = HiddenStateExtractor("tiny-gpt2", max_length=4).fit(["a b c d e f g h"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ext.transform(["a b c d e f g h i j"])
    (w,) = [w for w in caught if "truncated" in str(w.message)]
    assert w.filename == __file__
