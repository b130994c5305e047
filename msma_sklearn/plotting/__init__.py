"""Figures (matplotlib is imported only when a plot is drawn)."""

from ._similarity import plot_layer_similarity, save_figure

__all__ = ["plot_layer_similarity", "save_figure"]
