"""Prompt-level statistics for intervention claims: the prompt is the unit.

Samples of one prompt (several seeds, or identical greedy copies) are
averaged within the prompt before any test, so a prompt is never counted
twice. A claim is judged on the prompt-level paired differences with a
one-sided t-test in the claimed direction, an equivalence test (TOST) against
half the claimed size, and a power analysis at the claimed size; the verdict
is "supported", "contradicted" or "inconclusive".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats
from sklearn.utils import check_random_state

from ..stats import decide, paired_power, tost_paired

__all__ = [
    "MIN_PAIRS",
    "PromptEffect",
    "collapse_to_prompts",
    "holm_over_claims",
    "prompt_effect",
    "rejudge",
]

#: fewer defined prompt pairs than this and no effect is reported
MIN_PAIRS = 20
#: PromptEffect's measured fields, NaN until measured
_MEASURES = (
    "baseline_mean",
    "treated_mean",
    "percent_change",
    "ci_low",
    "ci_high",
    "d_z",
    "p_claimed",
    "p_opposite",
    "p_smaller",
    "p_equivalence",
    "power",
)


def collapse_to_prompts(prompt_ids, values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of each prompt's defined (finite) values.

    Parameters
    ----------
    prompt_ids : array-like of shape (n_samples,)
        Which prompt each sample came from (any hashable labels).
    values : array-like of shape (n_samples,)
        One measurement per sample; NaN marks a metric that is undefined for
        that sample (e.g. sentence-level metrics of a one-sentence output).

    Returns
    -------
    prompts : ndarray
        The distinct prompt ids, in order of first appearance.
    means : ndarray of float
        Mean over the prompt's defined samples; NaN when none is defined.
    n_defined : ndarray of int
        Defined samples per prompt.

    Examples
    --------
    >>> p, m, k = collapse_to_prompts(["a", "a", "b"], [1.0, 3.0, float("nan")])
    >>> p.tolist(), float(m[0]), int(k[1])
    (['a', 'b'], 2.0, 0)
    """
    ids = np.asarray(prompt_ids)
    v = np.asarray(values, dtype=np.float64)
    if ids.shape != v.shape or v.ndim != 1:
        raise ValueError(
            f"prompt_ids and values must be 1-D and of one length, got {ids.shape} and {v.shape}."
        )
    prompts, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[inverse]
    defined = np.isfinite(v)
    n_defined = np.bincount(group[defined], minlength=len(prompts))
    sums = np.bincount(group[defined], weights=v[defined], minlength=len(prompts))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(n_defined > 0, sums / np.maximum(n_defined, 1), np.nan)
    return prompts[order], means, n_defined


@dataclass(frozen=True)
class PromptEffect:
    """One condition's effect on one metric, measured per prompt.

    ``percent_change`` is ``100 (mean treated - mean baseline) / |mean
    baseline|`` over the prompts where both are defined: the effect size the
    original README reports; ``ci_low``/``ci_high`` its bootstrap interval over
    prompts. ``d_z`` is the paired standardised mean difference (not the
    original's δ). ``p_claimed``/``p_opposite``/``p_smaller`` are one-sided
    paired t-test p-values before any correction (effect in the claimed
    direction; opposite to it; smaller than half the claim), ``p_equivalence`` the TOST p-value
    against half the claimed size, ``power`` the power to detect the claimed
    size at this n, and ``verdict`` one of "supported", "contradicted",
    "inconclusive" (with ``reason``).

    Parameters
    ----------
    n_prompts, n_pairs : int
        Prompts, and prompts where the metric is defined on both sides.
    defined_baseline, defined_treated : float
        Share of samples where the metric is defined, per side.
    baseline_mean, treated_mean : float
        Means over the defined prompts.
    percent_change : float
        The effect size (above).
    ci_low, ci_high : float
        Its bootstrap interval over prompts.
    d_z : float
        Paired standardised mean difference.
    claimed_percent : float or None
        The claim's size (None: exploratory).
    p_claimed, p_opposite, p_smaller : float
        One-sided p-values (above).
    p_equivalence : float
        TOST p-value against half the claimed size.
    power : float
        Power to detect the claimed size at this n.
    verdict : str
        "supported", "contradicted", "inconclusive" or "exploratory".
    reason : str
        Why, in words.
    """

    n_prompts: int
    n_pairs: int
    defined_baseline: float
    defined_treated: float
    baseline_mean: float
    treated_mean: float
    percent_change: float
    ci_low: float
    ci_high: float
    d_z: float
    claimed_percent: float | None
    p_claimed: float
    p_opposite: float
    p_smaller: float
    p_equivalence: float
    power: float
    verdict: str
    reason: str

    def to_dict(self) -> dict:
        """Every field, JSON-able.

        Returns
        -------
        dict
        """
        return asdict(self)


