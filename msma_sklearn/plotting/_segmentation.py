"""Figures for choosing and checking a segmentation: the k curve, boundary distributions."""

from __future__ import annotations

import numpy as np

from ._similarity import _pyplot

__all__ = ["plot_boundary_distributions", "plot_scale_count_curves", "plot_scale_projection"]


def plot_scale_count_curves(curves: dict, *, ax=None, title=None):
    """Held-out explained similarity against k, for each curve and its no-block null.

    Parameters
    ----------
    curves : dict of str -> ScaleCountCurve
        E.g. ``{"trained": ..., "random weights": ...}``.
    ax : matplotlib Axes, default=None
        Drawn into a new figure if None.
    title : str, default=None
        The axes' title.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> from msma_sklearn.segmentation import scale_count_curve
    >>> rng = np.random.default_rng(0)
    >>> layers = [rng.normal(size=(40, 3)) for _ in range(5)]
    >>> ax = plot_scale_count_curves({"noise": scale_count_curve(layers, k_max=3, n_splits=2)})
    >>> len(ax.lines)
    2
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 4.2))
    for i, (label, curve) in enumerate(curves.items()):
        color = plt.cm.tab10(i % 10)
        ax.plot(
            curve.k, curve.explained, "o-", color=color, label=f"{label} (best k={curve.best_k})"
        )
        ax.plot(curve.k, curve.null, "--", color=color, alpha=0.7, label=f"{label}: no-block null")
    ax.set_xlabel("number of scales k")
    ax.set_ylabel("held-out explained similarity")
    ax.set_xticks(list(next(iter(curves.values())).k))
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax


def plot_boundary_distributions(rows: list[dict], *, n_layers: int, ax=None, title=None):
    """Each configuration's boundaries over refits on subsamples of the texts.

    Parameters
    ----------
    rows : list of dict
        One per configuration: ``"label"`` (str), ``"boundaries"`` (the fit on
        all texts) and ``"bootstrap_boundaries"`` (list of refits, each a list
        of boundaries).
    n_layers : int
        Hidden states 0..n_layers-1 (x axis).
    ax : matplotlib Axes, default=None
        Drawn into a new figure if None.
    title : str, default=None
        The axes' title.

    Returns
    -------
    ax : matplotlib Axes

    Examples
    --------
    >>> rows = [{"label": "a", "boundaries": [2, 4], "bootstrap_boundaries": [[2, 4], [2, 5]]}]
    >>> ax = plot_boundary_distributions(rows, n_layers=7)
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['a']
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.4))
    rng = np.random.default_rng(0)  # vertical jitter only, for legibility
    for i, row in enumerate(rows):
        draws = np.asarray(row.get("bootstrap_boundaries") or [], dtype=float)
        for b in range(len(row["boundaries"])):
            color = plt.cm.tab10(b % 10)
            if draws.size:
                ax.scatter(
                    draws[:, b],
                    i + rng.uniform(-0.18, 0.18, size=len(draws)),
                    s=10,
                    alpha=0.35,
                    color=color,
                )
            ax.scatter([row["boundaries"][b]], [i], marker="|", s=260, color=color)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["label"] for r in rows], fontsize=8)
    ax.set_xlim(-0.5, n_layers - 0.5)
    ax.set_xlabel("hidden state where a scale starts (bar: all texts; dots: refits)")
    ax.invert_yaxis()
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax


def plot_scale_projection(segmenter, states, labels=None, *, title=None):
    """Each scale's texts in 2-D: PCA of its standardised representation (the mean of its
    layers), coloured by that scale's label where ``labels`` has one.

    Parameters
    ----------
    segmenter : ScaleSegmenter
        Fitted, with a per-scale ``aggregate`` (one vector per scale).
    states : array or DataFrame
        What it segments (``HiddenStateExtractor`` output).
    labels : dict of str -> array, default=None
        Scale name -> one label per text.
    title : str, default=None
        Prefixed to the figure's title (e.g. the model).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from sklearn.decomposition import PCA

    plt = _pyplot()
    labels = labels or {}
    per_scale = np.asarray(segmenter.set_output(transform="default").transform(states))
    owner = np.array([n.split("__")[0] for n in segmenter.get_feature_names_out()])
    scales = list(segmenter.scale_names_)
    fig, axes = plt.subplots(1, len(scales), figsize=(4.2 * len(scales), 4.0))
    for ax, scale in zip(np.atleast_1d(axes), scales, strict=True):
        block = per_scale[:, owner == scale]
        xy = PCA(2, random_state=0).fit_transform((block - block.mean(0)) / (block.std(0) + 1e-12))
        y = labels.get(scale)
        if y is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=8, color="tab:blue")
        else:
            y = np.asarray(y)
            for k, value in enumerate(sorted(set(y.tolist()))):
                sel = y == value
                ax.scatter(
                    xy[sel, 0], xy[sel, 1], s=8, label=str(value), color=plt.cm.tab10(k % 10)
                )
            ax.legend(fontsize=6, markerscale=1.5, loc="best")
        layers = segmenter.scale_layers_[scale]
        span = f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])
        ax.set_title(f"{scale} ({span})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    head = f"{title}: " if title else ""
    fig.suptitle(f"{head}each scale's texts, PCA of standardised states", fontsize=10)
    return fig
