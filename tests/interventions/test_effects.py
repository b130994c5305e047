"""Effect statistics against scipy and hand computations."""

import numpy as np
import pytest
from scipy import stats

from msma_sklearn.stats import (
    bootstrap_ci,
    holm,
    paired_cohens_d,
    paired_effect,
    percent_change,
)


def test_percent_change_and_d():
    b, t = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 4.0, 5.0])
    assert percent_change(b, t) == pytest.approx(100 * (3.25 - 2.5) / 2.5)
    d = t - b
    assert paired_cohens_d(b, t) == pytest.approx(d.mean() / d.std(ddof=1))
    assert paired_cohens_d(b, b) == 0.0


def test_holm_matches_the_definition():
    p = np.array([0.01, 0.04, 0.03, 0.2])
    order = np.argsort(p)
    manual = np.empty(4)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (4 - rank) * p[i])
        manual[i] = min(1.0, running)
    np.testing.assert_allclose(holm(p), manual)


def test_bootstrap_ci_covers_the_true_effect_and_is_seeded():
    rng = np.random.default_rng(0)
    b = rng.normal(size=200)
    t = b + 0.5 + rng.normal(size=200)  # true d_z = 0.5
    lo, hi = bootstrap_ci(b, t, random_state=0)
    assert lo < 0.5 < hi
    assert (lo, hi) == bootstrap_ci(b, t, random_state=0)


def test_paired_effect_uses_wilcoxon():
    rng = np.random.default_rng(1)
    b = rng.normal(size=30)
    t = b + 0.3 + 0.5 * rng.normal(size=30)
    eff = paired_effect(b, t, random_state=0)
    assert eff["wilcoxon_p"] == pytest.approx(stats.wilcoxon(t, b).pvalue)
    assert eff["n"] == 30 and eff["ci_low"] < eff["cohens_d"] < eff["ci_high"]
    assert paired_effect(b, b)["wilcoxon_p"] == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="paired"):
        paired_cohens_d([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="at least 2"):
        percent_change([1.0], [2.0])
    with pytest.raises(ValueError, match="finite"):
        paired_effect([1.0, np.nan], [1.0, 2.0])
