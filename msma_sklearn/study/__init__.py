"""The study as library code: each stage a function returning a typed result.

So far the intervention study (issue #13): :func:`run_intervention_study`
calibrates every scale x operator of a causal LM to matched next-token KLs,
generates with sampled decoding under shared seeds, guards fluency and judges
the original's claims with the prompt as the unit.
"""

from ._interventions import (
    INTERVENTION_CLAIMS,
    TEXT_METRICS,
    UPPER,
    ClaimResult,
    Condition,
    ConditionResult,
    InterventionDesign,
    InterventionStudy,
    centred_window,
    prompt_sets,
    run_intervention_study,
)

__all__ = [
    "INTERVENTION_CLAIMS",
    "TEXT_METRICS",
    "UPPER",
    "ClaimResult",
    "Condition",
    "ConditionResult",
    "InterventionDesign",
    "InterventionStudy",
    "centred_window",
    "prompt_sets",
    "run_intervention_study",
]
