"""Steering one scale during generation, and paired effect statistics.

Built so far (issue #5, in progress): ``Intervener`` for causal LMs and the
effect statistics. Text metrics, encoder-only / T5 support, the ``msma run``
stage and the applications are not built yet.
"""

from ._effects import bootstrap_ci, holm, paired_cohens_d, paired_effect, percent_change
from ._intervener import Intervener

__all__ = [
    "Intervener",
    "bootstrap_ci",
    "holm",
    "paired_cohens_d",
    "paired_effect",
    "percent_change",
]
