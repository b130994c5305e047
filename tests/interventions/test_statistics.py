"""Prompt-level statistics for intervention claims (issue #13)."""

import numpy as np
import pytest
from scipy import stats

from msma_sklearn.interventions import MIN_PAIRS, collapse_to_prompts, prompt_effect
from msma_sklearn.stats import benjamini_hochberg, paired_power, tost_paired


def _paired(n, effect, sd=1.0, seed=0, base=10.0):
    rng = np.random.default_rng(seed)
    b = base + rng.normal(size=n)
    return b, b + effect + sd * rng.normal(size=n)


def test_identical_greedy_copies_are_counted_once():
    b, t = _paired(24, 0.4, seed=1)
    ids = np.arange(24)
    once = prompt_effect(ids, b, t, claimed_percent=5.0, random_state=0)
    # two "seeds" of greedy decoding give identical outputs: the same 24 prompts twice
    twice = prompt_effect(
        np.r_[ids, ids], np.r_[b, b], np.r_[t, t], claimed_percent=5.0, random_state=0
    )
    assert twice.n_prompts == twice.n_pairs == 24
    assert twice.p_claimed == pytest.approx(once.p_claimed)
    assert twice.percent_change == pytest.approx(once.percent_change)


def test_collapse_averages_defined_samples_within_a_prompt():
    prompts, means, k = collapse_to_prompts(
        ["b", "a", "b", "a", "c"], [1.0, 2.0, 3.0, np.nan, np.nan]
    )
    assert prompts.tolist() == ["b", "a", "c"]
    assert means[0] == 2.0 and means[1] == 2.0 and np.isnan(means[2])
    assert k.tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="one length"):
        collapse_to_prompts([1, 2], [1.0])


@pytest.mark.parametrize("target", [0.5, 0.8])
def test_planted_effect_is_recovered_at_the_stated_power(target):
    n, sd, alpha = 30, 1.0, 0.05
    # the effect whose stated power is `target`, found on the power function itself
    effect = next(e for e in np.linspace(0.01, 2, 2000) if paired_power(e, sd, n, alpha) >= target)
    assert paired_power(effect, sd, n, alpha) == pytest.approx(target, abs=0.01)
    rng = np.random.default_rng(0)
    hits = [
        stats.ttest_1samp(effect + sd * rng.normal(size=n), 0.0, alternative="greater").pvalue
        < alpha
        for _ in range(2000)
    ]
    # Monte Carlo rejection rate within 4 binomial standard errors of the stated power
    assert np.mean(hits) == pytest.approx(target, abs=4 * np.sqrt(target * (1 - target) / 2000))
    null = [
        stats.ttest_1samp(sd * rng.normal(size=n), 0.0, alternative="greater").pvalue < alpha
        for _ in range(2000)
    ]
    assert np.mean(null) == pytest.approx(alpha, abs=4 * np.sqrt(alpha * (1 - alpha) / 2000))


def test_tost_matches_the_closed_form():
    rng = np.random.default_rng(3)
    d = 0.1 + 0.5 * rng.normal(size=40)
    margin = 0.4
    se = d.std(ddof=1) / np.sqrt(d.size)
    lower = stats.t.sf((d.mean() + margin) / se, d.size - 1)
    upper = stats.t.cdf((d.mean() - margin) / se, d.size - 1)
    assert tost_paired(d, margin) == pytest.approx(max(lower, upper), rel=1e-10)
    assert tost_paired(d, 5.0) < 1e-6  # clearly inside a wide margin
    assert tost_paired(d + 5.0, 0.4) > 0.99  # clearly outside
    with pytest.raises(ValueError, match="margin must be positive"):
        tost_paired(d, 0.0)


def test_benjamini_hochberg_matches_its_definition():
    p = np.array([0.001, 0.2, 0.03, 0.04, 0.5, 0.011])
    m = p.size
    order = np.argsort(p)
    brute = np.empty(m)
    for rank, i in enumerate(order, start=1):
        brute[i] = min(1.0, min(p[order[j - 1]] * m / j for j in range(rank, m + 1)))
    np.testing.assert_allclose(benjamini_hochberg(p), brute)


