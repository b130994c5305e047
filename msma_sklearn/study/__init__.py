"""The study as library code: each stage a function returning a typed result.

The extraction stage: :func:`run_extraction` gives one model's hidden states and
its per-layer probes (an :class:`ExtractionResult`).

The segmentation stage: :func:`run_segmentation` segments one model's layers with
every method of the registry, beside nulls (a :class:`SegmentationResult`).

The alignment study: :func:`run_alignment_study` fits MSMA's ablation
rows and the baselines on repeated splits (scales refitted on training texts) and
judges the original's alignment claims on held-out paired r².

The intervention study: :func:`run_intervention_study`
calibrates every scale x operator of a causal LM to matched next-token KLs,
generates with sampled decoding under shared seeds, guards fluency and judges
the original's claims with the prompt as the unit.
"""

from ._alignment import judge_alignment_claims, lambda_search, run_alignment_study
from ._alignment_results import (
    ALIGNMENT_CLAIMS,
    AlignmentClaim,
    AlignmentClaimSpec,
    AlignmentStudy,
)
from ._extraction import ExtractionResult, layers_above_embedding, run_extraction
from ._intervention_design import (
    ABSOLUTE_METRICS,
    INTERVENTION_CLAIMS,
    TEXT_METRICS,
    InterventionDesign,
)
from ._intervention_results import (
    ClaimResult,
    Condition,
    ConditionResult,
    InterventionStudy,
)
from ._interventions import centred_window, prompt_sets, run_intervention_study
from ._profile import profile_boundaries
from ._segmentation import SegmentationResult, run_segmentation

__all__ = [
    "ExtractionResult",
    "layers_above_embedding",
    "run_extraction",
    "SegmentationResult",
    "profile_boundaries",
    "run_segmentation",
    "ALIGNMENT_CLAIMS",
    "AlignmentClaim",
    "AlignmentClaimSpec",
    "AlignmentStudy",
    "judge_alignment_claims",
    "lambda_search",
    "run_alignment_study",
    "ABSOLUTE_METRICS",
    "INTERVENTION_CLAIMS",
    "TEXT_METRICS",
    "ClaimResult",
    "Condition",
    "ConditionResult",
    "InterventionDesign",
    "InterventionStudy",
    "centred_window",
    "prompt_sets",
    "run_intervention_study",
]
