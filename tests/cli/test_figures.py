"""The report's figures are legible: no text drawn over another panel (issue #16, item 4)."""

import itertools

import matplotlib

matplotlib.use("Agg")

from msma_sklearn.cli._stages import lambda_heatmap_figure  # noqa: E402


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
    fig = lambda_heatmap_figure(search, "smollm2-135m")
    assert len([ax for ax in fig.axes if ax.images]) == 3
    assert _overlaps(fig) == []
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.images]
    assert ylabels == ["λ_info", "", ""]  # shared: labelled once
