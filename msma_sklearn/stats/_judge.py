"""One judge for every claim: supported, contradicted or inconclusive, from t-tests on a
claim's paired differences, Holm over the family, with the power and the chance of a
false contradiction at the level the verdict used.

A claim states a direction and, usually, a size ``c`` (in the outcome's units, signed).
Three one-sided questions are asked of the mean difference ``d`` (estimate ``m``,
standard error ``se``, Student t with ``df`` degrees of freedom):

- in the claimed direction: ``d`` beyond 0 on the side of ``c`` (``p_claimed``);
- opposite: ``d`` beyond 0 on the other side (``p_opposite``);
- smaller than half the claim: ``d`` short of ``c/2`` (``p_smaller``), with the TOST
  that ``d`` lies within ``±|c|/2`` of zero reported beside it (``p_equivalence``;
  its rejection implies the one-sided one).

Each question is Holm-adjusted over the claims of one family. The verdict is
"contradicted" when the opposite or the smaller-than-half question rejects, else
"supported" when the claimed-direction question rejects, else "inconclusive". A claim
with no size (``claimed`` given only as a sign) asks only the first two questions.

The power stated beside a verdict is the chance of "supported" at the claimed size at
Holm's first step, ``alpha / m`` (the strictest level a claim of the family can face: a
lower bound of the power), and ``false_contradiction`` the chance of "contradicted" when
the true effect is zero at ``alpha`` (the loosest level: an upper bound). Together they
say how far "inconclusive" or "contradicted" can be read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ._multiple import holm

__all__ = [
    "ClaimTest",
    "Judgement",
    "claim_test",
    "decide",
    "judge_claims",
    "paired_claim_test",
    "resampled_claim_test",
]

VERDICTS = ("supported", "contradicted", "inconclusive")


@dataclass(frozen=True)
class ClaimTest:
    """The one-sided tests of one claim on its mean paired difference.

    Parameters
    ----------
    estimate : float
        Mean difference (treated - reference, in the outcome's units).
    se : float
        Its standard error.
    df : float
        Degrees of freedom of the t distribution.
    claimed : float
        The claimed difference, signed (only its sign when ``sized`` is False).
    sized : bool
        Whether the claim states a size (else only a direction).
    p_claimed, p_opposite, p_smaller, p_equivalence : float
        One-sided p-values: in the claimed direction, opposite to it, short of
        half the claim; the TOST within ``±|claimed|/2`` (NaN without a size).
    """

    estimate: float
    se: float
    df: float
    claimed: float
    sized: bool
    p_claimed: float
    p_opposite: float
    p_smaller: float
    p_equivalence: float


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict and what stands behind it.

    Parameters
    ----------
    test : ClaimTest
        The raw tests.
    verdict : str
        "supported", "contradicted" or "inconclusive".
    reason : str
        The test that decided, in words.
    p_claimed_holm, p_opposite_holm, p_smaller_holm, p_equivalence_holm : float
        The tests after Holm over the family (one family per question).
    level : float
        Holm's first-step level, ``alpha / m``, at which the power is stated.
    power : float
        Chance of "supported" at the claimed size and ``level`` (NaN without a size).
    false_contradiction : float
        Chance of "contradicted" at ``alpha`` when the true difference is zero.
    """

    test: ClaimTest
    verdict: str
    reason: str
    p_claimed_holm: float
    p_opposite_holm: float
    p_smaller_holm: float
    p_equivalence_holm: float
    level: float
    power: float
    false_contradiction: float


def _sf(x: float, df: float) -> float:
    return float(stats.t.sf(x, df))


def claim_test(estimate: float, se: float, df: float, claimed: float, *, sized: bool = True):
    """The one-sided tests of a claim from a t statistic's parts.

    Parameters
    ----------
    estimate : float
        Mean difference, in the outcome's units.
    se : float
        Its standard error (0: every difference equal; the tests are then exact
        comparisons of ``estimate`` with 0 and ``claimed/2``).
    df : float
        Degrees of freedom.
    claimed : float
        The claimed difference, signed; nonzero.
    sized : bool, default=True
        False: only the sign of ``claimed`` is claimed.

    Returns
    -------
    ClaimTest
    """
    if not np.isfinite(claimed) or claimed == 0:
        raise ValueError(f"claimed must be a nonzero finite number, got {claimed}.")
    nan = float("nan")
    s = math.copysign(1.0, claimed)
    if not (np.isfinite(estimate) and np.isfinite(se) and se >= 0 and df > 0):
        return ClaimTest(estimate, se, df, claimed, sized, nan, nan, nan, nan)
    half = claimed / 2.0
    if se == 0:
        p_claimed = 0.0 if s * estimate > 0 else 1.0
        p_opposite = 0.0 if s * estimate < 0 else 1.0
        p_smaller = 0.0 if s * (estimate - half) < 0 else 1.0
        p_eq = 0.0 if abs(estimate) < abs(half) else 1.0
    else:
        z = s * estimate / se
        p_claimed, p_opposite = _sf(z, df), _sf(-z, df)
        p_smaller = _sf(s * (half - estimate) / se, df)
        m = abs(half)
        p_eq = max(_sf((estimate + m) / se, df), _sf((m - estimate) / se, df))
    if not sized:
        p_smaller, p_eq = nan, nan
    return ClaimTest(
        float(estimate),
        float(se),
        float(df),
        float(claimed),
        sized,
        float(p_claimed),
        float(p_opposite),
        float(p_smaller),
        float(p_eq),
    )


def paired_claim_test(differences, claimed: float, *, sized: bool = True) -> ClaimTest:
    """:func:`claim_test` for independent paired differences (one per unit): the
    one-sample t-test, ``se = sd / sqrt(n)``, ``n - 1`` degrees of freedom.

    Parameters
    ----------
    differences : array-like of shape (n_units,)
        One difference per independent unit (non-finite values are dropped).
    claimed : float
        The claimed difference, signed.
    sized : bool, default=True
        False: only the sign of ``claimed`` is claimed.

    Returns
    -------
    ClaimTest
        NaN tests with fewer than two differences.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return claim_test(float("nan"), float("nan"), 0, claimed, sized=sized)
    return claim_test(
        float(d.mean()),
        float(d.std(ddof=1) / math.sqrt(d.size)),
        d.size - 1,
        claimed,
        sized=sized,
    )


def resampled_claim_test(
    differences, n_train: int, n_test: int, claimed: float, *, sized: bool = True
) -> ClaimTest:
    """:func:`claim_test` for differences over repeated random splits, with Nadeau &
    Bengio's variance correction (``1/J + n_test/n_train``), ``J - 1`` degrees of
    freedom (as :func:`corrected_resampled_ttest`).

    Parameters
    ----------
    differences : array-like of shape (n_splits,)
        One difference per split (non-finite values are dropped).
    n_train, n_test : int
        Training and test rows of each split.
    claimed : float
        The claimed difference, signed.
    sized : bool, default=True
        False: only the sign of ``claimed`` is claimed.

    Returns
    -------
    ClaimTest
        NaN tests with fewer than two splits.
    """
    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    j = d.size
    if j < 2 or n_train < 1 or n_test < 1:
        return claim_test(float("nan"), float("nan"), 0, claimed, sized=sized)
    se = math.sqrt((1.0 / j + n_test / n_train) * d.var(ddof=1))
    return claim_test(float(d.mean()), se, j - 1, claimed, sized=sized)


def _power(test: ClaimTest, level: float, alpha: float) -> tuple[float, float]:
    """Chance of "supported" at the claimed size (at ``level``) and of "contradicted"
    at zero (at ``alpha``)."""
    nan = float("nan")
    if not (np.isfinite(test.se) and test.se > 0 and test.df > 0):
        return nan, nan
    if not test.sized:
        return nan, float(alpha)
    # "supported" needs the claimed side to reject (and the smaller side not to,
    # which at the claimed size is rare): the claimed side's power is stated
    crit = stats.t.ppf(1 - level, test.df)
    power = float(stats.nct.sf(crit, test.df, abs(test.claimed) / test.se))
    # at zero, "smaller than half" rejects when s*d < |c|/2 - crit*se, an event that
    # contains the opposite side's rejection
    crit = stats.t.ppf(1 - alpha, test.df)
    false = float(stats.nct.sf(crit, test.df, abs(test.claimed) / 2 / test.se))
    return power, false


def _holm(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, np.nan)
    finite = np.isfinite(v)
    if finite.any():
        out[finite] = holm(v[finite])
    return out


def judge_claims(tests: Sequence[ClaimTest], *, alpha: float = 0.05) -> list[Judgement]:
    """Verdicts for a family of claims, Holm over the family for each question.

    Parameters
    ----------
    tests : sequence of ClaimTest
        One per claim (e.g. from :func:`paired_claim_test` or
        :func:`resampled_claim_test`); a claim whose tests are NaN is
        "inconclusive" and left out of the correction.
    alpha : float, default=0.05
        Family-wise level.

    Returns
    -------
    list of Judgement
        One per test, in order.

    Examples
    --------
    >>> from msma_sklearn.stats import judge_claims, paired_claim_test
    >>> t = paired_claim_test([0.9, 1.1, 1.0, 1.2, 0.8, 1.0], claimed=1.0)
    >>> judge_claims([t])[0].verdict
    'supported'
    >>> t = paired_claim_test([0.01, -0.02, 0.0, 0.02, -0.01, 0.0], claimed=1.0)
    >>> judge_claims([t])[0].verdict
    'contradicted'
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    tests = list(tests)
    m = sum(np.isfinite(t.p_claimed) for t in tests)
    level = alpha / max(m, 1)
    adjusted = {
        name: _holm([getattr(t, name) for t in tests])
        for name in ("p_claimed", "p_opposite", "p_smaller", "p_equivalence")
    }
    out = []
    for i, t in enumerate(tests):
        pc, po, ps, pe = (adjusted[n][i] for n in adjusted)
        verdict, reason = decide(
            pc, po, ps, pe, alpha=alpha, half=abs(t.claimed) / 2 if t.sized else None
        )
        power, false = _power(t, level, alpha)
        if verdict == "inconclusive" and np.isfinite(power):
            reason += f"; power {power:.0%} at the claimed size (level {level:.3g})"
        out.append(Judgement(t, verdict, reason, pc, po, ps, pe, level, power, false))
    return out


def decide(
    p_claimed: float,
    p_opposite: float,
    p_smaller: float = float("nan"),
    p_equivalence: float = float("nan"),
    *,
    alpha: float = 0.05,
    half: float | None = None,
    word: str = "Holm p",
    unit: str = "",
) -> tuple[str, str]:
    """The judge's rule on (adjusted) p-values: the verdict and its reason.

    "contradicted" when ``p_opposite`` or (with a size) ``p_smaller`` is below
    ``alpha``; else "supported" when ``p_claimed`` is; else "inconclusive"
    (also when ``p_claimed`` is NaN: no test).

    Parameters
    ----------
    p_claimed, p_opposite, p_smaller, p_equivalence : float
        The one-sided tests (NaN: not asked).
    alpha : float, default=0.05
        Level.
    half : float, default=None
        Half the claimed size, for the reason (None: a claim without a size).
    word : str, default="Holm p"
        How the p-values are named in the reason.
    unit : str, default=""
        Written after ``half`` in the reason (e.g. "%").

    Returns
    -------
    verdict : str
    reason : str
    """
    if not np.isfinite(p_claimed):
        return "inconclusive", "no test: too few units or no spread"
    if p_opposite < alpha:
        return "contradicted", f"opposite to the claim ({word} = {p_opposite:.3g})"
    if half is not None and p_smaller < alpha:
        size = f"{half:.3g}{unit}"
        reason = f"smaller than half the claimed size, {size} ({word} = {p_smaller:.3g})"
        if p_equivalence < alpha:
            reason += f"; within ±{size} of zero (TOST p = {p_equivalence:.3g})"
        return "contradicted", reason
    if p_claimed < alpha:
        return "supported", f"in the claimed direction ({word} = {p_claimed:.3g})"
    return "inconclusive", "no test rejects"
