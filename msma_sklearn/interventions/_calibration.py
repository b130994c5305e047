"""Doses that mean the same on every scale: calibrate an operator's strength to a target
disruption, the mean next-token KL on the prompts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

from .._registry import operator_for
from ._helpers import _baseline_rows

__all__ = ["DoseCalibration", "calibrate_dose", "calibrate_doses", "dose_response"]


@dataclass(frozen=True)
class DoseCalibration:
    """The strength whose mean next-token KL is within ``tol`` of ``target_kl``.

    ``evaluations`` lists every ``(strength, mean KL)`` tried, in order;
    ``converged`` is False when the bracket or ``max_evals`` ran out (then
    ``strength`` is the closest one tried).

    Parameters
    ----------
    parameter : str
        The operator's strength parameter (``alpha``, ``norm``, ...).
    strength : float
        The calibrated value.
    mean_kl : float
        Its mean next-token KL, in nats.
    target_kl : float
        The target, in nats.
    converged : bool
        Whether ``mean_kl`` is within the tolerance of the target.
    evaluations : list of (float, float)
        Every ``(strength, mean KL)`` tried, in order.
    """

    parameter: str
    strength: float
    mean_kl: float
    target_kl: float
    converged: bool
    evaluations: list = field(default_factory=list)


def _set(intervener, parameter: str, value: float):
    return clone(intervener).set_params(**{parameter: value})


class _MeanKL:
    """Mean next-token KL at a strength, memoised; the baseline pass is computed once.

    With ``continuations`` the KL of each prompt is the mean over the positions of
    its teacher-forced continuation (``Intervener.continuation_logprobs``), else the
    prompt's next token only. ``baseline`` (the unmodified model's rows, one array per
    prompt) saves the baseline pass when several operators share the prompts."""

    def __init__(
        self, intervener, prompts, fit_texts, continuations=None, max_tokens=None, baseline=None
    ):
        self.intervener = intervener
        op = operator_for(intervener.kind)
        self.parameter, self.identity = op.parameter, op.identity
        self.prompts = list(prompts)
        self.fit_texts = self.prompts if fit_texts is None else fit_texts
        self.continuations = None if continuations is None else list(continuations)
        self.max_tokens = max_tokens
        self.base, self.counts = _baseline_rows(baseline, len(self.prompts))
        self.memo: dict[float, float] = {float(self.identity): 0.0}  # no change: KL 0
        self.order: list[tuple[float, float]] = []

    def __call__(self, value: float) -> float:
        value = float(value)
        if value not in self.memo:
            fitted = _set(self.intervener, self.parameter, value).fit(self.fit_texts)
            if self.base is None:
                self.base, self.counts = fitted._position_logprobs(
                    self.prompts, self.continuations, intervene=False, max_tokens=self.max_tokens
                )
            kl = fitted._position_kl(
                self.base, self.counts, self.prompts, self.continuations, max_tokens=self.max_tokens
            )
            per_prompt = [part.mean() for part in np.split(kl, np.cumsum(self.counts)[:-1])]
            self.memo[value] = float(np.mean(per_prompt))
        self.order.append((value, self.memo[value]))
        return self.memo[value]

    def distance(self, value: float) -> float:
        """How far a strength is from the identity (log scale for alpha and temperature)."""
        if self.identity == 1.0:
            return abs(math.log(value)) if value > 0 else math.inf
        return abs(value - self.identity)


def dose_response(
    intervener,
    prompts,
    strengths,
    *,
    fit_texts=None,
    continuations=None,
    max_tokens=None,
    baseline=None,
) -> list[tuple[float, float]]:
    """Mean next-token KL at each strength of the operator's own parameter.

    ``fit_texts`` (default: the prompts) are passed to ``fit``: they set the
    scale of random translation directions.

    Parameters
    ----------
    intervener : Intervener
        Cloned for every strength.
    prompts : sequence of str
        The prompts whose next-token distributions are compared.
    strengths : sequence of float
        Values of the operator's strength parameter.
    fit_texts : sequence of str, default=None
        Passed to ``fit``; None: the prompts.
    continuations : sequence of str, default=None
        One per prompt: the KL is averaged over its teacher-forced positions
        (see :func:`calibrate_dose`); None: the prompt's next token only.
    max_tokens : int, default=None
        Continuation tokens read per prompt.
    baseline : list of ndarray, default=None
        As in :func:`calibrate_dose`.

    Returns
    -------
    list of (float, float)
        ``(strength, mean KL in nats)``.
    """
    measure = _MeanKL(intervener, prompts, fit_texts, continuations, max_tokens, baseline)
    return [(float(v), measure(v)) for v in strengths]


def calibrate_dose(
    intervener,
    prompts,
    target_kl: float,
    *,
    upper: float,
    tol: float = 0.1,
    max_evals: int = 20,
    fit_texts=None,
    continuations=None,
    max_tokens=None,
    baseline=None,
) -> DoseCalibration:
    """Find the operator strength giving a mean next-token KL of ``target_kl`` nats.

    A bracketed search between the operator's identity (``alpha = 1``,
    ``norm = 0``, ``sigma = 0``, ``temperature = 1``; KL 0) and ``upper``, in
    the operator's own parameter: each new strength interpolates log KL
    linearly in the log of the distance from the identity (KL grows about as
    a power of it), falling back to the bracket's (geometric) midpoint when
    the interpolation lands near an end. The mean KL must grow with the
    strength over the bracket, which holds for these operators in practice;
    the evaluations are returned so a non-monotone case is visible.

    Parameters
    ----------
    intervener : Intervener
        Unfitted or fitted; cloned for every strength (its other settings,
        layers included, are kept).
    prompts : sequence of str
        The prompts whose next-token distributions are compared.
    target_kl : float
        Target mean KL(baseline || intervened) of the next token, in nats.
    upper : float
        The strongest setting to consider (e.g. ``alpha=4``, ``norm=8``); its
        mean KL must exceed the target, else ``converged`` is False.
    tol : float, default=0.1
        Relative tolerance on the mean KL.
    max_evals : int, default=20
        Most strengths evaluated.
    fit_texts : sequence of str, default=None
        Passed to ``fit`` (the scale of random translations); None: the prompts.
    continuations : sequence of str, default=None
        One continuation per prompt (the unmodified model's, e.g. from
        ``generate_baseline``): each prompt's KL is then the mean over the
        positions of its teacher-forced continuation
        (``Intervener.continuation_logprobs``), so the dose is matched over the
        positions that are generated and scored rather than at the prompt's
        last token only. Needs ``positions="all"``. None: the prompt's next
        token only.
    max_tokens : int, default=None
        Continuation tokens read per prompt (None: all).
    baseline : list of ndarray, default=None
        The unmodified model's log-probability rows, one array per prompt, as
        ``Intervener.continuation_logprobs(prompts, continuations,
        intervene=False, max_tokens=max_tokens)`` returns them (or one row per
        prompt, ``next_token_logprobs(prompts, intervene=False)``, without
        continuations): computed once and passed to every operator calibrated
        on the same prompts, it saves one forward pass each. None: computed here.

    Returns
    -------
    DoseCalibration
    """
    return calibrate_doses(
        intervener,
        prompts,
        [target_kl],
        upper=upper,
        tol=tol,
        max_evals=max_evals,
        fit_texts=fit_texts,
        continuations=continuations,
        max_tokens=max_tokens,
        baseline=baseline,
    )[0]


def calibrate_doses(
    intervener,
    prompts,
    targets,
    *,
    upper: float,
    tol: float = 0.1,
    max_evals: int = 20,
    fit_texts=None,
    continuations=None,
    max_tokens=None,
    baseline=None,
) -> list[DoseCalibration]:
    """:func:`calibrate_dose` for several target KLs, sharing every evaluation.

    The baseline forward pass is computed once and each strength's mean KL
    is measured once, so the later targets start from the bracket the
    earlier ones found. ``evaluations`` of each result lists what that
    target's search looked at (memoised values included).

    Parameters
    ----------
    intervener : Intervener
        Cloned for every strength.
    prompts : sequence of str
        The prompts whose next-token distributions are compared.
    targets : sequence of float
        Target mean KLs, in nats (positive).
    upper : float
        The strongest setting to consider.
    tol : float, default=0.1
        Relative tolerance on the mean KL.
    max_evals : int, default=20
        Most strengths evaluated per target.
    fit_texts : sequence of str, default=None
        Passed to ``fit``; None: the prompts.
    continuations, max_tokens, baseline : default=None
        As in :func:`calibrate_dose`.

    Returns
    -------
    list of DoseCalibration
        One per target, in order.
    """
    targets = [float(t) for t in targets]
    if not targets or min(targets) <= 0:
        raise ValueError(f"target KLs must be positive, got {targets}.")
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}.")
    measure = _MeanKL(intervener, prompts, fit_texts, continuations, max_tokens, baseline)
    if measure.distance(float(upper)) == 0 or not math.isfinite(measure.distance(float(upper))):
        raise ValueError(
            f"upper={upper} is the identity of {measure.parameter} (or invalid); pass a "
            "stronger setting."
        )
    return [_search(measure, target, float(upper), tol, max_evals) for target in targets]


def _search(measure: _MeanKL, target: float, upper: float, tol: float, max_evals: int):
    first = len(measure.order)

    def result(value, kl, converged):
        return DoseCalibration(
            measure.parameter, float(value), kl, target, converged, measure.order[first:]
        )

    top = measure(upper)
    if abs(top - target) <= tol * target:
        return result(upper, top, True)
    if top < target:
        return result(upper, top, False)
    # the tightest bracket the memo already holds (monotone KL assumed)
    lo, hi = measure.identity, upper
    for value, kl in measure.memo.items():
        same_side = (value - measure.identity) * (upper - measure.identity) >= 0
        if not same_side:
            continue
        d = measure.distance(value)
        if kl < target and d > measure.distance(lo):
            lo = value
        elif kl > target and d < measure.distance(hi):
            hi = value
    for _ in range(max_evals - 1):
        value = _propose(measure, lo, hi, target)
        kl = measure(value)
        if abs(kl - target) <= tol * target:
            return result(value, kl, True)
        lo, hi = (value, hi) if kl < target else (lo, value)
    value, kl = min(measure.order[first:], key=lambda e: abs(e[1] - target))
    return result(value, kl, False)


def _propose(measure: _MeanKL, lo: float, hi: float, target: float) -> float:
    geometric = measure.identity == 1.0

    def from_distance(d):
        sign = 1.0 if hi > measure.identity else -1.0
        return math.exp(sign * d) if geometric else measure.identity + sign * d

    d_lo, d_hi = measure.distance(lo), measure.distance(hi)
    kl_lo, kl_hi = measure.memo[lo], measure.memo[hi]
    if d_lo > 0 and kl_lo > 0:  # log-log interpolation inside the bracket
        slope = (math.log(kl_hi) - math.log(kl_lo)) / (math.log(d_hi) - math.log(d_lo))
        if slope > 0:
            d = math.exp(math.log(d_lo) + (math.log(target) - math.log(kl_lo)) / slope)
            share = (math.log(d) - math.log(d_lo)) / (math.log(d_hi) - math.log(d_lo))
            if 0.1 <= share <= 0.9:
                return from_distance(d)
    if d_lo == 0:  # from the identity: KL ~ d**2 near it, a guess that keeps in the bracket
        d = d_hi * min(max(math.sqrt(target / kl_hi), 0.1), 0.9)
        return from_distance(d)
    return from_distance(math.sqrt(d_lo * d_hi))
