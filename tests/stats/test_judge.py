"""The one judge: every branch on planted effects, Holm over the family, and the power and
false-contradiction figures it states checked by simulation (their known distributions)."""

import numpy as np
import pytest
from scipy import stats

from msma_sklearn.stats import (
    claim_test,
    corrected_resampled_ttest,
    decide,
    holm,
    judge_claims,
    paired_claim_test,
    resampled_claim_test,
)


def _diffs(mean, sd=1.0, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return mean + sd * rng.standard_normal(n)


@pytest.mark.parametrize(
    ("mean", "claimed", "verdict", "why"),
    [
        (1.0, 1.0, "supported", "claimed direction"),
        (-1.0, 1.0, "contradicted", "opposite"),
        (0.0, 1.0, "contradicted", "smaller than half"),  # zero, tightly measured
        (0.25, 1.0, "contradicted", "smaller than half"),
        (0.3, 1.0, "inconclusive", "no test rejects"),  # noisy, between
        (-1.0, -1.0, "supported", "claimed direction"),  # a claimed decrease
    ],
)
def test_each_branch_on_planted_effects(mean, claimed, verdict, why):
    sd = 0.2 if verdict != "inconclusive" else 3.0
    (j,) = judge_claims([paired_claim_test(_diffs(mean, sd), claimed)])
    assert j.verdict == verdict
    assert why in j.reason


def test_within_half_of_zero_names_the_equivalence_test():
    (j,) = judge_claims([paired_claim_test(_diffs(0.0, 0.1), 1.0)])
    assert j.verdict == "contradicted" and "TOST" in j.reason


def test_a_claim_without_a_size_asks_only_the_direction():
    (j,) = judge_claims([paired_claim_test(_diffs(0.01, 0.2), 1.0, sized=False)])
    assert j.verdict == "inconclusive"  # tiny but positive: not "smaller than half"
    assert np.isnan(j.test.p_smaller) and np.isnan(j.power)
    (j,) = judge_claims([paired_claim_test(_diffs(-0.5, 0.2), 1.0, sized=False)])
    assert j.verdict == "contradicted"


def test_the_tests_equal_scipys_one_sample_t_tests():
    d = _diffs(0.4, 1.0, n=25, seed=3)
    t = paired_claim_test(d, 1.0)
    assert t.p_claimed == pytest.approx(stats.ttest_1samp(d, 0, alternative="greater").pvalue)
    assert t.p_opposite == pytest.approx(stats.ttest_1samp(d, 0, alternative="less").pvalue)
    assert t.p_smaller == pytest.approx(stats.ttest_1samp(d, 0.5, alternative="less").pvalue)


def test_the_resampled_form_is_nadeau_bengios_test():
    d = _diffs(0.02, 0.01, n=10, seed=1)
    t = resampled_claim_test(d, 80, 20, 0.03, sized=False)
    t_stat, p_two = corrected_resampled_ttest(d, 80, 20)
    assert t.estimate / t.se == pytest.approx(t_stat)
    assert t.p_claimed == pytest.approx(p_two / 2)


def test_holm_over_the_family_for_every_question():
    tests = [paired_claim_test(_diffs(m, 1.0, seed=i), 1.0) for i, m in enumerate([0.5, 0.6, 0])]
    judged = judge_claims(tests, alpha=0.05)
    for name in ("p_claimed", "p_opposite", "p_smaller"):
        want = holm([getattr(t, name) for t in tests])
        got = [getattr(j, f"{name}_holm") for j in judged]
        np.testing.assert_allclose(got, want)
    assert all(j.level == pytest.approx(0.05 / 3) for j in judged)


def test_too_few_units_is_inconclusive_and_left_out_of_holm():
    tests = [paired_claim_test([1.0], 1.0), paired_claim_test(_diffs(1.0, 0.2), 1.0)]
    first, second = judge_claims(tests)
    assert first.verdict == "inconclusive" and "no test" in first.reason
    assert second.level == pytest.approx(0.05)  # a family of one tested claim


def test_stated_power_and_false_contradiction_match_simulation():
    """At the claimed size the share of "supported" is the stated power (at Holm's first
    step of a family of three); at zero the share of "contradicted" is at most the
    stated chance (computed at the family's alpha)."""
    rng = np.random.default_rng(0)
    n, sd, claimed, reps = 20, 1.0, 0.5, 3000
    others = [paired_claim_test(_diffs(5.0, 0.1, seed=s), 1.0) for s in (1, 2)]

    def run(true):
        verdicts, power, false = [], [], []
        for _ in range(reps):
            d = true + sd * rng.standard_normal(n)
            # two certain claims in the family: Holm reaches this claim last, so its
            # level is alpha / 1; the stated power (alpha / 3) is a lower bound
            j = judge_claims([paired_claim_test(d, claimed), *others])[0]
            verdicts.append(j.verdict)
            power.append(j.power)
            false.append(j.false_contradiction)
        return np.array(verdicts), np.median(power), np.median(false)

    v, power, _ = run(claimed)
    crit = stats.t.ppf(1 - 0.05 / 3, n - 1)
    exact = stats.nct.sf(crit, n - 1, claimed / (sd / np.sqrt(n)))
    assert power == pytest.approx(exact, abs=0.05)  # each from its sample's sd
    assert (v == "supported").mean() >= exact - 0.03
    v, _, stated = run(0.0)
    ncp = claimed / 2 / (sd / np.sqrt(n))
    false = stats.nct.sf(stats.t.ppf(0.95, n - 1), n - 1, ncp)
    assert stated == pytest.approx(false, abs=0.05)
    # here the other claims' "smaller" tests do not reject, so this claim's faces
    # Holm's first step: the share is the figure at alpha / 3, below the stated bound
    strict = stats.nct.sf(stats.t.ppf(1 - 0.05 / 3, n - 1), n - 1, ncp)
    assert (v == "contradicted").mean() == pytest.approx(strict, abs=0.03)
    assert (v == "contradicted").mean() <= stated + 0.02


def test_equal_differences_are_exact_comparisons():
    t = claim_test(0.3, 0.0, 9, 1.0)
    assert (t.p_claimed, t.p_opposite, t.p_smaller) == (0.0, 1.0, 0.0)  # 0.3 < 0.5


def test_bad_claims_and_levels_are_refused():
    with pytest.raises(ValueError, match="claimed"):
        claim_test(0.1, 0.1, 5, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        judge_claims([], alpha=1.5)


def test_decide_is_the_rule_the_intervention_verdicts_use():
    from msma_sklearn.interventions import prompt_effect

    rng = np.random.default_rng(4)
    ids = np.arange(40)
    b = rng.normal(10, 1, 40)
    t = b * 1.001 + rng.normal(0, 0.01, 40)  # +0.1% against a claimed +20%
    e = prompt_effect(ids, b, t, claimed_percent=20.0)
    verdict, _ = decide(e.p_claimed, e.p_opposite, e.p_smaller, e.p_equivalence, half=10)
    assert e.verdict == verdict == "contradicted"
