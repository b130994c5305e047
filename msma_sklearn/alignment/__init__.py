"""Cross-scale alignment (``ManifoldAligner``; see issue #4, not yet built)."""

__all__: list[str] = []
