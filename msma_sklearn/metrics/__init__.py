"""Alignment and text metrics (see issues #4 and #5, not yet built)."""

__all__: list[str] = []
