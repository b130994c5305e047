"""Intervener: identity, batching, hooks, positions, operators, bad input."""

import numpy as np
import pytest

from msma_sklearn import Intervener, ScaleSegmenter
from msma_sklearn.extraction import load_model
from msma_sklearn.extraction._core import resolve_layout
from tests.conftest import all_hooks

PROMPTS = ["The cat sat on", "Stock markets", "Why is the sky", "Whisk the eggs and"]


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "scaling", "alpha": 1.0},
        {"kind": "translation", "delta": np.zeros(64)},
        {"kind": "noise", "sigma": 0.0},
        {"kind": "attention", "temperature": 1.0},
    ],
)
def test_identity_intervention_is_token_identical(params):
    iv = Intervener("tiny-gpt2", layers=[1, 3, 4], max_new_tokens=8, **params).fit()
    assert iv.generate(PROMPTS) == iv.generate_baseline(PROMPTS)


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "scaling", "alpha": 5.0},
        {"kind": "translation", "direction": "random", "norm": 3.0},
        {"kind": "noise", "sigma": 2.0},
        {"kind": "attention", "temperature": 0.05},
    ],
)
def test_operators_change_the_text_and_batching_does_not(params):
    iv = Intervener("tiny-gpt2", layers=[1, 2], max_new_tokens=8, random_state=0, **params)
    iv.fit(PROMPTS)
    batched = iv.generate(PROMPTS)
    assert batched != iv.generate_baseline(PROMPTS)
    one_by_one = [iv.set_params(batch_size=1).generate([p])[0] for p in PROMPTS]
    assert batched == one_by_one
    assert iv.set_params(batch_size=8).generate(PROMPTS) == batched  # seeded: repeats


def test_hooks_are_removed_even_when_generation_raises(monkeypatch):
    iv = Intervener("tiny-gpt2", layers=[2], kind="scaling", alpha=2.0, max_new_tokens=4).fit()
    model, _ = load_model("tiny-gpt2")
    before = all_hooks(model)
    iv.generate(PROMPTS)
    assert all_hooks(model) == before
    block = resolve_layout(model).blocks[3]

    def boom(*args, **kwargs):
        raise RuntimeError("mid-generation failure")

    monkeypatch.setattr(block, "forward", boom)
    with pytest.raises(RuntimeError, match="mid-generation failure"):
        iv.generate(PROMPTS)
    assert all_hooks(model) == before


@pytest.mark.parametrize(
    "positions,expected_steps", [("all", [0, 1, 2]), ("prompt", [0]), ("generated", [1, 2])]
)
def test_positions_select_the_forward_passes(positions, expected_steps, monkeypatch):
    iv = Intervener(
        "tiny-gpt2", layers=[2], kind="scaling", alpha=4.0, max_new_tokens=3, positions=positions
    ).fit()
    seen = []
    original = Intervener._apply

    def recording(self, h, j, state):
        seen.append((state["step"], h.shape[1]))
        return original(self, h, j, state)

    monkeypatch.setattr(Intervener, "_apply", recording)
    iv.generate(["The cat sat on"])
    assert [step for step, _ in seen] == expected_steps
    # step 0 is the whole prompt; later steps are one new token each
    assert all((width > 1) == (step == 0) for step, width in seen)


def test_acting_on_generated_tokens_leaves_the_first_token_alone():
    first = Intervener(
        "tiny-gpt2", layers=[2], kind="scaling", alpha=4.0, max_new_tokens=1, positions="generated"
    ).fit()
    assert first.generate(PROMPTS) == first.generate_baseline(PROMPTS)


def test_learned_direction_is_the_class_mean_difference():
    texts = ["good great fine", "lovely day", "awful bad", "terrible mess"]
    y = [1, 1, 0, 0]
    iv = Intervener("tiny-gpt2", layers=[2], kind="translation", direction="learned", norm=1.0).fit(
        texts, y
    )
    from msma_sklearn import HiddenStateExtractor

    X = HiddenStateExtractor("tiny-gpt2", layers=[2]).fit(texts).transform(texts)
    np.testing.assert_allclose(iv.steering_vectors_[2], X[:2].mean(0) - X[2:].mean(0), rtol=1e-5)


