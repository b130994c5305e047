"""The intervention study as a library (issue #13): design, prompt sets, calibrated
conditions, shared-seed baseline, typed results."""

import json

import numpy as np
import pytest

from msma_sklearn import Intervener
from msma_sklearn.datasets import load_reference_prose
from msma_sklearn.stats import minimum_detectable_effect, paired_power
from msma_sklearn.study import (
    TEXT_METRICS,
    InterventionDesign,
    centred_window,
    prompt_sets,
    run_intervention_study,
)

TABLE = {"local": [0, 1], "intermediate": [2, 3], "global": [4]}


def test_reference_prose_is_natural_multi_sentence_text():
    prose = load_reference_prose()
    assert len(prose.texts) >= 200 and len(prose.texts) == len(prose.topic)
    assert all(len(t.split()) >= 25 and t.endswith(".") for t in prose.texts)
    assert np.mean([t.count(". ") >= 1 for t in prose.texts]) > 0.5  # several sentences
    assert len(load_reference_prose(min_words=60).texts) < len(prose.texts)


def test_prompt_sets_are_disjoint_seeded_and_of_the_asked_length():
    texts = load_reference_prose().texts
    prompts, calibration = prompt_sets(texts, 10, 5, 20, random_state=3)
    assert len(prompts) == 10 and len(calibration) == 5
    assert not set(prompts) & set(calibration)
    assert all(len(p.split()) == 20 for p in prompts + calibration)
    assert prompt_sets(texts, 10, 5, 20, random_state=3) == (prompts, calibration)
    assert prompt_sets(texts, 10, 5, 20, random_state=4)[0] != prompts
    with pytest.raises(ValueError, match="Need 15 distinct texts longer than 20 words"):
        prompt_sets(["a short text"] * 30, 10, 5, 20)


def test_window_is_centred_and_never_wider_than_the_scale():
    assert centred_window(range(11, 31), 3) == [19, 20, 21]
    assert centred_window([0, 1, 2], 3) == [0, 1, 2]
    assert centred_window([6], 3) == [6]


def test_design_checks_and_power_matches_a_simulation():
    with pytest.raises(ValueError, match="primary_kl=0.5 must be one of"):
        InterventionDesign(primary_kl=0.5)
    with pytest.raises(ValueError, match="kinds must be among"):
        InterventionDesign(kinds=("teleport",))
    power = InterventionDesign(n_prompts=24).power(5)
    assert power["mde_d_z_holm"] > power["mde_d_z"] > 0
    # oracle: a Monte Carlo paired t-test at the minimum detectable effect rejects ~80%
    from scipy import stats

    d = minimum_detectable_effect(24, 0.05)
    assert paired_power(d, 1.0, 24, 0.05) == pytest.approx(0.8, abs=1e-6)
    rng = np.random.default_rng(0)
    diffs = rng.normal(d, 1.0, size=(4000, 24))
    p = stats.ttest_1samp(diffs, 0.0, axis=1, alternative="greater").pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.03)


@pytest.fixture(scope="module")
def tiny_study():
    texts = load_reference_prose().texts
    design = InterventionDesign(
        kinds=("scaling", "noise"),
        target_kl=(0.0002, 0.0005),
        primary_kl=0.0005,
        dose_response_kinds=("scaling",),
        window=1,
        n_prompts=4,
        n_calibration=3,
        prompt_words=12,
        n_samples=2,
        max_new_tokens=6,
        calibration_tol=0.1,
    )
    prompts, calibration = prompt_sets(texts, 4, 3, 12)
    return run_intervention_study("tiny-gpt2", TABLE, prompts, calibration, design, verbose=False)


def test_study_calibrates_every_condition_and_reports_it(tiny_study):
    st = tiny_study
    # scaling at both doses on every scale, noise at the primary dose only
    got = sorted(
        (r.condition.scale, r.condition.kind, r.condition.target_kl) for r in st.conditions
    )
    assert len(got) == 3 * 2 + 3
    assert {(k, t) for _, k, t in got} == {
        ("scaling", 0.0002),
        ("scaling", 0.0005),
        ("noise", 0.0005),
    }
    for r in st.conditions:
        c = r.condition
        assert list(c.layers) == centred_window(TABLE[c.scale], 1)
        if c.converged:
            assert c.calibrated_kl == pytest.approx(c.target_kl, rel=0.1)
        # oracle: the KL re-measured at the condition's strength on the calibration prompts,
        # over the same teacher-forced positions of their baseline continuations
        iv = Intervener(
            "tiny-gpt2",
            layers=list(c.layers),
            kind=c.kind,
            random_state=st.design.random_state,  # seeds the noise
            **{c.parameter: c.strength},
        ).fit(st.calibration_prompts)
        kl = iv.continuation_kl(
            st.calibration_prompts,
            st.calibration_continuations,
            max_tokens=st.design.calibration_tokens,
        )
        assert np.mean(kl) == pytest.approx(c.calibrated_kl, rel=1e-5)
        # the prompt-edge measure alone is another number
        assert np.mean(iv.next_token_kl(st.calibration_prompts)) != pytest.approx(
            c.calibrated_kl, rel=1e-3
        )
    assert len(st.calibration_continuations) == len(st.calibration_prompts)