def prompt_effect(
    prompt_ids,
    baseline,
    treated,
    *,
    claimed_percent: float | None = None,
    alpha: float = 0.05,
    p_adjusted: float | None = None,
    p_adjusted_opposite: float | None = None,
    p_adjusted_smaller: float | None = None,
    n_resamples: int = 2000,
    random_state=None,
) -> PromptEffect:
    """Judge a treated condition against its baseline, the prompt being the unit.

    Parameters
    ----------
    prompt_ids : array-like of shape (n_samples,)
        Prompt of each sample; baseline and treated samples of one prompt
        share it (and, with sampled decoding, their seeds).
    baseline, treated : array-like of shape (n_samples,)
        The metric per sample; NaN where undefined. Undefined samples are
        left out within their prompt; how often the metric is defined is
        returned as an outcome (``defined_baseline``, ``defined_treated``),
        never dropped silently.
    claimed_percent : float, default=None
        The claimed percent change (its sign gives the direction). None:
        exploratory, a two-sided test (``p_claimed`` is two-sided) and no
        verdict beyond "exploratory".
    alpha : float, default=0.05
        Level of every test behind the verdict.
    p_adjusted, p_adjusted_opposite, p_adjusted_smaller : float, default=None
        ``p_claimed``, ``p_opposite`` and ``p_smaller`` after a
        multiple-comparison correction over the family (Holm over the
        confirmatory claims, each question its own family), used for the
        verdict in every direction; None uses the raw p-value.
    n_resamples : int, default=2000
        Bootstrap resamples of prompts for the percent-change interval.
    random_state : int, RandomState or None
        Seeds the bootstrap.

    Returns
    -------
    PromptEffect

    Notes
    -----
    Verdict for a claim of size ``c`` (percent of the baseline mean, turned
    into the outcome's units): with fewer than :data:`MIN_PAIRS` defined
    prompt pairs, "inconclusive"; "contradicted" when a one-sided test shows
    the effect opposite to the claim, or smaller than half the claimed size
    (which covers the TOST's "within ±c/2 of zero", also reported);
    "supported" when the one-sided test in the claimed direction rejects at
    ``alpha`` (after correction) and the effect is not shown to be smaller
    than c/2; otherwise "inconclusive", with the power at the claimed size.
    """
    ids = np.asarray(prompt_ids)
    b_raw = np.asarray(baseline, dtype=np.float64)
    t_raw = np.asarray(treated, dtype=np.float64)
    if not (ids.shape == b_raw.shape == t_raw.shape):
        raise ValueError(
            f"prompt_ids, baseline and treated must have one shape, got {ids.shape}, "
            f"{b_raw.shape} and {t_raw.shape}."
        )
    prompts, b, _ = collapse_to_prompts(ids, b_raw)
    _, t, _ = collapse_to_prompts(ids, t_raw)
    both = np.isfinite(b) & np.isfinite(t)
    n_prompts, n_pairs = len(prompts), int(both.sum())
    b, t = b[both], t[both]
    nan = float("nan")
    out = dict(
        n_prompts=n_prompts,
        n_pairs=n_pairs,
        defined_baseline=float(np.isfinite(b_raw).mean()) if b_raw.size else nan,
        defined_treated=float(np.isfinite(t_raw).mean()) if t_raw.size else nan,
        claimed_percent=claimed_percent,
        **dict.fromkeys(_MEASURES, nan),
    )
    if n_pairs:
        out.update(baseline_mean=float(b.mean()), treated_mean=float(t.mean()))
    if n_pairs < MIN_PAIRS:
        reason = f"{n_pairs} defined prompt pairs (fewer than {MIN_PAIRS}): no effect reported"
        return PromptEffect(**out, verdict="inconclusive", reason=reason)
    d = t - b
    base = abs(b.mean())
    rng = check_random_state(random_state)
    idx = rng.randint(0, n_pairs, size=(n_resamples, n_pairs))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = 100.0 * d[idx].mean(1) / np.abs(b[idx].mean(1))
    boot = boot[np.isfinite(boot)]
    lo, hi = np.quantile(boot, [0.025, 0.975]) if boot.size else (nan, nan)
    sd = d.std(ddof=1)
    constant = sd == 0
    d_z = d.mean() / sd if sd > 0 else (0.0 if d.mean() == 0 else float(np.sign(d.mean()) * np.inf))
    out.update(
        percent_change=float(100.0 * d.mean() / base) if base > 0 else nan,
        ci_low=float(lo),
        ci_high=float(hi),
        d_z=float(d_z),
    )
    if claimed_percent is None:
        p_two = 1.0 if constant and d.mean() == 0 else float(stats.ttest_1samp(d, 0.0).pvalue)
        out.update(p_claimed=p_two)
        reason = "no claimed size: two-sided test, for a false-discovery correction"
        return PromptEffect(**out, verdict="exploratory", reason=reason)
    direction = "greater" if claimed_percent > 0 else "less"
    opposite = "less" if claimed_percent > 0 else "greater"
    if constant:  # every difference equal: the t-test is undefined
        sign = np.sign(d.mean())
        p_claimed = 0.0 if sign == np.sign(claimed_percent) else 1.0
        p_opp = 0.0 if sign == -np.sign(claimed_percent) else 1.0
    else:
        p_claimed = float(stats.ttest_1samp(d, 0.0, alternative=direction).pvalue)
        p_opp = float(stats.ttest_1samp(d, 0.0, alternative=opposite).pvalue)
    claimed_diff = claimed_percent / 100.0 * base
    margin = abs(claimed_diff) / 2.0
    p_eq = tost_paired(d, margin) if margin > 0 and not constant else nan
    power = paired_power(claimed_diff, sd, n_pairs, alpha)
    # is the effect smaller than half the claim (in the claimed direction)?
    if constant:
        p_small = (
            0.0 if abs(d.mean()) < margin or np.sign(d.mean()) != np.sign(claimed_percent) else 1.0
        )
    else:
        p_small = float(stats.ttest_1samp(d, claimed_diff / 2.0, alternative=opposite).pvalue)
    out.update(
        p_claimed=p_claimed, p_opposite=p_opp, p_smaller=p_small, p_equivalence=p_eq, power=power
    )
    effect = PromptEffect(**out, verdict="", reason="")
    return rejudge(
        effect,
        alpha=alpha,
        p_adjusted=p_adjusted,
        p_adjusted_opposite=p_adjusted_opposite,
        p_adjusted_smaller=p_adjusted_smaller,
    )


