"""Layers -> semantic scales."""

from ._dp import optimal_segments, similarity_costs, sse_costs
from ._presets import PRESETS, preset_scale_layers
from ._segmenter import ScaleSegmenter

__all__ = [
    "PRESETS",
    "ScaleSegmenter",
    "optimal_segments",
    "preset_scale_layers",
    "similarity_costs",
    "sse_costs",
]
