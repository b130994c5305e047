"""A segmentation method or an operator is declared once: the config's choices, the study's
segmenters, the calibration, the estimator and the report all read the registry."""

import numpy as np
import pytest

from msma_sklearn._registry import (
    OPERATORS,
    SEGMENTATION_METHODS,
    Operator,
    SegmentationMethod,
    build_segmenter,
    operator_for,
    operator_kinds,
)
from msma_sklearn.cli._config import ConfigError, load_config


def test_a_new_segmentation_method_is_one_registry_entry(monkeypatch):
    from msma_sklearn.study._segmentation import segmenters_for

    with pytest.raises(ConfigError, match="segmentation.method"):
        load_config(**{"segmentation.method": "halves"})
    halves = SegmentationMethod(
        "halves", "preset: halves", "two-halves", {"method": "preset", "preset": "uniform"}
    )
    monkeypatch.setitem(SEGMENTATION_METHODS, "halves", halves)
    config = load_config(**{"segmentation.method": "halves"})  # now a valid choice
    assert config.segmentation == "halves"
    built = segmenters_for("gpt2")
    assert "preset: halves" in built and built["preset: halves"].preset == "uniform"


def test_presets_apply_only_to_the_families_they_have_rows_for():
    from msma_sklearn.study._segmentation import segmenters_for

    assert "preset: readme" not in segmenters_for(None)
    assert "preset: msma_code" not in segmenters_for("t5")
    rows = segmenters_for("gpt2", n_bootstrap=9, spans=np.ones(4))
    assert list(rows) == [
        "cka",
        "mi",
        "attention_span",
        "preset: readme",
        "preset: uniform",
        "preset: msma_code",
    ]
    assert rows["cka"].n_bootstrap == 9
    assert rows["preset: readme"].family == "gpt2"
    assert rows["attention_span"].attention_spans.tolist() == [1, 1, 1, 1]
    # msma_code is a table row, not a config choice
    with pytest.raises(ConfigError, match="segmentation.method"):
        load_config(**{"segmentation.method": "msma_code"})
    assert load_config().segmentation == "cka"


def _rescale(iv, h, j, state):
    return h * iv.alpha  # an independent copy of scaling: its oracle is the table's own


def test_entries_that_share_a_kind_share_its_implementation():
    for o in OPERATORS.values():
        first = operator_for(o.kind)
        assert (o.parameter, o.identity, o.apply, o.site) == (
            first.parameter,
            first.identity,
            first.apply,
            first.site,
        )
        assert (o.apply is None) == (o.site == "attention")
    assert operator_kinds() == ["translation", "scaling", "noise", "attention"]
    with pytest.raises(ValueError, match="Unknown operator kind 'teleport'.*declares"):
        operator_for("teleport")


def test_a_new_operator_kind_is_one_table_entry(monkeypatch):
    """Registered here and nowhere else, a new kind runs through the estimator, the
    calibration, the study and the config."""
    from msma_sklearn import Intervener
    from msma_sklearn.cli._stages import intervention_design
    from msma_sklearn.datasets import load_reference_prose
    from msma_sklearn.study import InterventionDesign, prompt_sets, run_intervention_study

    with pytest.raises(ValueError, match="Unknown operator kind 'rescale'"):
        Intervener("tiny-gpt2", layers=[2], kind="rescale").fit()
    rescale = Operator(
        "rescale", "rescale", "alpha", 1.0, 4.0, "scaling again", _rescale, compounds=True
    )
    monkeypatch.setitem(OPERATORS, "rescale", rescale)
    texts = load_reference_prose().texts
    prompts, calibration = prompt_sets(texts, 4, 3, 12)

    # the estimator: the new kind's KL is scaling's at the same alpha, and 0 at its identity
    def kl(kind, alpha):
        return (
            Intervener("tiny-gpt2", layers=[2], kind=kind, alpha=alpha).fit().next_token_kl(prompts)
        )

    assert np.allclose(kl("rescale", 1.3), kl("scaling", 1.3), atol=1e-7)
    assert kl("rescale", 1.3).mean() > 0 and np.allclose(kl("rescale", 1.0), 0, atol=1e-7)

    # the config and the study
    config = load_config(**{"interventions.kinds": ["rescale"], "interventions.dose_response": []})
    assert intervention_design(config, "smollm2-135m").kinds == ("rescale",)
    table = {"local": [0, 1], "intermediate": [2, 3], "global": [4]}
    design = InterventionDesign(
        kinds=("rescale",),
        target_kl=(0.0005,),
        primary_kl=0.0005,
        dose_response_kinds=(),
        window=2,
        n_prompts=4,
        n_calibration=3,
        prompt_words=12,
        n_samples=2,
        max_new_tokens=6,
        calibration_tol=0.1,
    )
    study = run_intervention_study("tiny-gpt2", table, prompts, calibration, design, verbose=False)
    assert [r.condition.kind for r in study.conditions] == ["rescale"] * 3
    for r in study.conditions:
        c = r.condition
        assert c.parameter == "alpha" and c.strength > 1.0
        # the window is the estimator's: the same layers a user gets from scale= and window=
        window = min(2, len(table[c.scale]))
        with pytest.warns(UserWarning, match="plain dict"):
            iv = Intervener(
                "tiny-gpt2", scale=c.scale, scale_layers=table, window=window, kind="rescale"
            ).fit()
        assert list(c.layers) == iv.layers_.tolist()
        assert r.effective_strength == pytest.approx(c.strength ** len(c.layers))


def test_the_attention_window_leaves_out_the_embeddings():
    """One rule, in the estimator: an operator acting inside attention has no block for
    hidden state 0, so the window moves past it."""
    from msma_sklearn import Intervener

    table = {"local": [0, 1, 2], "global": [0]}

    def layers(kind, scale, window):
        with pytest.warns(UserWarning, match="plain dict"):
            iv = Intervener(
                "tiny-gpt2", scale=scale, scale_layers=table, window=window, kind=kind
            ).fit()
        return iv.layers_.tolist()

    assert layers("scaling", "local", 1) == [1] and layers("attention", "local", 1) == [1]
    assert layers("scaling", "local", 2) == [0, 1] and layers("attention", "local", 2) == [1]
    assert layers("attention", "local", 3) == [1, 2]
    with pytest.raises(ValueError, match="has only hidden state 0"):
        layers("attention", "global", 1)


def test_build_segmenter_passes_the_run_settings():
    seg = build_segmenter(SEGMENTATION_METHODS["mi"], n_bootstrap=7, random_state=3)
    assert (seg.method, seg.n_bootstrap, seg.random_state) == ("mi", 7, 3)


def test_which_models_have_random_weights():
    """The study's random-weight twin and the report's caveat read this, not a name prefix."""
    from msma_sklearn.extraction import OFFLINE_MODELS, has_random_weights

    random = {m for m in OFFLINE_MODELS if has_random_weights(m)}
    assert random == {"tiny-gpt2", "tiny-bert", "tiny-roberta", "tiny-t5"}
    assert has_random_weights("random:smollm2-135m")
    assert not has_random_weights("HuggingFaceTB/SmolLM2-135M")
