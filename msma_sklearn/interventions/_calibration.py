"""Doses that mean the same on every scale: calibrate an operator's strength to a target
disruption, the mean next-token KL on the prompts (issue #13)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone

__all__ = ["DoseCalibration", "calibrate_dose", "dose_response"]

#: the strength parameter of each operator kind, and its "no change" value
STRENGTH = {
    "scaling": ("alpha", 1.0),
    "translation": ("norm", 0.0),
    "noise": ("sigma", 0.0),
    "attention": ("temperature", 1.0),
}


@dataclass(frozen=True)
class DoseCalibration:
    """The strength whose mean next-token KL is within ``tol`` of ``target_kl``.

    ``evaluations`` lists every ``(strength, mean KL)`` tried, in order;
    ``converged`` is False when the bracket or ``max_evals`` ran out (then
    ``strength`` is the closest one tried).
    """

    parameter: str
    strength: float
    mean_kl: float
    target_kl: float
    converged: bool
    evaluations: list = field(default_factory=list)


def _set(intervener, parameter: str, value: float):
    return clone(intervener).set_params(**{parameter: value})


def _mean_kl(intervener, parameter, value, prompts, fit_texts) -> float:
    fitted = _set(intervener, parameter, value).fit(fit_texts)
    return float(np.mean(fitted.next_token_kl(prompts)))


def dose_response(intervener, prompts, strengths, *, fit_texts=None) -> list[tuple[float, float]]:
    """Mean next-token KL at each strength (the operator's own parameter, see ``STRENGTH``).

    ``fit_texts`` (default: the prompts) are passed to ``fit``: they set the
    scale of random translation directions.
    """
    parameter, _ = STRENGTH[intervener.kind]
    texts = list(prompts) if fit_texts is None else fit_texts
    return [(float(v), _mean_kl(intervener, parameter, v, prompts, texts)) for v in strengths]


def calibrate_dose(
    intervener,
    prompts,
    target_kl: float,
    *,
    upper: float,
    tol: float = 0.1,
    max_evals: int = 20,
    fit_texts=None,
) -> DoseCalibration:
    """Find the operator strength giving a mean next-token KL of ``target_kl`` nats.

    Bisection between the operator's identity (``alpha = 1``, ``norm = 0``,
    ``sigma = 0``, ``temperature = 1``; KL 0) and ``upper``, in the
    operator's own parameter (geometric midpoints for scaling and
    temperature, whose identity is 1). The mean KL must grow with the
    strength over the bracket, which holds for these operators in practice;
    the evaluations are returned so a non-monotone case is visible.

    Parameters
    ----------
    intervener : Intervener
        Unfitted or fitted; cloned for every strength (its other settings,
        layers included, are kept).
    prompts : sequence of str
    target_kl : float
        Target mean KL(baseline || intervened) of the next token, in nats.
    upper : float
        The strongest setting to consider (e.g. ``alpha=4``, ``norm=8``); its
        mean KL must exceed the target.
    tol : float, default=0.1
        Relative tolerance on the mean KL.
    max_evals : int, default=20
    fit_texts : sequence of str, default=None
        Passed to ``fit`` (the scale of random translations); None: the prompts.
    """
    if target_kl <= 0:
        raise ValueError(f"target_kl must be positive, got {target_kl}.")
    parameter, identity = STRENGTH[intervener.kind]
    evaluations = []

    texts = list(prompts) if fit_texts is None else fit_texts

    def measure(value):
        kl = _mean_kl(intervener, parameter, value, prompts, texts)
        evaluations.append((float(value), kl))
        return kl

    top = measure(upper)
    if top < target_kl:
        return DoseCalibration(parameter, float(upper), top, target_kl, False, evaluations)
    geometric = identity == 1.0
    lo, hi = identity, upper
    for _ in range(max_evals - 1):
        mid = math.sqrt(lo * hi) if geometric and lo > 0 and hi > 0 else (lo + hi) / 2
        kl = measure(mid)
        if abs(kl - target_kl) <= tol * target_kl:
            return DoseCalibration(parameter, float(mid), kl, target_kl, True, evaluations)
        if kl < target_kl:
            lo = mid
        else:
            hi = mid
    best = min(evaluations, key=lambda e: abs(e[1] - target_kl))
    return DoseCalibration(parameter, best[0], best[1], target_kl, False, evaluations)
