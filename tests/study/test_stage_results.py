"""The extraction and segmentation stages as library functions with typed results
(issue #15): the report's numbers are the results' fields."""

import numpy as np
import pandas as pd
import pytest

from msma_sklearn.datasets import load_corpus
from msma_sklearn.study import (
    ExtractionResult,
    SegmentationResult,
    layers_above_embedding,
    profile_boundaries,
    run_extraction,
    run_segmentation,
)


@pytest.fixture(scope="module")
def extraction():
    corpus = load_corpus()
    texts = list(corpus.texts[::4])
    labels = {"global": corpus.targets["global"][::4], "one": np.array(["a"] * len(texts))}
    with pytest.warns(UserWarning, match="Label 'one' has one class"):
        result = run_extraction("tiny-gpt2", texts, labels, cv_folds=2, random_state=0, verbose=0)
    return texts, labels, result


def test_run_extraction_returns_the_states_and_the_probes(extraction):
    from msma_sklearn import HiddenStateExtractor
    from msma_sklearn.metrics import probe_layers

    texts, labels, result = extraction
    assert isinstance(result, ExtractionResult)
    assert (result.n_texts, result.n_layers, result.hidden_size) == (64, 4, 64)
    # the states are the extractor's; the probes are probe_layers' on them
    X = HiddenStateExtractor("tiny-gpt2").fit(texts).transform(texts)
    np.testing.assert_allclose(result.states, X, rtol=1e-6, atol=1e-6)
    probes = probe_layers(
        result.extractor.reshape_by_layer(X), labels["global"], texts, folds=2, random_state=0
    )
    np.testing.assert_allclose(result.probes["global"].accuracy, probes.accuracy)
    assert set(result.probes) == {"global"}  # the one-class label is not probed (warned)
    d = result.to_dict()
    assert d["probe_accuracy"]["global"] == np.round(probes.accuracy, 3).tolist()
    assert d["tokens_per_second"] == round(result.n_tokens / result.extract_seconds, 1)


def test_the_probe_section_is_the_results_fields(extraction):
    from dataclasses import replace

    from msma_sklearn.report import extraction_section as _extract_markdown

    _, _, result = extraction
    d = result.to_dict()
    md = _extract_markdown({"tiny-gpt2": result}, labels="Labels: planted.", random_state=3)
    acc = d["probes"]["global"]["accuracy"]
    ci = d["probes"]["global"]["accuracy_ci"]
    assert f"| 0 | {acc[0]:.3f} [{ci[0][0]:.2f}, {ci[0][1]:.2f}] |" in md
    where = layers_above_embedding(d["probes"]["global"])
    assert f"best layer {where['best']} at {acc[where['best']]:.3f}" in md
    assert f"| tiny-gpt2 | gpt2 | {d['n_layers']} | {d['hidden_size']} |" in md
    # the folds and the interval are the probes' own, not fixed numbers
    assert "out of 2-fold CV (seed 3); 95% intervals" in md and "Labels: planted." in md
    probes = {"global": replace(result.probes["global"], folds=7, confidence=0.9)}
    other = _extract_markdown({"tiny-gpt2": replace(result, probes=probes)})
    assert "out of 7-fold CV (seed 0); 90% intervals" in other
    assert "global accuracy [90% CI]" in other


def test_layers_above_embedding_reads_the_intervals():
    probes = {
        "accuracy": [0.5, 0.6, 0.9, 0.55],
        "accuracy_ci": [[0.4, 0.6], [0.5, 0.7], [0.8, 1.0], [0.61, 0.7]],
    }
    assert layers_above_embedding(probes) == {"best": 2, "beyond": [2, 3]}


def test_run_segmentation_fits_every_applicable_method_beside_the_preset(extraction):
    texts, _, result = extraction
    frame = pd.DataFrame(result.states, columns=result.extractor.get_feature_names_out())
    seg = run_segmentation(
        "tiny-gpt2",
        result.extractor,
        frame,
        texts,
        family="gpt2",
        used="mi",
        n_bootstrap=2,
        random_weights_model=True,
    )
    assert isinstance(seg, SegmentationResult)
    assert list(seg.fitted) == [
        "cka",
        "mi",
        "attention_span",
        "preset: readme",
        "preset: uniform",
        "preset: msma_code",
    ]
    assert seg.chosen is seg.fitted["mi"] and seg.used == "mi"
    d = seg.to_dict()
    assert d["methods"]["preset: readme"]["scale_layers"] == {
        "local": [0],
        "intermediate": [1, 2],
        "global": [3, 4],
    }
    assert set(d["vs_readme"]) == set(seg.fitted) - {"preset: readme"}
    assert list(d["scale_count"]) == ["this model"] and d["random_weights"] is None
    assert d["adjacent_mi"] == np.round(seg.fitted["mi"].adjacent_mi_, 4).tolist()
    assert len(d["attention_spans"]) == 4


