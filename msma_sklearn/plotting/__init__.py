"""Figures (matplotlib, imported lazily; later issues add them)."""

__all__: list[str] = []
