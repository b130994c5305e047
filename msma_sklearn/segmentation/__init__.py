"""Layers -> semantic scales (``ScaleSegmenter``; see issue #3, not yet built)."""

__all__: list[str] = []