def test_random_direction_has_the_requested_norm():
    texts = ["one short text", "and a second one for scale"]
    iv = Intervener("tiny-gpt2", layers=[3], kind="translation", norm=0.5, random_state=1).fit(
        texts
    )
    from msma_sklearn import HiddenStateExtractor

    tokens = HiddenStateExtractor("tiny-gpt2", layers=[3]).fit(texts).transform_tokens(texts)
    # the median token norm with each text's first token (a causal stack's sink) left out
    states = np.concatenate([t[0][1:] for t in tokens])
    typical = np.median(np.linalg.norm(states.astype(np.float64), axis=1))
    assert np.linalg.norm(iv.steering_vectors_[3]) == pytest.approx(0.5 * typical, rel=1e-5)


@pytest.mark.slow
def test_translation_dose_is_not_set_by_the_attention_sink_on_smollm2():
    texts = [
        "The old lighthouse keeper climbed the stairs every evening.",
        "After the long winter, the farmers in the valley planted again.",
        "She opened the letter slowly, because she already knew.",
    ]
    from msma_sklearn import HiddenStateExtractor

    iv = Intervener("smollm2-135m", layers=[12], kind="translation", norm=1.0, random_state=0)
    iv.fit(texts)
    tokens = HiddenStateExtractor("smollm2-135m", layers=[12]).fit(texts).transform_tokens(texts)
    states = np.concatenate([t[0] for t in tokens]).astype(np.float64)
    rms_with_sink = np.sqrt((states**2).sum(1).mean())  # the earlier dose
    ordinary = np.median(np.linalg.norm(np.concatenate([t[0][1:] for t in tokens]), axis=1))
    assert np.linalg.norm(iv.steering_vectors_[12]) == pytest.approx(ordinary, rel=1e-4)
    assert rms_with_sink > 3 * ordinary  # the sink would have set a dose several times larger


def test_scale_from_a_fitted_segmenter(texts):
    from msma_sklearn import HiddenStateExtractor

    ext = HiddenStateExtractor("tiny-gpt2").fit(texts)
    import pandas as pd

    seg = ScaleSegmenter().fit(
        pd.DataFrame(ext.transform(texts), columns=ext.get_feature_names_out())
    )
    iv = Intervener("tiny-gpt2", scale="global", scale_layers=seg, kind="scaling").fit()
    assert iv.layers_.tolist() == seg.scale_layers_["global"]


@pytest.mark.parametrize(
    "params,fit_args,match",
    [
        ({"scale": "word", "scale_layers": {"local": [0]}}, (), "Unknown scale 'word'"),
        ({"layers": [9]}, (), r"out of range.*0\.\.4"),
        ({"layers": [1], "kind": "translation", "delta": np.ones(7)}, (), r"shape \(64,\)"),
        ({"layers": [1], "kind": "teleport"}, (), "kind"),
        ({"layers": [0], "kind": "attention"}, (), "hidden state 0"),
        ({"layers": [1], "kind": "translation"}, (), "needs texts"),
        (
            {"layers": [1], "kind": "translation", "direction": "learned"},
            (["a", "b"], [1, 1]),
            "two classes",
        ),
        ({}, (), "Pass scale="),
    ],
)
def test_bad_input(params, fit_args, match):
    with pytest.raises(ValueError, match=match):
        Intervener(**{"model": "tiny-gpt2", **params}).fit(*fit_args)


def test_empty_prompts_and_not_fitted():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        Intervener("tiny-gpt2", layers=[1]).generate(PROMPTS)
    iv = Intervener("tiny-gpt2", layers=[1]).fit()
    with pytest.raises(ValueError, match="prompts is empty"):
        iv.generate([])


def test_several_greedy_continuations_are_refused():
    iv = Intervener("tiny-gpt2", layers=[1], num_return_sequences=2, max_new_tokens=3).fit()
    with pytest.raises(ValueError, match="num_return_sequences=2 needs do_sample=True"):
        iv.generate(PROMPTS)
    sampled = iv.set_params(do_sample=True, random_state=0).fit().generate(PROMPTS)
    assert len(sampled) == 2 * len(PROMPTS)


