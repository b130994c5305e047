"""Steering one scale's hidden states, and paired effect statistics.

``Intervener`` acts on causal LMs and T5 (either stack) during generation and
on encoder-only models' representations and masked-token predictions; the
``_effects`` functions give percent change, paired Cohen's d, bootstrap
intervals and Holm-corrected Wilcoxon tests; ``prompt_effect`` judges a
claim with the prompt as the unit (equivalence test, power, three-way
verdict).
"""

from ._calibration import DoseCalibration, calibrate_dose, calibrate_doses, dose_response
from ._effects import bootstrap_ci, holm, paired_cohens_d, paired_effect, percent_change
from ._fluency import FluencyCheck, fluency_check, fluency_summary
from ._intervener import REPRESENTATION_METRICS, Intervener
from ._statistics import (
    MIN_PAIRS,
    PromptEffect,
    benjamini_hochberg,
    collapse_to_prompts,
    holm_over_claims,
    minimum_detectable_effect,
    paired_power,
    prompt_effect,
    rejudge,
    tost_paired,
)

__all__ = [
    "DoseCalibration",
    "FluencyCheck",
    "MIN_PAIRS",
    "PromptEffect",
    "REPRESENTATION_METRICS",
    "Intervener",
    "benjamini_hochberg",
    "calibrate_dose",
    "calibrate_doses",
    "collapse_to_prompts",
    "dose_response",
    "holm_over_claims",
    "minimum_detectable_effect",
    "fluency_check",
    "fluency_summary",
    "paired_power",
    "prompt_effect",
    "rejudge",
    "tost_paired",
    "bootstrap_ci",
    "holm",
    "paired_cohens_d",
    "paired_effect",
    "percent_change",
]
