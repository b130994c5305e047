"""The fluency guard (issue #13): perplexity under the unmodified model, distinct-n,
non-alphabetic share."""

import numpy as np
import pytest

from msma_sklearn.interventions import fluency_check, fluency_summary
from msma_sklearn.metrics.text import non_alpha_share, perplexity

PROMPTS = [
    "The old lighthouse keeper climbed the stairs every evening and",
    "After the long winter, the farmers in the valley",
    "She opened the letter slowly, because she already knew",
    "The committee met on Tuesday to discuss the budget, and",
]
FLUENT = [
    " lit the lamp before the sun went down.",
    " began to plant their fields again.",
    " what it would say about her brother.",
    " the members agreed to cut the travel costs.",
]
DEGENERATE = [" ,   , and .\n\n. ,", " . . , ,, the .", " ;; , . , .", " , . , ; and ,"]


def test_non_alpha_share_and_summary_oracles():
    assert non_alpha_share([",,a.", "abc"]).tolist() == [0.75, 0.0]
    check = fluency_summary(FLUENT, DEGENERATE, [10.0] * 4, [30.0, 25.0, 5.0, 40.0])
    assert check.median_ppl_treated == 27.5 and check.ppl_ratio == 2.75 and check.flagged
    assert check.share_over_threshold == 0.75
    calm = fluency_summary(FLUENT, FLUENT, [10.0] * 4, [12.0, 15.0, np.nan, 11.0])
    assert not calm.flagged and calm.defined_treated == 0.75
    with pytest.raises(ValueError, match="one perplexity per text"):
        fluency_summary(FLUENT, FLUENT, [1.0], [1.0] * 4)


@pytest.mark.slow
def test_guard_flags_a_planted_degenerate_output_on_smollm2():
    check = fluency_check(PROMPTS, FLUENT, DEGENERATE, model="smollm2-135m")
    assert check.flagged
    assert check.ppl_ratio > 2 and check.non_alpha_treated > 0.5 > check.non_alpha_baseline
    same = fluency_check(PROMPTS, FLUENT, FLUENT, model="smollm2-135m")
    assert not same.flagged and same.ppl_ratio == pytest.approx(1.0)


@pytest.mark.slow
def test_continuation_perplexity_counts_only_the_continuation():
    whole = perplexity([PROMPTS[0] + FLUENT[0]], "smollm2-135m")
    cont = perplexity([FLUENT[0]], "smollm2-135m", prompts=[PROMPTS[0]])
    empty = perplexity([""], "smollm2-135m", prompts=[PROMPTS[0]])
    assert np.isfinite(whole[0]) and np.isfinite(cont[0]) and np.isnan(empty[0])
    # the NLL adds up: whole = prompt alone + continuation given the prompt
    from msma_sklearn.extraction import load_model

    _, tok = load_model("smollm2-135m")
    n = len(tok(PROMPTS[0] + FLUENT[0])["input_ids"])
    p = len(tok(PROMPTS[0])["input_ids"])
    prompt_only = perplexity([PROMPTS[0]], "smollm2-135m")
    total = np.log(whole[0]) * (n - 1)
    parts = np.log(prompt_only[0]) * (p - 1) + np.log(cont[0]) * (n - p)
    assert total == pytest.approx(parts, rel=1e-4)
    with pytest.raises(ValueError, match="one each"):
        perplexity(FLUENT, "smollm2-135m", prompts=PROMPTS[:2])


LOOPED = [" and the lamp and the lamp and the lamp and the lamp and the lamp."] * 4


def test_the_guard_is_two_sided_and_sees_repetition():
    baseline_ppl = [8.0, 10.0, 12.0, 14.0]  # lower quartile 9.5
    collapse = fluency_summary(FLUENT, FLUENT, baseline_ppl, [5.0, 6.0, 5.5, 6.5])
    assert collapse.flagged and collapse.flagged_low and not collapse.flagged_high
    assert collapse.ppl_low_baseline == pytest.approx(9.5)
    assert "collapse" in collapse.reason
    gibberish = fluency_summary(FLUENT, DEGENERATE, baseline_ppl, [40.0] * 4)
    assert gibberish.flagged_high and not gibberish.flagged_low
    loop = fluency_summary(FLUENT, LOOPED, baseline_ppl, [11.0] * 4)
    assert loop.flagged_repetition and loop.repetition_treated > 0.5
    assert loop.repetition_baseline == 0.0 and loop.reason == "repetition"
    within = fluency_summary(FLUENT, FLUENT, baseline_ppl, [10.0, 11.0, 12.0, 9.8])
    assert not within.flagged and within.reason == ""


@pytest.mark.slow
def test_guard_flags_planted_collapse_on_smollm2():
    """A looping continuation is text the unmodified model finds easy: flagged as collapse
    and repetition, not as gibberish."""
    check = fluency_check(PROMPTS, FLUENT, LOOPED, model="smollm2-135m")
    assert check.flagged_low and check.flagged_repetition and not check.flagged_high
