"""Text metrics: hand-checkable cases and the model's own loss as an oracle."""

import numpy as np
import pytest
import torch

from msma_sklearn.extraction import load_model
from msma_sklearn.metrics.text import TextMetrics, distinct_n, perplexity, type_token_ratio


def test_lexical_counts():
    assert type_token_ratio(["a b a b", "Yes"]).tolist() == [0.5, 1.0]
    assert distinct_n(["a b a b"], 1).tolist() == [0.5]
    assert np.isnan(distinct_n(["one"], 2)[0])


@pytest.fixture(scope="module")
def table():
    texts = [
        "The cat sat on the mat. The dog slept by the door.",
        "I love this wonderful day!",
        "This is awful. This is awful.",
        "Great news. Terrible news.",
    ]
    return TextMetrics().compute(texts)


def test_spacy_metrics(table):
    assert table["sentence_count"].tolist() == [2.0, 1.0, 2.0, 2.0]
    assert table.loc[1, "mean_sentence_length"] == 6.0  # I love this wonderful day !
    assert table.loc[1, "max_dependency_depth"] >= 2


def test_coherence_and_sentiment(table):
    assert table.loc[2, "coherence"] == pytest.approx(1.0, abs=1e-5)  # identical sentences
    assert np.isnan(table.loc[1, "coherence"])
    assert table.loc[1, "sentiment"] > 0.5 and table.loc[2, "sentiment"] < -0.5
    assert table.loc[2, "sentiment_spread"] == pytest.approx(0.0)
    assert table.loc[3, "sentiment_spread"] > 0.5  # one positive, one negative sentence
    assert np.isnan(table.loc[1, "sentiment_spread"])


def test_perplexity_equals_the_models_own_loss():
    texts = ["The cat sat on the mat.", "A much longer sentence about markets and rain."]
    got = perplexity(texts, "tiny-gpt2", batch_size=2)
    model, tok = load_model("tiny-gpt2")
    for text, value in zip(texts, got, strict=True):
        ids = tok(text, return_tensors="pt").input_ids.to(model.device)
        with torch.inference_mode():
            loss = model(ids, labels=ids).loss
        assert value == pytest.approx(float(torch.exp(loss)), rel=1e-4)


def test_texts_without_words_give_nan_not_errors():
    table = TextMetrics(["mtld", "ttr"]).compute(["2022-01-01 12", "..."])
    assert table["mtld"].isna().all()  # no factor completes in either
    assert table["ttr"].isna().tolist() == [False, True]  # our word pattern counts digits


def test_unknown_metric():
    with pytest.raises(ValueError, match="Unknown text metrics \\['rhyme'\\]"):
        TextMetrics(["rhyme"])


def test_continuation_perplexity_in_a_batch_equals_the_models_own_loss():
    """Prompts of different lengths share a batch, so the LM head runs from the shortest
    prompt on; each row must still equal the model's loss on its continuation alone."""
    prompts = ["The cat", "A much longer prompt about the markets and the", "Rain"]
    conts = [" sat on the mat.", " weather today.", " fell all night over the hills."]
    got = perplexity(conts, "tiny-gpt2", prompts=prompts, batch_size=3)
    model, tok = load_model("tiny-gpt2")
    for prompt, cont, value in zip(prompts, conts, got, strict=True):
        ids = tok(prompt + cont, return_tensors="pt").input_ids.to(model.device)
        labels = ids.clone()
        labels[:, : len(tok(prompt)["input_ids"])] = -100
        with torch.inference_mode():
            loss = model(ids, labels=labels).loss
        assert value == pytest.approx(float(torch.exp(loss)), rel=1e-4)


def test_mattr_against_a_hand_count():
    from msma_sklearn.metrics.text import moving_average_ttr

    # windows of 3: "a b a" 2/3, "b a c" 3/3, "a c c" 2/3 -> mean 7/9
    assert moving_average_ttr(["a b a c c"], window=3)[0] == pytest.approx(7 / 9)
    # the whole text when it is one window; undefined when shorter
    assert moving_average_ttr(["a b a"], window=3)[0] == pytest.approx(2 / 3)
    assert np.isnan(moving_average_ttr(["a b"], window=3)[0])
    # unlike the TTR it does not fall with length on a stationary text
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(40)]
    short, long = " ".join(rng.choice(vocab, 60)), " ".join(rng.choice(vocab, 600))
    from msma_sklearn.metrics.text import type_token_ratio

    assert type_token_ratio([long])[0] < 0.5 * type_token_ratio([short])[0]
    m = moving_average_ttr([short, long], window=25)
    assert m[0] == pytest.approx(m[1], abs=0.05)
    with pytest.raises(ValueError, match="window"):
        moving_average_ttr(["a"], window=0)


def test_mtld_equals_lexicalrichness_where_defined_and_is_undefined_on_short_texts():
    import itertools

    lr = pytest.importorskip("lexicalrichness")
    from msma_sklearn.metrics.text import mtld, mtld_factors

    rng = np.random.default_rng(0)
    vocab = ["".join(p) for p in itertools.product("abcdefgh", repeat=2)][:60]
    for n in (100, 400):
        text = " ".join(rng.choice(vocab, n))
        assert mtld([text])[0] == pytest.approx(lr.LexicalRichness(text).mtld(threshold=0.72))
    # 40 distinct words: no factor completes, MTLD would be an extrapolation: undefined
    text = " ".join(vocab[:40])
    assert mtld_factors(text.split()) == (0, 0.0)
    assert np.isnan(mtld([text])[0])


def test_repetition_and_length():
    from msma_sklearn.metrics.text import repeated_ngram_share, word_count

    loop = " ".join(["the cat sat on the mat"] * 5)
    assert repeated_ngram_share([loop])[0] == pytest.approx(1 - 6 / 27)  # 27 4-grams, 6 kinds
    assert repeated_ngram_share(["one two three four five"])[0] == 0.0
    assert np.isnan(repeated_ngram_share(["too short"])[0])
    table = TextMetrics(["n_words", "repetition", "mattr"]).compute([loop, "a b"])
    assert table["n_words"].tolist() == [30.0, 2.0] == word_count([loop, "a b"]).tolist()
    assert np.isnan(table["mattr"][1])


def test_coherence_leaves_out_sentences_with_no_visible_character():
    """A generated run of newlines and zero-width spaces is not embedded (it used to stop
    the study with a 'no visible character' error); an empty continuation is NaN."""
    from msma_sklearn.metrics.text import TextMetrics

    texts = [
        "The river rose all night.\n\n\u200b\u200b\n\nThe town slept through it.",
        "",
        "\n\n\u200b",
    ]
    got = TextMetrics(["coherence"]).compute(texts)["coherence"].to_numpy()
    assert np.isfinite(got[0]) and np.isnan(got[1:]).all()
