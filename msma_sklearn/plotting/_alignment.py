"""Figures of an alignment study (:class:`msma_sklearn.study.AlignmentStudy`)."""

from __future__ import annotations

import numpy as np

from ._similarity import _pyplot

__all__ = ["plot_alignment_ablation", "plot_lambda_search"]


def plot_alignment_ablation(study, *, metrics=("r2", "retrieval", "cka", "kl_sum")):
    """Every method's held-out metrics: mean ± sd over the repeated splits.

    One panel per metric of :data:`msma_sklearn.alignment.PAIRED_METRICS`;
    baselines in grey, MSMA rows in blue; the original-form KL on a log axis.

    Parameters
    ----------
    study : AlignmentStudy
        From :func:`~msma_sklearn.study.run_alignment_study`.
    metrics : sequence of str, default=("r2", "retrieval", "cka", "kl_sum")
        Keys of ``PAIRED_METRICS``, one panel each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..alignment import PAIRED_METRICS

    plt = _pyplot()
    table = study.summary_frame()
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.3 * len(metrics), 0.3 * len(table) + 1.8),
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    y = np.arange(len(table))
    kinds = table.index.get_level_values("kind")
    colours = ["tab:blue" if k == "msma" else "tab:grey" for k in kinds]
    for ax, metric in zip(axes[0], metrics, strict=True):
        mean = table[("mean", metric)].to_numpy(dtype=float)
        sd = np.nan_to_num(table[("std", metric)].to_numpy(dtype=float))
        ax.barh(y, mean, xerr=sd, color=colours, alpha=0.85, capsize=2)
        label, form, higher = PAIRED_METRICS[metric]
        ax.set_title(f"{metric} {'↑' if higher else '↓'} ({form})", fontsize=9)
        if metric == "kl_sum" and (mean > 0).all():
            ax.set_xscale("log")  # the unmapped baseline is orders of magnitude above the rest
    axes[0][0].set_yticks(y, list(table.index.get_level_values("method")), fontsize=8)
    axes[0][0].invert_yaxis()
    fig.suptitle(
        f"{study.model}: held-out alignment, mean ± sd over {study.n_splits} splits "
        "(grey: baselines)",
        fontsize=10,
    )
    return fig


def plot_lambda_search(search: list[dict], name: str):
    """Mean held-out r² over the λ_geo x λ_info grid, one panel per λ_curv.

    ``search``: rows with ``lambda_geo, lambda_info, lambda_curv, mean_r2``
    (:attr:`AlignmentStudy.grid_search`).

    Parameters
    ----------
    search : list of dict
        The grid's rows.
    name : str
        The model, for the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    geo = sorted({r["lambda_geo"] for r in search})
    info = sorted({r["lambda_info"] for r in search})
    curv = sorted({r["lambda_curv"] for r in search})
    fig, axes = plt.subplots(
        1,
        len(curv),
        figsize=(3.2 * len(curv) + 1.6, 3.6),
        squeeze=False,
        sharey=True,
        layout="constrained",  # labels, panels and colour bar never overlap
    )
    lookup = {(r["lambda_geo"], r["lambda_info"], r["lambda_curv"]): r["mean_r2"] for r in search}
    values = np.array([[[lookup[(g, i, c)] for g in geo] for i in info] for c in curv])
    lo, hi = float(values.min()), float(values.max())
    for ax, c, grid in zip(axes[0], curv, values, strict=True):
        im = ax.imshow(grid, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1e-9)
        for (a, b), v in np.ndenumerate(grid):
            light = hi > lo and (v - lo) / (hi - lo) > 0.6  # viridis is light at the top
            colour = "black" if light else "white"
            ax.text(b, a, f"{v:.3f}", ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(geo)), [str(g) for g in geo])
        ax.set_yticks(range(len(info)), [str(i) for i in info])
        ax.set_xlabel("λ_geo")
        ax.set_title(f"λ_curv = {c}", fontsize=9)
    axes[0][0].set_ylabel("λ_info")
    fig.colorbar(im, ax=list(axes[0]), label="mean held-out r²")
    fig.suptitle(f"{name}: λ grid search", fontsize=10)
    return fig
