"""Figures (matplotlib is imported only when a plot is drawn)."""

from ._alignment import plot_alignment_ablation, plot_lambda_search
from ._interventions import plot_dose_response, plot_intervention_effects
from ._profile import plot_phase_card
from ._segmentation import (
    plot_boundary_distributions,
    plot_scale_count_curves,
    plot_scale_projection,
)
from ._similarity import plot_layer_similarity, save_figure

__all__ = [
    "plot_alignment_ablation",
    "plot_boundary_distributions",
    "plot_dose_response",
    "plot_intervention_effects",
    "plot_lambda_search",
    "plot_phase_card",
    "plot_layer_similarity",
    "plot_scale_count_curves",
    "plot_scale_projection",
    "save_figure",
]
