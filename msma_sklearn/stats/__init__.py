"""Statistics shared by the studies: paired effects and their intervals, tests over
repeated random splits, power and sensitivity, multiple-comparison adjustments.

Every feature package takes its statistics from here, so a correction is made once.
"""

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
    "benjamini_hochberg",
    "bootstrap_ci",
    "corrected_resampled_ttest",
    "detectable_advantage",
    "holm",
    "minimum_detectable_effect",
    "paired_cohens_d",
    "paired_effect",
    "paired_power",
    "percent_change",
    "tost_paired",
]
