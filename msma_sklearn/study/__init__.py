"""The study as library code: each stage a function returning a typed result.

The alignment study (issue #15): :func:`run_alignment_study` fits MSMA's ablation
rows and the baselines on repeated splits (scales refitted on training texts) and
judges the original's alignment claims on held-out paired r².

The intervention study (issue #13): :func:`run_intervention_study`
calibrates every scale x operator of a causal LM to matched next-token KLs,
generates with sampled decoding under shared seeds, guards fluency and judges
the original's claims with the prompt as the unit.
"""

from ._alignment import (
    ALIGNMENT_CLAIMS,
    AlignmentClaim,
    AlignmentClaimSpec,
    AlignmentStudy,
    detectable_advantage,
    judge_alignment_claims,
    lambda_search,
    run_alignment_study,
)
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
    "ALIGNMENT_CLAIMS",
    "AlignmentClaim",
    "AlignmentClaimSpec",
    "AlignmentStudy",
    "detectable_advantage",
    "judge_alignment_claims",
    "lambda_search",
    "run_alignment_study",
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
