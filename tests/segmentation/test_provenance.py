"""Scales are trusted by provenance, not by shape: a segmenter records the model its
states came from, the Intervener refuses another model's scales, and ``layers=int``
must cut the columns at the real layer width."""

import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline

from msma_sklearn import HiddenStateExtractor, Intervener, ScaleSegmenter, load_corpus
from msma_sklearn.extraction import load_model, model_fingerprint


@pytest.fixture(scope="module")
def corpus_texts():
    texts, _ = load_corpus(return_X_y=True, level="global")
    return list(texts[:48])


def _segmenter(model, texts):
    pipe = make_pipeline(HiddenStateExtractor(model), ScaleSegmenter(random_state=0))
    pipe.set_output(transform="pandas")
    pipe.fit(texts)
    return pipe[-1]


def test_a_segmenter_records_the_model_its_states_came_from(corpus_texts):
    seg = _segmenter("tiny-gpt2", corpus_texts)
    model, _ = load_model("tiny-gpt2")
    assert seg.source_model_ == {
        "model": "tiny-gpt2",
        "model_type": "gpt2",
        "stack": "decoder",
        "weights": model_fingerprint(model),
    }
    # a bare array carries no provenance
    X = HiddenStateExtractor("tiny-gpt2").fit(corpus_texts).transform(corpus_texts)
    assert isinstance(X, np.ndarray)
    assert ScaleSegmenter(layers=5).fit(X).source_model_ is None


def test_another_models_scales_are_refused_even_with_the_same_layout(corpus_texts):
    bert = _segmenter("tiny-bert", corpus_texts)  # 5 hidden states x 64, as tiny-gpt2
    assert bert.layers_.size == 5 and bert.hidden_size_ == 64
    with pytest.raises(ValueError, match=r"fitted on the encoder states of 'tiny-bert'.*another"):
        Intervener("tiny-gpt2", scale="global", scale_layers=bert).fit()
    # the same model's scales: accepted without a warning
    gpt2 = _segmenter("tiny-gpt2", corpus_texts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        iv = Intervener("tiny-gpt2", scale="global", scale_layers=gpt2).fit()
    assert iv.layers_.tolist() == gpt2.scale_layers_["global"]


def test_scales_that_cannot_be_checked_are_warned(corpus_texts):
    table = {"local": [0, 1], "intermediate": [2], "global": [3, 4]}
    with pytest.warns(UserWarning, match=r"plain dict: it cannot be checked against 'tiny-gpt2'"):
        Intervener("tiny-gpt2", scale="global", scale_layers=table).fit()
    X = HiddenStateExtractor("tiny-gpt2").fit(corpus_texts).transform(corpus_texts)
    seg = ScaleSegmenter(layers=5).fit(X)
    with pytest.warns(UserWarning, match=r"without the extractor's provenance"):
        Intervener("tiny-gpt2", scale="global", scale_layers=seg).fit()


def test_layers_int_must_cut_the_columns_at_the_layer_width(corpus_texts):
    X = HiddenStateExtractor("tiny-gpt2").fit(corpus_texts).transform(corpus_texts)  # 5 x 64
    for wrong in (4, 10):
        with pytest.raises(ValueError, match=rf"layers={wrong} cuts .* look like blocks of 64"):
            ScaleSegmenter(layers=wrong).fit(X)
    assert ScaleSegmenter(layers=5).fit(X).hidden_size_ == 64
    # with the extractor's names, the names decide
    ext = HiddenStateExtractor("tiny-gpt2").set_output(transform="pandas")
    df = ext.fit_transform(corpus_texts)
    with pytest.raises(ValueError, match=r"feature names hold 5 layers of 64"):
        ScaleSegmenter(layers=10).fit(df)


def test_unstructured_columns_are_not_refused():
    X = np.random.default_rng(0).normal(size=(60, 7 * 12))
    assert ScaleSegmenter(layers=7, n_scales=2).fit(X).hidden_size_ == 12