def rejudge(
    effect: PromptEffect,
    *,
    alpha: float = 0.05,
    p_adjusted: float | None = None,
    p_adjusted_opposite: float | None = None,
    p_adjusted_smaller: float | None = None,
) -> PromptEffect:
    """``effect`` (of a claim) with its verdict decided by the given p-values.

    Each ``p_adjusted*`` replaces the effect's raw ``p_claimed``,
    ``p_opposite`` or ``p_smaller`` (None keeps the raw one); the measurement
    itself (effect sizes, interval, power) is reused, not recomputed.

    Parameters
    ----------
    effect : PromptEffect
        The measured effect.
    alpha : float, default=0.05
        Level of every test behind the verdict.
    p_adjusted, p_adjusted_opposite, p_adjusted_smaller : float, default=None
        Adjusted p-values (None: the raw ones).

    Returns
    -------
    PromptEffect
    """
    from dataclasses import replace

    def pick(adjusted, raw):
        return raw if adjusted is None else adjusted

    p_judge = pick(p_adjusted, effect.p_claimed)
    p_judge_opp = pick(p_adjusted_opposite, effect.p_opposite)
    p_judge_small = pick(p_adjusted_smaller, effect.p_smaller)
    word = "Holm p" if p_adjusted is not None else "p"
    verdict, reason = decide(
        p_judge,
        p_judge_opp,
        p_judge_small,
        effect.p_equivalence,
        alpha=alpha,
        half=abs(effect.claimed_percent) / 2,
        word=word,
        unit="%",
    )
    if verdict == "inconclusive":
        reason = f"no test rejects; power {effect.power:.0%} at the claimed size"
    return replace(effect, verdict=verdict, reason=reason)


def holm_over_claims(effects) -> list[dict]:
    """Holm-adjusted p-values of confirmatory claims, one family per question.

    The verdict of :func:`prompt_effect` asks three one-sided questions: is
    the effect in the claimed direction (``p_claimed``), opposite to it
    (``p_opposite``), smaller than half of it (``p_smaller``)? Each is
    Holm-adjusted over the claims with a finite ``p_claimed`` (those with
    enough defined pairs), so "contradicted" is corrected like "supported".

    Parameters
    ----------
    effects : list of PromptEffect
        Each claim's effect judged on raw p-values.

    Returns
    -------
    list of dict
        Per effect, ``{"p_adjusted", "p_adjusted_opposite",
        "p_adjusted_smaller"}`` to pass back to :func:`prompt_effect`; an
        empty dict for a claim without a test.
    """
    from ..stats import holm

    finite = [i for i, e in enumerate(effects) if np.isfinite(e.p_claimed)]
    out = [{} for _ in effects]
    for key, field in (
        ("p_adjusted", "p_claimed"),
        ("p_adjusted_opposite", "p_opposite"),
        ("p_adjusted_smaller", "p_smaller"),
    ):
        adjusted = holm([getattr(effects[i], field) for i in finite]) if finite else []
        for i, value in zip(finite, adjusted, strict=True):
            out[i][key] = float(value)
    return out
