"""Heatmap of a fitted ScaleSegmenter's layer similarity, with its boundaries."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_layer_similarity", "save_figure"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("Plotting needs matplotlib: pip install 'msma_sklearn[plot]'") from exc
    return plt


def plot_layer_similarity(segmenter, *, ax=None, title=None, compare=None):
    """Draw ``segmenter.layer_similarity_`` with its scale boundaries.

    Parameters
    ----------
    segmenter : fitted ScaleSegmenter
        Its ``layer_similarity_`` and boundaries are drawn.
    ax : matplotlib Axes, default=None
        Drawn into a new figure if None.
    title : str, default=None
        The axes' title.
    compare : dict of str -> list of int, default=None
        Other boundaries to draw dashed (e.g. ``{"README": [3, 9]}``).

    Returns
    -------
    ax : matplotlib Axes
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.4))
    S = segmenter.layer_similarity_
    used = [j for j in segmenter.layers_ if segmenter.include_embeddings or j != 0]
    image = ax.imshow(S, cmap="viridis", vmin=min(0.0, float(S.min())), vmax=1.0)
    ax.figure.colorbar(
        image,
        ax=ax,
        fraction=0.046,
        pad=0.04,
        label="debiased linear CKA" if segmenter.debiased else "linear CKA",
    )
    step = -(-len(used) // 16)  # at most 16 tick labels
    ticks = list(range(0, len(used), step))
    ax.set_xticks(ticks, [str(used[t]) for t in ticks])
    ax.set_yticks(ticks, [str(used[t]) for t in ticks])
    ax.set_xlabel("hidden state (0 = embeddings)")
    ax.set_ylabel("hidden state")
    pos = {j: i for i, j in enumerate(used)}

    def draw(boundaries, style, color, label):
        for k, b in enumerate(boundaries):
            if b in pos:
                x = pos[b] - 0.5
                ax.axvline(x, ls=style, color=color, lw=1.6, label=label if k == 0 else None)
                ax.axhline(x, ls=style, color=color, lw=1.6)

    draw(segmenter.boundaries_, "-", "white", f"{segmenter.method} boundaries")
    colors = ["tab:red", "tab:orange", "tab:pink"]
    for i, (label, boundaries) in enumerate((compare or {}).items()):
        draw(boundaries, "--", colors[i % len(colors)], label)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    if title:
        ax.set_title(title)
    return ax


def save_figure(fig, path: str | Path, dpi: int = 120) -> None:
    """Save a figure as PNG atomically, then close it.

    Parameters
    ----------
    fig : matplotlib Figure
        Closed after saving.
    path : str or Path
        The PNG's path.
    dpi : int, default=120
        Resolution.
    """
    from ..utils._io import atomic_path

    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
