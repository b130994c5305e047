"""Small formatting helpers shared by the estimators and the report."""

from __future__ import annotations

__all__ = ["layer_ranges"]


def layer_ranges(indices) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``.

    Parameters
    ----------
    indices : iterable of int
        Layer indices, increasing.

    Returns
    -------
    str
        Runs of consecutive indices as ``first-last``, comma-separated.

    Examples
    --------
    >>> layer_ranges([0, 1, 2, 5])
    '0-2, 5'
    """
    parts, start = [], None
    indices = list(indices)
    for i, j in enumerate(indices):
        if start is None:
            start = j
        if i + 1 == len(indices) or indices[i + 1] != j + 1:
            parts.append(f"{start}-{j}" if j != start else f"{j}")
            start = None
    return ", ".join(parts)
