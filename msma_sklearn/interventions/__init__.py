"""Steering one scale's hidden states, and paired effect statistics.

``Intervener`` acts on causal LMs and T5 (either stack) during generation and
on encoder-only models' representations and masked-token predictions; the
``_effects`` functions give percent change, paired Cohen's d, bootstrap
intervals and Holm-corrected Wilcoxon tests.
"""

from ._effects import bootstrap_ci, holm, paired_cohens_d, paired_effect, percent_change
from ._intervener import REPRESENTATION_METRICS, Intervener

__all__ = [
    "REPRESENTATION_METRICS",
    "Intervener",
    "bootstrap_ci",
    "holm",
    "paired_cohens_d",
    "paired_effect",
    "percent_change",
]