@pytest.mark.slow
def test_smollm2_identity_and_effect():
    iv = Intervener(
        "smollm2-135m", layers=[10, 11, 12], kind="attention", temperature=1.0, max_new_tokens=10
    ).fit()
    prompts = ["The weather today is", "Scientists discovered that"]
    assert iv.generate(prompts) == iv.generate_baseline(prompts)
    hot = iv.set_params(temperature=5.0).generate(prompts)
    assert hot != iv.generate_baseline(prompts)


def test_transform_effects_and_score():
    iv = Intervener(
        "tiny-gpt2",
        layers=[2],
        kind="scaling",
        alpha=1.0,
        max_new_tokens=6,
        metrics=["ttr", "distinct_1", "sentiment"],
        target_metric="ttr",
    ).fit()
    M = iv.transform(PROMPTS)
    assert M.shape == (4, 3)
    assert iv.get_feature_names_out().tolist() == ["ttr", "distinct_1", "sentiment"]
    table = iv.effects(PROMPTS)
    # the identity operator: no change anywhere
    assert table["percent_change"].fillna(0).abs().max() == 0
    assert iv.score(PROMPTS) == 0.0
    strong = iv.set_params(alpha=8.0, num_return_sequences=2, do_sample=True, random_state=0)
    assert strong.transform(PROMPTS).shape == (4, 3)  # return sequences averaged per prompt
    with pytest.raises(ValueError, match="target_metric 'fluency'"):
        iv.set_params(target_metric="fluency").score(PROMPTS)


def test_clone_and_pickle_without_weights():
    import pickle

    from sklearn.base import clone

    iv = Intervener(
        "tiny-gpt2", layers=[2], kind="noise", sigma=0.5, random_state=0, max_new_tokens=5
    ).fit()
    assert clone(iv).get_params() == iv.get_params()
    blob = pickle.dumps(iv)
    assert len(blob) < 50_000
    restored = pickle.loads(blob)
    assert restored.generate(PROMPTS) == iv.generate(PROMPTS)


@pytest.mark.parametrize(
    "n_states,width,match",
    [
        (5, 32, r"fitted on 5 hidden states \(indices 0..4\) of width 32, but 'tiny-gpt2'"),
        (7, 64, r"fitted on 7 hidden states .* has 5 hidden states \(0..4\) of width 64"),
    ],
)
def test_a_segmenter_of_another_model_layout_is_refused(n_states, width, match):
    """A MiniLM segmenter (7 x 384) given to SmolLM2 (31 x 576) used to steer state 6 only."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, n_states * width))
    seg = ScaleSegmenter(layers=n_states, n_scales=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=match):
        Intervener("tiny-gpt2", scale=seg.scale_names_[0], scale_layers=seg).fit()


def test_a_segmenter_of_the_same_layout_is_accepted():
    X = np.random.default_rng(0).normal(size=(40, 5 * 64))
    seg = ScaleSegmenter(layers=5, n_scales=2, random_state=0).fit(X)
    iv = Intervener("tiny-gpt2", scale=seg.scale_names_[-1], scale_layers=seg).fit()
    assert iv.layers_.tolist() == sorted(seg.scale_layers_[seg.scale_names_[-1]])


@pytest.mark.parametrize("param", ["alpha", "norm", "sigma", "temperature", "top_p"])
def test_non_finite_strengths_are_refused(param):
    """alpha=nan used to generate '' without a word (bounded ones sklearn's check refuses)."""
    with pytest.raises(ValueError, match=rf"{param}.*nan"):
        Intervener("tiny-gpt2", layers=[1], **{param: float("nan")}).fit()


def test_a_local_checkpoint_path_is_accepted(tmp_path):
    from pathlib import Path

    model, tok = load_model("tiny-gpt2")
    model.save_pretrained(tmp_path / "ck")
    tok.save_pretrained(tmp_path / "ck")
    iv = Intervener(Path(tmp_path / "ck"), layers=[1], max_new_tokens=3).fit()
    base = Intervener("tiny-gpt2", layers=[1], max_new_tokens=3).fit()
    assert iv.generate(["The cat"]) == base.generate(["The cat"])
