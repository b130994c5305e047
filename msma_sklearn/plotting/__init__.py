"""Figures (matplotlib is imported only when a plot is drawn)."""

from ._segmentation import plot_boundary_distributions, plot_scale_count_curves
from ._similarity import plot_layer_similarity, save_figure

__all__ = [
    "plot_boundary_distributions",
    "plot_layer_similarity",
    "plot_scale_count_curves",
    "save_figure",
]
