"""Layer-to-scale presets from the original MSMA project, mapped to any depth.

Ranges are inclusive hidden-state indices (0 = embeddings) for the reference
depth ``L_ref`` (the number of blocks). Sources: the original README's
"Semantic Layer Distribution" table and the original code's hard-coded lists
(see the team's reference notes); they disagree with each other.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["PRESETS", "preset_scale_layers"]

# family -> (L_ref, [(first, last) per scale])
PRESETS: dict[str, dict[str, tuple[int, list[tuple[int, int]]]]] = {
    "readme": {
        "gpt2": (12, [(0, 2), (3, 8), (9, 12)]),
        "bert": (12, [(0, 4), (5, 8), (9, 12)]),
        "roberta": (12, [(0, 4), (5, 8), (9, 12)]),
        "t5": (6, [(0, 2), (3, 4), (5, 6)]),
    },
    "msma_code": {
        "bert": (12, [(0, 3), (4, 7), (8, 10)]),  # 11 and 12 unused
        "gpt2": (12, [(0, 3), (4, 7), (8, 11)]),  # 12 unused
    },
}


def _half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def preset_scale_layers(preset: str, family: str | None, n_blocks: int, n_scales: int = 3):
    """Hidden-state indices of each scale for a model with ``n_blocks`` blocks.

    Parameters
    ----------
    preset : {"readme", "msma_code", "uniform"}
    family : {"gpt2", "bert", "roberta", "t5"} or None
        Architecture family whose table to use (ignored by ``"uniform"``).
    n_blocks : int
        L; hidden states are ``0..L``.
    n_scales : int, default=3
        Must be 3 for the tables; any value for ``"uniform"``.

    Returns
    -------
    list of list of int
        One list per scale, in depth order.

    Notes
    -----
    For other depths each scale's first index ``s`` maps to
    ``round(s * L / L_ref)`` (halves rounded up), and so does the last index
    the table covers; every scale runs up to the next scale's start, so the
    mapped scales stay contiguous and non-empty.

    Examples
    --------
    >>> preset_scale_layers("readme", "gpt2", 12)
    [[0, 1, 2], [3, 4, 5, 6, 7, 8], [9, 10, 11, 12]]
    >>> preset_scale_layers("readme", "bert", 6)
    [[0, 1, 2], [3, 4], [5, 6]]
    """
    if preset == "uniform":
        return [part.tolist() for part in np.array_split(np.arange(n_blocks + 1), n_scales)]
    if preset not in PRESETS:
        raise ValueError(
            f"Unknown preset {preset!r}; choose one of {sorted([*PRESETS, 'uniform'])}."
        )
    table = PRESETS[preset]
    if family not in table:
        raise ValueError(
            f"preset={preset!r} needs family= one of {sorted(table)}, got {family!r}"
            + (
                " (the original code had lists only for BERT and GPT-2)."
                if preset == "msma_code"
                else "."
            )
        )
    if n_scales != 3:
        raise ValueError(f"preset={preset!r} defines 3 scales, but n_scales={n_scales}.")
    ref, ranges = table[family]
    ratio = n_blocks / ref
    starts = [_half_up(first * ratio) for first, _ in ranges]
    for i in range(1, len(starts)):  # keep every scale non-empty
        starts[i] = max(starts[i], starts[i - 1] + 1)
    end = _half_up(ranges[-1][1] * ratio)  # last covered index (the code left some unused)
    if starts[-1] > end or end > n_blocks:
        raise ValueError(f"A model with {n_blocks} blocks is too shallow for preset {preset!r}.")
    bounds = [*starts[1:], end + 1]
    return [list(range(lo, hi)) for lo, hi in zip(starts, bounds, strict=True)]
