"""The report's figures are legible: no text drawn over another panel (issue #16, item 4)."""

import itertools

import matplotlib

matplotlib.use("Agg")

from msma_sklearn.plotting import plot_lambda_search  # noqa: E402


def _overlaps(fig):
    """Pairs of axes whose drawn extent (ticks, labels, title) crosses another's panel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.get_visible()]
    bad = []
    for a, b in itertools.permutations(axes, 2):
        tight = a.get_tightbbox(renderer)
        panel = b.get_window_extent(renderer)
        if tight.overlaps(panel) and not a.get_window_extent(renderer).overlaps(panel):
            bad.append((a.get_title() or a.get_label(), b.get_title() or b.get_label()))
    return bad


def test_lambda_heatmap_panels_and_labels_do_not_overlap():
    search = [
        {"lambda_geo": g, "lambda_info": i, "lambda_curv": c, "mean_r2": 0.1 * g + i + c}
        for g in (0.1, 1.0, 10.0)
        for i in (0.0, 0.01, 0.1)
        for c in (0.0, 0.01, 0.1)
    ]
    fig = plot_lambda_search(search, "smollm2-135m")
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert _overlaps(fig) == []
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.images]
    assert ylabels == ["λ_info", "", ""]  # shared: labelled once


def test_alignment_ablation_figure_labels_every_row_without_overlap():
    import numpy as np
    import pandas as pd

    from msma_sklearn.plotting import plot_alignment_ablation
    from msma_sklearn.study import AlignmentStudy

    rng = np.random.default_rng(0)
    rows = [
        (m, k, s, "global->intermediate", metric, rng.uniform(0.1, 1.0))
        for m, k in [("no map", "baseline"), ("ridge", "baseline"), ("Full MSMA", "msma")]
        for s in range(4)
        for metric in ("r2", "retrieval", "cka", "kl_sum")
    ]
    scores = pd.DataFrame(rows, columns=["method", "kind", "split", "pair", "metric", "value"])
    study = AlignmentStudy("m", scores, pd.DataFrame(), [], 4, 80, 20, 8, [])
    fig = plot_alignment_ablation(study)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["no map", "ridge", "Full MSMA"]
    assert _overlaps(fig) == []
