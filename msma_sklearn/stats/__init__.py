"""Statistics shared by the studies: paired effects and their intervals, tests over
repeated random splits, power and sensitivity, multiple-comparison adjustments.

Every feature package takes its statistics from here, so a correction is made once.
"""

from ._judge import (
    ClaimTest,
    Judgement,
    claim_test,
    decide,
    judge_claims,
    paired_claim_test,
    resampled_claim_test,
)
from ._multiple import benjamini_hochberg, holm
from ._paired import bootstrap_ci, paired_cohens_d, paired_effect, percent_change
from ._tests import (
    corrected_resampled_ttest,
    detectable_advantage,
    minimum_detectable_effect,
    paired_power,
    tost_paired,
)

__all__ = [
    "ClaimTest",
    "Judgement",
    "benjamini_hochberg",
    "bootstrap_ci",
    "claim_test",
    "corrected_resampled_ttest",
    "decide",
    "detectable_advantage",
    "holm",
    "judge_claims",
    "minimum_detectable_effect",
    "paired_claim_test",
    "paired_cohens_d",
    "paired_effect",
    "paired_power",
    "percent_change",
    "resampled_claim_test",
    "tost_paired",
]
