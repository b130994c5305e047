"""A segmentation method or an operator is declared once (issue #15): the config's choices,
the study's segmenters, the calibration and the report all read the registry."""

import numpy as np
import pytest

from msma_sklearn._registry import (
    OPERATORS,
    SEGMENTATION_METHODS,
    Operator,
    SegmentationMethod,
    build_segmenter,
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


def test_a_new_operator_is_one_registry_entry(monkeypatch):
    from msma_sklearn.cli._stages import intervention_design
    from msma_sklearn.interventions._calibration import STRENGTH
    from msma_sklearn.study import UPPER

    # the calibration's parameters and bounds are the registry's
    for o in OPERATORS.values():
        assert STRENGTH[o.kind] == (o.parameter, o.identity) and UPPER[o.kind] == o.upper
    shrink = Operator("shrink", "scaling", "alpha", 1.0, 4.0, "scaling, alpha < 1")
    monkeypatch.setitem(OPERATORS, "shrink", shrink)
    config = load_config(**{"interventions.kinds": ["shrink"], "interventions.dose_response": []})
    assert intervention_design(config, "smollm2-135m").kinds == ("scaling",)


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