def test_study_counts_the_prompt_once_and_reports_without_effects_below_20(tiny_study):
    frame = tiny_study.effects_frame()
    assert len(frame) == len(tiny_study.conditions) * len(TEXT_METRICS)
    assert {"mattr", "n_words", "repetition"} <= set(frame["metric"])
    assert (frame["n_prompts"] == 4).all()  # 4 prompts x 2 samples: 4 units, not 8
    assert frame["percent_change"].isna().all() and frame["q_bh"].isna().all()
    claims = tiny_study.claims
    assert [c.metric for c in claims] == [
        "mtld",
        "coherence",
        "sentence_count",
        "mean_sentence_length",
        "mattr",
    ]
    assert all(c.effect.verdict == "inconclusive" for c in claims)
    assert all(c.condition.target_kl == 0.0005 and c.kind == "scaling" for c in claims)
    summary = tiny_study.to_dict()
    json.dumps(summary, allow_nan=False)  # JSON-able, no NaN
    assert len(summary["conditions"]) == len(tiny_study.conditions)
    assert len(tiny_study.fluency_frame()) == len(tiny_study.conditions)
    cal = tiny_study.calibration_frame()
    assert set(cal["kind"]) == {"scaling", "noise"} and (cal["mean_kl"] >= 0).all()


def test_study_refuses_prompts_shared_with_calibration():
    with pytest.raises(ValueError, match="both the evaluation and the calibration set"):
        run_intervention_study("tiny-gpt2", TABLE, ["a b c", "d e f"], ["a b c"], verbose=False)


def test_study_figures_are_drawn(tiny_study, tmp_path):
    from msma_sklearn.plotting import plot_dose_response, plot_intervention_effects, save_figure

    for name, fig in (
        ("dose", plot_dose_response(tiny_study)),
        ("forest", plot_intervention_effects(tiny_study)),
    ):
        save_figure(fig, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_doses_are_reported_where_scored_and_claims_have_a_temperature_control(tiny_study):
    for r in tiny_study.conditions:
        c = r.condition
        assert np.isfinite(r.realised_kl) and r.realised_kl >= 0
        assert r.dose_matched == (abs(r.realised_kl / c.target_kl - 1) <= 0.1)
        if c.kind == "scaling":
            assert r.effective_strength == pytest.approx(c.strength ** len(c.layers))
    controlled = [r for r in tiny_study.conditions if np.isfinite(r.control_temperature)]
    # one control per claimed (scale, scaling) at the primary dose
    assert {(r.condition.scale, r.condition.target_kl) for r in controlled} == {
        ("global", 0.0005),
        ("intermediate", 0.0005),
        ("local", 0.0005),
    }
    assert all(0.05 <= r.control_temperature <= 20 for r in controlled)
    for claim in tiny_study.claims:
        assert claim.control_judgement is not None
        assert claim.control_temperature == next(
            r.control_temperature for r in controlled if r.condition == claim.condition
        )
    d = tiny_study.to_dict()["claims"][0]
    assert d["control_verdict"] in {"supported", "contradicted", "inconclusive"}


def test_the_intervention_section_is_drawn_from_the_study(tiny_study):
    """Every setting in the prose is the study's design; changing one changes the prose."""
    from dataclasses import replace

    from msma_sklearn.report import interventions_section

    d = tiny_study.design
    md = interventions_section({"tiny-gpt2": tiny_study}, prompt_source="planted prose")
    assert (
        f"Prompts: {d.n_prompts} evaluation and {d.n_calibration} other calibration prompts, "
        f"the first {d.prompt_words} words of planted prose"
    ) in md
    assert f"acts on the {d.window} hidden states at the centre" in md
    assert f"the first {d.calibration_tokens} tokens of the unmodified model's continuation" in md
    assert f"q < {d.alpha:g} over every condition" in md
    for c in tiny_study.claims:
        assert f"- {c.claim} — on tiny-gpt2 at {c.condition.dose}: " in md
        assert f"**{c.effect.verdict}** ({c.effect.reason}; {c.effect.n_pairs} of" in md
    for r in tiny_study.conditions:
        assert f"{r.condition.parameter} {r.condition.strength:.3g}" in md
    other = replace(tiny_study, design=replace(d, alpha=0.01, window=2, calibration_tokens=5))
    md2 = interventions_section({"tiny-gpt2": other})
    assert "q < 0.01 over every condition" in md2 and "effects at FDR 1%" in md2
    assert "acts on the 2 hidden states" in md2 and "the first 5 tokens" in md2
    assert "words of the run's texts" in md2
