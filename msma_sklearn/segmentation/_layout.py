"""Reading a flat array of pooled states as layers: the width check for ``layers=int``."""

from __future__ import annotations

import numpy as np

__all__ = ["check_layer_width"]


def check_layer_width(X: np.ndarray, n_layers: int, *, max_rows: int = 512) -> None:
    """Refuse ``layers=n_layers`` when the columns are plainly blocks of another width.

    The residual stream carries each unit from one hidden state to the next, so unit
    ``u`` of layer ``l`` correlates with unit ``u`` of layer ``l + 1``: column ``i``
    with column ``i + width`` for the true width. When the median of those
    correlations is high (> 0.5) at another width that divides the columns and at
    most half as high at the width ``n_layers`` implies, the blocks are misread.
    """
    n, d = X.shape
    width = d // n_layers
    rows = X[:max_rows]
    Z = rows - rows.mean(axis=0)
    norms = np.linalg.norm(Z, axis=0)
    norms[norms == 0] = np.inf

    def lag_correlation(w: int) -> float:
        if w >= d:
            return 0.0
        c = np.einsum("ij,ij->j", Z[:, :-w], Z[:, w:]) / (norms[:-w] * norms[w:])
        return float(np.median(c))

    given = lag_correlation(width)
    candidates = [w for w in range(2, d // 2 + 1) if d % w == 0 and w != width]
    if not candidates:
        return
    scores = {w: lag_correlation(w) for w in candidates}
    best = max(scores, key=scores.get)
    if scores[best] > 0.5 and given < 0.5 * scores[best]:
        raise ValueError(
            f"layers={n_layers} cuts X's {d} columns into blocks of {width}, but the columns "
            f"look like blocks of {best} (unit i of one block follows unit i of the next: "
            f"median correlation {scores[best]:.2f} at a lag of {best} columns, "
            f"{given:.2f} at {width}). Pass layers={d // best} (the number of hidden states), "
            "or the extractor's DataFrame (set_output(transform='pandas'))."
        )
