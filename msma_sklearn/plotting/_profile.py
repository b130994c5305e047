"""The phase card: every layer-profile signal against depth, scales shaded, boundaries
of each segmentation marked."""

from __future__ import annotations

import textwrap

import numpy as np

from ._similarity import _pyplot

__all__ = ["plot_phase_card"]


def plot_phase_card(profile, *, scale_layers=None, boundaries=None, title=None):
    """One panel per signal of a :class:`~msma_sklearn.profile.LayerProfile`.

    Level signals are drawn at each hidden state, step signals between the
    two states they connect; each with its 95% interval over texts. The
    scales of ``scale_layers`` are shaded, and each method's boundaries in
    ``boundaries`` are drawn as vertical lines where its scales start.

    Parameters
    ----------
    profile : LayerProfile
        The profile.
    scale_layers : dict, default=None
        Scale name -> hidden states (e.g. a segmenter's ``scale_layers_``).
    boundaries : dict, default=None
        Method name -> start states of the scales after the first.
    title : str, default=None
        The figure's title.

    Returns
    -------
    fig : matplotlib Figure

    Examples
    --------
    >>> from msma_sklearn.profile import LayerProfile
    >>> v = {"largest_unit_share": np.linspace(0.1, 0.5, 6)}
    >>> p = LayerProfile("m", 6, v, {"largest_unit_share": np.zeros((6, 2))}, 10, 4)
    >>> fig = plot_phase_card(p, scale_layers={"a": [0, 1, 2], "b": [3, 4, 5]},
    ...                       boundaries={"cka": [3]})
    >>> len(fig.axes)
    1
    """
    from ..profile import SIGNALS

    plt = _pyplot()
    names = list(profile.values)
    if not names:
        raise ValueError("The profile has no signal to draw.")
    fig, axes = plt.subplots(
        len(names), 1, figsize=(7.5, 1.7 * len(names) + 0.8), sharex=True, squeeze=False
    )
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[:, 0], names, strict=True):
        v = np.asarray(profile.values[name], dtype=float)
        x = np.arange(v.size) + (0.5 if SIGNALS[name][0] == "step" else 0.0)
        ax.plot(x, v, marker="o", ms=3, color="black", lw=1)
        ci = profile.intervals.get(name)
        if ci is not None and np.size(ci):
            ci = np.asarray(ci, dtype=float)
            ax.fill_between(x, ci[:, 0], ci[:, 1], color="grey", alpha=0.3, lw=0)
        for i, (_, layers) in enumerate((scale_layers or {}).items()):
            ax.axvspan(min(layers) - 0.5, max(layers) + 0.5, color=colours[i % 10], alpha=0.08)
        for i, (method, starts) in enumerate((boundaries or {}).items()):
            for b in starts:
                ax.axvline(
                    b - 0.5,
                    color=colours[(i + 3) % 10],
                    ls="--",
                    lw=1,
                    label=method if b == starts[0] else None,
                )
        words = SIGNALS[name][1].replace("`offset`", str(profile.offset))
        ax.set_ylabel(textwrap.fill(words, 24), fontsize=7)
    if boundaries:
        axes[0, 0].legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("hidden state")
    fig.suptitle(title or f"{profile.model}: layer profile ({profile.n_texts} texts)")
    fig.tight_layout()
    return fig