def test_verdicts_supported_contradicted_inconclusive():
    ids = np.arange(40)
    b, t = _paired(40, 1.0, sd=0.5)  # +10% on a baseline of 10
    assert prompt_effect(ids, b, t, claimed_percent=8.0).verdict == "supported"
    assert prompt_effect(ids, b, t, claimed_percent=-8.0).verdict == "contradicted"
    b0, t0 = _paired(40, 0.0, sd=0.05)  # no effect, measured precisely
    null = prompt_effect(ids, b0, t0, claimed_percent=20.0)
    assert null.verdict == "contradicted" and "TOST" in null.reason
    noisy_b = np.full(40, 10.0)  # no effect, measured badly: differences of +-5
    noisy_t = noisy_b + np.where(np.arange(40) % 2, 5.0, -5.0)
    noisy = prompt_effect(ids, noisy_b, noisy_t, claimed_percent=5.0)
    assert noisy.verdict == "inconclusive" and noisy.power < 0.5
    few = prompt_effect(
        ids[: MIN_PAIRS - 1], b[: MIN_PAIRS - 1], t[: MIN_PAIRS - 1], claimed_percent=8.0
    )
    assert few.verdict == "inconclusive" and np.isnan(few.percent_change)
    # a Holm-adjusted p-value decides, not the raw one
    adjusted = prompt_effect(ids, b, t, claimed_percent=8.0, p_adjusted=0.2)
    assert adjusted.verdict != "supported"


def test_contradicted_is_holm_corrected_like_supported():
    """Five claims, each effect opposite to its claim at raw p ~ 0.04: contradicted one
    by one, inconclusive once the opposite and smaller-than-half tests are Holm-adjusted
    over the five (the study's path)."""
    from msma_sklearn.interventions import holm_over_claims

    ids = np.arange(40)
    rng = np.random.default_rng(3)
    pairs = []
    for _ in range(5):
        b = 10.0 + rng.normal(size=40)
        d = rng.normal(size=40)
        d = (d - d.mean()) / d.std(ddof=1)  # differences of sd 1 and mean -0.28:
        pairs.append((b, b + d - 0.28))  # one-sided t = -0.28 * sqrt(40) = -1.77
    claim = 0.2  # percent: half of it is 0.01 in the outcome's units
    raw = [prompt_effect(ids, b, t, claimed_percent=claim) for b, t in pairs]
    assert all(e.verdict == "contradicted" for e in raw)
    assert all(0.02 < e.p_smaller <= e.p_opposite < 0.05 for e in raw)
    adjusted = holm_over_claims(raw)
    assert [sorted(a) for a in adjusted] == [
        ["p_adjusted", "p_adjusted_opposite", "p_adjusted_smaller"]
    ] * 5
    assert all(a["p_adjusted_smaller"] > 0.05 for a in adjusted)
    rejudged = [
        prompt_effect(ids, b, t, claimed_percent=claim, **a)
        for (b, t), a in zip(pairs, adjusted, strict=True)
    ]
    assert all(e.verdict == "inconclusive" for e in rejudged)
    # the study's path re-judges the measured effect without measuring it again: same verdicts
    from msma_sklearn.interventions import rejudge

    again = [rejudge(e, **a) for e, a in zip(raw, adjusted, strict=True)]
    assert [(e.verdict, e.reason) for e in again] == [(e.verdict, e.reason) for e in rejudged]
    # a claim below MIN_PAIRS has no test and no adjusted p-value
    few = prompt_effect(ids[:5], *(x[:5] for x in pairs[0]), claimed_percent=claim)
    assert holm_over_claims([few, *raw])[0] == {}


def test_undefined_metrics_are_an_outcome_not_dropped_silently():
    ids = np.arange(30)
    b, t = _paired(30, 1.0, sd=0.5)
    t[:12] = np.nan  # e.g. a sentence metric on one-sentence outputs
    effect = prompt_effect(ids, b, t, claimed_percent=8.0)
    assert effect.n_prompts == 30 and effect.n_pairs == 18
    assert effect.defined_treated == pytest.approx(0.6)
    assert effect.verdict == "inconclusive" and "fewer than 20" in effect.reason
    with pytest.raises(ValueError, match="one shape"):
        prompt_effect(ids, b, t[:5])


def test_exploratory_rows_are_two_sided():
    ids = np.arange(30)
    b, t = _paired(30, -1.0, sd=0.5)
    effect = prompt_effect(ids, b, t)
    assert effect.verdict == "exploratory"
    assert effect.p_claimed == pytest.approx(stats.ttest_rel(t, b).pvalue)
    assert effect.ci_low < effect.percent_change < effect.ci_high < 0
