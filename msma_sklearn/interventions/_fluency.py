"""A fluency guard for intervened generations.

An intervention that turns the output into punctuation fragments can move
every text metric while producing no language. The guard measures, for a
baseline and a treated set of continuations of the same prompts, the
perplexity under the *unmodified* model, distinct-2 and the share of
non-alphabetic characters, and flags the treated condition when its median
perplexity exceeds ``threshold`` times the baseline's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..metrics.text import distinct_n, non_alpha_share, perplexity

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
        ``ppl_ratio > threshold``.
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

    def to_dict(self) -> dict:
        """Every field, JSON-able.

        Returns
        -------
        dict
        """
        return asdict(self)


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
    exceeds ``threshold`` times the baseline median.

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
        flagged=bool(np.isfinite(ratio) and ratio > threshold),
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
