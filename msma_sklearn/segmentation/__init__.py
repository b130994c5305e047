"""Layers -> semantic scales."""

from ._dp import cut_costs, optimal_segments, similarity_costs, sse_costs
from ._drift import SmoothDrift, fit_smooth_drift
from ._presets import PRESETS, preset_scale_layers
from ._segmenter import ScaleSegmenter
from ._selection import (
    ScaleCountCurve,
    SplitComparison,
    boundary_distance,
    compare_to_random_splits,
    explained_similarity,
    random_contiguous_splits,
    scale_count_curve,
    segment_labels,
)

__all__ = [
    "PRESETS",
    "ScaleCountCurve",
    "ScaleSegmenter",
    "SmoothDrift",
    "SplitComparison",
    "boundary_distance",
    "compare_to_random_splits",
    "cut_costs",
    "explained_similarity",
    "fit_smooth_drift",
    "optimal_segments",
    "preset_scale_layers",
    "random_contiguous_splits",
    "scale_count_curve",
    "segment_labels",
    "similarity_costs",
    "sse_costs",
]
