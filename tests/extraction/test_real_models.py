"""Oracles on the two real pretrained models (MiniLM, SmolLM2-135M). Run in CI."""

import pickle

import numpy as np
import pytest
import torch

from msma_sklearn import HiddenStateExtractor
from msma_sklearn.datasets import load_corpus
from msma_sklearn.extraction import load_model
from tests.conftest import all_hooks, counting_block_calls, numpy_pool, reference_states

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_texts():
    texts = load_corpus().texts
    return [texts[i] for i in (0, 37, 70, 101, 150, 203, 255)]


def _reference(name, texts, pooling, layers, skip=0):
    model, tokenizer = load_model(name)
    rows = []
    for text in texts:
        hs = reference_states(model, tokenizer, text)
        rows.append(np.concatenate([numpy_pool(hs[j], pooling, skip) for j in layers]))
    return np.stack(rows)


@pytest.mark.parametrize("name", ["minilm", "smollm2-135m"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_real_model_matches_own_hidden_states(name, pooling, corpus_texts):
    ext = HiddenStateExtractor(name, pooling=pooling, batch_size=3).fit(corpus_texts)
    X = ext.transform(corpus_texts)
    assert ext.sink_tokens_ == (1 if name == "smollm2-135m" else 0)
    ref = _reference(name, corpus_texts, pooling, ext.layers_, skip=ext.sink_tokens_)
    scale = np.abs(ref).max(axis=0, keepdims=True) + 1.0
    # relative to each column's magnitude: SmolLM2 has massive activations (~1e3)
    assert np.max(np.abs(X - ref) / scale) < 1e-5


def test_real_model_architectures():
    ext = HiddenStateExtractor("minilm").fit(["x"])
    assert (ext.model_type_, ext.n_layers_, ext.hidden_size_) == ("bert", 6, 384)
    ext = HiddenStateExtractor("smollm2-135m").fit(["x"])
    assert (ext.model_type_, ext.n_layers_, ext.hidden_size_) == ("llama", 30, 576)
    assert ext.stack_ == "decoder"


def test_smollm2_padding_side_and_layer_subset(corpus_texts):
    full = HiddenStateExtractor("smollm2-135m", layers=[3, 12, 30], batch_size=4)
    X_right = full.fit(corpus_texts).transform(corpus_texts)
    left = HiddenStateExtractor("smollm2-135m", layers=[3, 12, 30], padding_side="left")
    X_left = left.set_params(batch_size=4).fit(corpus_texts).transform(corpus_texts)
    scale = np.abs(X_right).max(axis=0) + 1.0
    assert np.max(np.abs(X_right - X_left) / scale) < 1e-5
    # requesting only the shallow layers stops early and gives the same columns
    model, _ = load_model("smollm2-135m")
    with counting_block_calls(model) as calls:
        shallow = HiddenStateExtractor("smollm2-135m", layers=[3, 12], batch_size=4)
        X_shallow = shallow.fit(corpus_texts).transform(corpus_texts)
    assert sum(calls[:12]) == 12 * 2 and sum(calls[12:]) == 0  # 7 texts / 4 = 2 batches
    np.testing.assert_allclose(X_shallow, X_right[:, : 2 * 576], rtol=1e-5, atol=1e-4)


def test_smollm2_hooks_pickle_and_cache(corpus_texts, tmp_path):
    from msma_sklearn.utils import user_cache_dir

    ext = HiddenStateExtractor("smollm2-135m", layers=[5]).fit(corpus_texts)
    model, _ = load_model("smollm2-135m")
    before = all_hooks(model)
    X = ext.transform(corpus_texts)
    assert all_hooks(model) == before
    restored = pickle.loads(pickle.dumps(ext))
    np.testing.assert_array_equal(restored.transform(corpus_texts), X)
    cached = list((user_cache_dir() / "models").glob("smollm2-135m-*/MANIFEST.json"))
    assert cached, "the dequantised SmolLM2 checkpoint should be cached"


def test_smollm2_is_the_real_pretrained_model():
    """Greedy continuation from the dequantised weights answers a factual prompt."""
    model, tokenizer = load_model("smollm2-135m")
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0][ids.input_ids.shape[1] :])


@pytest.mark.slow
def test_smollm2_first_token_is_an_attention_sink_and_is_left_out(corpus_texts):
    """Measured reason for sink_tokens='auto': on SmolLM2 the first token's state is far
    larger than the others' in the middle layers; on MiniLM the [CLS] state is not."""
    for name, lo in (("smollm2-135m", 20.0), ("minilm", None)):
        ext = HiddenStateExtractor(name).fit(corpus_texts)
        ratios = []
        for s in ext.transform_tokens(corpus_texts):
            norms = np.linalg.norm(s, axis=2)
            ratios.append(norms[:, 0] / np.median(norms[:, 1:], axis=1))
        ratio = np.median(ratios, axis=0)
        if lo is None:
            assert ratio.max() < 2.0 and ext.sink_tokens_ == 0
        else:
            assert ratio[12:25].min() > lo and ext.sink_tokens_ == 1
