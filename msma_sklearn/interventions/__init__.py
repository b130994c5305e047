"""Steering one scale's hidden states, and judging its effects with the prompt as the unit.

``Intervener`` acts on causal LMs and T5 (either stack) during generation and
on encoder-only models' representations and masked-token predictions;
``prompt_effect`` judges a claim with the prompt as the unit (equivalence
test, power, three-way verdict). The statistics themselves (paired effects,
tests, power, Holm) are in :mod:`msma_sklearn.stats`.
"""

from ._calibration import DoseCalibration, calibrate_dose, calibrate_doses, dose_response
from ._control import next_token_entropy, temperature_for_entropy
from ._fluency import FluencyCheck, fluency_check, fluency_summary
from ._intervener import REPRESENTATION_METRICS, Intervener, centred_window
from ._statistics import (
    MIN_PAIRS,
    PromptEffect,
    collapse_to_prompts,
    holm_over_claims,
    prompt_effect,
    rejudge,
)

__all__ = [
    "DoseCalibration",
    "FluencyCheck",
    "MIN_PAIRS",
    "PromptEffect",
    "REPRESENTATION_METRICS",
    "Intervener",
    "calibrate_dose",
    "centred_window",
    "calibrate_doses",
    "collapse_to_prompts",
    "dose_response",
    "holm_over_claims",
    "next_token_entropy",
    "fluency_check",
    "fluency_summary",
    "prompt_effect",
    "rejudge",
    "temperature_for_entropy",
]
