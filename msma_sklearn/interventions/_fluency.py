"""A fluency guard for intervened generations.

An intervention that turns the output into punctuation fragments can move
every text metric while producing no language. The guard measures, for a
baseline and a treated set of continuations of the same prompts, the
perplexity under the *unmodified* model, distinct-2, the share of repeated word
4-grams and the share of non-alphabetic characters. It is two-sided: it flags
gibberish (median perplexity above ``threshold`` times the baseline's) and
collapse (median perplexity below the baseline's lower quartile: text the model
finds easier than most of its own samples, as a temperature drop gives), and
repetition (median repeated 4-gram share above the baseline's upper quartile).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..metrics.text import distinct_n, non_alpha_share, perplexity, repeated_ngram_share

__all__ = ["FluencyCheck", "fluency_check", "fluency_summary"]


@dataclass(frozen=True)
class FluencyCheck:
    """Medians of the fluency measures for baseline and treated continuations.

    ``ppl_ratio`` is median treated perplexity over median baseline
    perplexity; ``flagged`` is ``ppl_ratio > threshold``. ``defined_*`` are
    the shares of texts where perplexity is defined (a continuation of at
    least one token).

    Parameters
    ----------
    n_texts : int
        Continuations per side.
    median_ppl_baseline, median_ppl_treated : float
        Median perplexity of each side, given its prompt.
    ppl_ratio : float
        Treated over baseline median.
    share_over_threshold : float
        Share of treated texts above ``threshold`` times the baseline median.
    distinct_2_baseline, distinct_2_treated : float
        Median distinct-2 of each side.
    non_alpha_baseline, non_alpha_treated : float
        Median share of non-letter characters of each side.
    defined_baseline, defined_treated : float
        Share of texts whose perplexity is defined.
    threshold : float
        The flagging multiple.
    flagged : bool
        Any of the three flags below.
    ppl_low_baseline : float
        The baseline's lower quartile of per-text perplexity.
    repetition_baseline, repetition_treated : float
        Median share of repeated word 4-grams of each side.
    repetition_high_baseline : float
        The baseline's upper quartile of that share.
    flagged_high, flagged_low, flagged_repetition : bool
        Gibberish (``ppl_ratio > threshold``), collapse (treated median below
        ``ppl_low_baseline``), repetition (treated median above
        ``repetition_high_baseline``).
    """

    n_texts: int
    median_ppl_baseline: float
    median_ppl_treated: float
    ppl_ratio: float
    share_over_threshold: float
    distinct_2_baseline: float
    distinct_2_treated: float
    non_alpha_baseline: float
    non_alpha_treated: float
    defined_baseline: float
    defined_treated: float
    threshold: float
    flagged: bool
    ppl_low_baseline: float = float("nan")
    repetition_baseline: float = float("nan")
    repetition_treated: float = float("nan")
    repetition_high_baseline: float = float("nan")
    flagged_high: bool = False
    flagged_low: bool = False
    flagged_repetition: bool = False

    @property
    def reason(self) -> str:
        """Which flags were raised, in words ("" when none).

        Returns
        -------
        str
        """
        words = [
            ("perplexity too high (gibberish)", self.flagged_high),
            ("perplexity too low (collapse)", self.flagged_low),
            ("repetition", self.flagged_repetition),
        ]
        return ", ".join(w for w, on in words if on)

    def to_dict(self) -> dict:
        """Every field, JSON-able.

        Returns
        -------
        dict
        """
        return asdict(self)


def _quantile(values, q: float) -> float:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.quantile(v, q)) if v.size else float("nan")


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def fluency_summary(
    baseline_texts,
    treated_texts,
    baseline_ppl,
    treated_ppl,
    *,
    threshold: float = 2.0,
) -> FluencyCheck:
    """The guard from precomputed perplexities (pure; see :func:`fluency_check`).

    ``share_over_threshold`` is the share of treated texts whose perplexity
    exceeds ``threshold`` times the baseline median. Flags: gibberish (median
    ratio above ``threshold``), collapse (treated median below the baseline's
    lower quartile), repetition (treated median repeated 4-gram share above
    the baseline's upper quartile).

    Parameters
    ----------
    baseline_texts, treated_texts : sequence of str
        Continuations without and with the intervention.
    baseline_ppl, treated_ppl : array-like of float
        Their perplexities, in the same order.
    threshold : float, default=2.0
        Flag when the treated median exceeds this multiple of the baseline's.

    Returns
    -------
    FluencyCheck

    Examples
    --------
    >>> check = fluency_summary(["a b c"] * 3, [", , ."] * 3, [9.0, 10.0, 11.0], [140.0] * 3)
    >>> check.flagged, round(check.ppl_ratio, 1)
    (True, 14.0)
    """
    b_ppl = np.asarray(baseline_ppl, dtype=np.float64)
    t_ppl = np.asarray(treated_ppl, dtype=np.float64)
    if len(baseline_texts) != b_ppl.size or len(treated_texts) != t_ppl.size:
        raise ValueError(
            f"Got {len(baseline_texts)} / {len(treated_texts)} texts for {b_ppl.size} / "
            f"{t_ppl.size} perplexities; pass one perplexity per text."
        )
    if threshold <= 1:
        raise ValueError(f"threshold must exceed 1, got {threshold}.")
    base, treat = _median(b_ppl), _median(t_ppl)
    ratio = treat / base if base > 0 else float("nan")
    over = t_ppl[np.isfinite(t_ppl)] > threshold * base
    low = _quantile(b_ppl, 0.25)
    rep_b, rep_t = repeated_ngram_share(baseline_texts), repeated_ngram_share(treated_texts)
    rep_high = _quantile(rep_b, 0.75)
    high_flag = bool(np.isfinite(ratio) and ratio > threshold)
    low_flag = bool(np.isfinite(treat) and np.isfinite(low) and treat < low)
    rep_flag = bool(np.isfinite(_median(rep_t)) and _median(rep_t) > rep_high)
    return FluencyCheck(
        n_texts=len(treated_texts),
        median_ppl_baseline=base,
        median_ppl_treated=treat,
        ppl_ratio=ratio,
        share_over_threshold=float(over.mean()) if over.size else float("nan"),
        distinct_2_baseline=_median(distinct_n(baseline_texts, 2)),
        distinct_2_treated=_median(distinct_n(treated_texts, 2)),
        non_alpha_baseline=_median(non_alpha_share(baseline_texts)),
        non_alpha_treated=_median(non_alpha_share(treated_texts)),
        defined_baseline=float(np.isfinite(b_ppl).mean()) if b_ppl.size else float("nan"),
        defined_treated=float(np.isfinite(t_ppl).mean()) if t_ppl.size else float("nan"),
        threshold=float(threshold),
        flagged=high_flag or low_flag or rep_flag,
        ppl_low_baseline=low,
        repetition_baseline=_median(rep_b),
        repetition_treated=_median(rep_t),
        repetition_high_baseline=rep_high,
        flagged_high=high_flag,
        flagged_low=low_flag,
        flagged_repetition=rep_flag,
    )


def fluency_check(
    prompts,
    baseline_texts,
    treated_texts,
    *,
    model: str = "smollm2-135m",
    threshold: float = 2.0,
    batch_size: int = 16,
) -> FluencyCheck:
    """Perplexity of each continuation given its prompt under the unmodified ``model``,
    then :func:`fluency_summary`.

    Parameters
    ----------
    prompts : sequence of str
        One per continuation; baseline and treated continuations are of the
        same prompts, in the same order.
    baseline_texts, treated_texts : sequence of str
        Continuations without and with the intervention (prompt excluded).
    model : str, default="smollm2-135m"
        The model whose own, unmodified distribution judges fluency.
    threshold : float, default=2.0
        Flag when the median perplexity exceeds this multiple of the baseline's.
    batch_size : int, default=16
        Texts per forward pass.

    Returns
    -------
    FluencyCheck
    """
    if not (len(prompts) == len(baseline_texts) == len(treated_texts)):
        raise ValueError(
            f"Got {len(prompts)} prompts, {len(baseline_texts)} baseline and "
            f"{len(treated_texts)} treated texts; pass one of each per prompt."
        )
    b_ppl = perplexity(baseline_texts, model, prompts=prompts, batch_size=batch_size)
    t_ppl = perplexity(treated_texts, model, prompts=prompts, batch_size=batch_size)
    return fluency_summary(baseline_texts, treated_texts, b_ppl, t_ppl, threshold=threshold)
