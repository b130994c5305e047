"""Steering one scale during generation (``Intervener``; see issue #5, not yet built)."""

__all__: list[str] = []