def test_run_segmentation_tests_the_scale_names_with_the_probes(extraction):
    """The "global" probe label against the used scales: one test, on per-text outcomes
    read at the extractor's layer positions, rendered in the report."""
    from msma_sklearn.metrics import scale_name_tests
    from msma_sklearn.report._segmentation import name_tests_lines

    texts, _, result = extraction
    frame = pd.DataFrame(result.states, columns=result.extractor.get_feature_names_out())
    seg = run_segmentation(
        "tiny-gpt2",
        result.extractor,
        frame,
        texts,
        n_bootstrap=0,
        random_weights_model=True,
        probes=result.probes,
    )
    (test,) = seg.name_tests
    assert test.label == "global" and set(test.accuracy) == set(seg.chosen.scale_layers_)
    positions = {int(j): i for i, j in enumerate(result.extractor.layers_)}
    again = scale_name_tests(
        {"global": result.probes["global"]},
        seg.chosen.scale_layers_,
        positions=positions,
        random_state=0,
    )
    assert again[0].advantage == pytest.approx(test.advantage)
    d = seg.to_dict()["name_tests"][0]
    assert d["verdict"] in {"supported", "contradicted", "inconclusive"}
    md = "\n".join(name_tests_lines(seg.name_tests, "tiny-gpt2", "cka"))
    assert f"{d['advantage']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]" in md
    assert f"**{d['verdict']}** on tiny-gpt2" in md
    assert "| global |" in md


def test_run_segmentation_tests_held_out_boundaries_against_the_layer_profile(extraction):
    """The profile runs on texts the refitted scales never saw, and the report renders
    its tests and the published shapes from the results' fields."""
    from msma_sklearn.profile import boundaries_against_profile
    from msma_sklearn.report._segmentation import profile_lines

    texts, _, result = extraction
    frame = pd.DataFrame(result.states, columns=result.extractor.get_feature_names_out())
    seg = run_segmentation(
        "tiny-gpt2",
        result.extractor,
        frame,
        texts,
        n_bootstrap=0,
        random_weights_model=True,
        profile_texts=16,
    )
    assert seg.profile is not None and seg.profile.n_texts == 16
    again = boundaries_against_profile(
        seg.profile, seg.profile_boundaries, min_size=seg.chosen.min_scale_size_
    )
    assert [t.p for t in again] == [t.p for t in seg.profile_tests]
    d = seg.to_dict()["profile"]
    assert d["boundaries"] == seg.profile_boundaries
    assert [t["signal"] for t in d["tests"]] == list(seg.profile.values)
    assert [c["signal"] for c in d["shapes"]] == [
        "deletion_kl",
        "intrinsic_dimension",
        "logit_lens_kl",
    ]
    md = "\n".join(profile_lines(seg, "tiny-gpt2", "phase_card_tiny-gpt2.png"))
    assert f"| {d['tests'][0]['signal']} |" in md and "phase_card_tiny-gpt2.png" in md
    with pytest.raises(ValueError, match="at least 10 held-out texts"):
        profile_boundaries(
            "tiny-gpt2", result.extractor, frame.iloc[:18], texts[:18], seg.chosen, n_texts=16
        )


def test_the_segmentation_section_is_drawn_from_the_typed_result(extraction):
    """The refits, the MI's width, the scale-count margin and the figures in the prose are
    the result's own; changing one changes the prose."""
    from dataclasses import replace

    from msma_sklearn.report import segmentation_section

    texts, _, result = extraction
    frame = pd.DataFrame(result.states, columns=result.extractor.get_feature_names_out())
    seg = run_segmentation(
        "tiny-gpt2", result.extractor, frame, texts, n_bootstrap=3, random_weights_model=True
    )
    md = segmentation_section({"tiny-gpt2": seg})
    assert "Stability: 3 refits on 80% subsamples" in md
    assert "(PCA to 8 dims)" in md and "max(1 SE, 0.01)" in md
    assert f"n_scales = {len(seg.chosen.scale_layers_)}" in md
    assert "![" not in md  # no figure files given, none linked
    for label, fitted in seg.fitted.items():
        assert fitted.distribution_table(f"tiny-gpt2 · {label}") in md
    curves = {k: replace(c, tol=0.05) for k, c in seg.curves.items()}
    md2 = segmentation_section(
        {"tiny-gpt2": replace(seg, curves=curves)},
        figures={"tiny-gpt2": {"heatmap": "h.png", "scale_count_figure": "k.png"}},
    )
    assert "max(1 SE, 0.05)" in md2
    # the README-preset sentence is read at the result's level
    c = {"distance": 1.5, "p_ari": 0.03, "ari": 0.5, "null_distance_mean": 3.0}
    c["null_ari_mean"] = 0.1
    trained = replace(seg, random_weights_model=False, vs_readme={"cka": c})
    assert "closer than 97% of random contiguous splits" in segmentation_section({"m": trained})
    strict = segmentation_section({"m": replace(trained, alpha=0.01)})
    assert "so this agreement is what chance gives" in strict and "closer than" not in strict
    with pytest.raises(ValueError, match="alpha must lie in"):
        run_segmentation("tiny-gpt2", result.extractor, frame, texts, alpha=1.5)
    assert "![tiny-gpt2 layer similarity](h.png)" in md2 and "(k.png)" in md2
