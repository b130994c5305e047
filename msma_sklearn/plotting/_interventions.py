"""Figures of an intervention study (:class:`msma_sklearn.study.InterventionStudy`)."""

from __future__ import annotations

import numpy as np

from ._similarity import _pyplot

__all__ = ["plot_dose_response", "plot_intervention_effects"]


def plot_dose_response(study, *, metrics=None):
    """Dose-response of one model: calibration curves and the claims' metrics by dose.

    Top row, one panel per operator: the mean next-token KL (log scale) at
    every strength the calibration measured, one line per scale, the target
    KLs as dotted lines. Bottom row, one panel per metric (default: the
    claims' metrics): percent change against the baseline (95% CI over
    prompts) at each target KL, for the operators generated at every dose.

    Parameters
    ----------
    study : InterventionStudy
        From :func:`~msma_sklearn.study.run_intervention_study`.
    metrics : sequence of str, default=None
        The bottom row's metrics (None: the claims').

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    cal = study.calibration_frame()
    kinds = list(dict.fromkeys(cal["kind"]))
    effects = study.effects_frame()
    swept = effects[effects["kind"].isin(study.design.dose_response_kinds)]
    if metrics is None:
        metrics = list(dict.fromkeys(c.metric for c in study.claims)) or ["ttr"]
    n_cols = max(len(kinds), len(metrics))
    fig, axes = plt.subplots(2, n_cols, figsize=(3.3 * n_cols, 6.6), squeeze=False)
    scales = list(study.scale_layers)
    colors = {s: f"C{i}" for i, s in enumerate(scales)}
    for ax, kind in zip(axes[0], kinds, strict=False):
        sub = cal[cal["kind"] == kind]
        for scale in scales:
            rows = sub[(sub["scale"] == scale) & (sub["mean_kl"] > 0)]
            ax.plot(rows["strength"], rows["mean_kl"], "o-", ms=3, color=colors[scale], label=scale)
        for target in study.design.target_kl:
            ax.axhline(target, color="grey", lw=0.7, ls=":")
        ax.set_yscale("log")  # the target lines are positive, so the axis has data
        ax.set_xlabel(sub["parameter"].iloc[0] if len(sub) else kind, fontsize=9)
        ax.set_title(kind, fontsize=10)
    axes[0][0].set_ylabel("mean next-token KL (nats)", fontsize=9)
    axes[0][0].legend(fontsize=8)
    for ax, metric in zip(axes[1], metrics, strict=False):
        sub = swept[swept["metric"] == metric]
        if not np.isfinite(sub["percent_change"].to_numpy(dtype=float)).any():
            ax.text(
                0.5,
                0.5,
                "no effect reported:\nfewer than 20 defined\nprompt pairs",
                ha="center",
                va="center",
                transform=ax.transAxes,
                fontsize=9,
            )
            ax.set_title(metric, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        for i, scale in enumerate(scales):
            rows = sub[sub["scale"] == scale].sort_values("target_kl")
            x = rows["target_kl"].to_numpy(dtype=float) * (1 + 0.04 * (i - 1))  # dodge
            y = rows["percent_change"].to_numpy(dtype=float)  # NaN: < 20 defined pairs
            err = np.abs(
                np.vstack(
                    [y - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(float) - y]
                )
            )
            ax.errorbar(x, y, yerr=err, fmt="o-", ms=3, capsize=2, color=colors[scale])
        ax.axhline(0, color="grey", lw=0.7)
        ax.set_xscale("log")
        ax.set_xlabel("calibrated next-token KL (nats)", fontsize=9)
        ax.set_title(metric, fontsize=10)
    axes[1][0].set_ylabel("% change vs baseline (95% CI)", fontsize=9)
    for row, used in ((0, len(kinds)), (1, len(metrics))):
        for ax in axes[row][used:]:
            ax.set_visible(False)
    fig.suptitle(f"{study.model}: dose-response", fontsize=11)
    fig.tight_layout()
    return fig


def plot_intervention_effects(study, *, target_kl=None):
    """Forest plot of every scale x operator at one calibrated dose (default: the
    primary), one panel per metric: percent change with its 95% CI over prompts.
    Conditions flagged by the fluency guard are drawn hollow.

    Parameters
    ----------
    study : InterventionStudy
        From :func:`~msma_sklearn.study.run_intervention_study`.
    target_kl : float, default=None
        The dose drawn, in nats of next-token KL (None: the primary).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    target = study.design.primary_kl if target_kl is None else target_kl
    frame = study.effects_frame()
    frame = frame[frame["target_kl"] == target]
    metrics = list(dict.fromkeys(frame["metric"]))
    labels = list(dict.fromkeys(zip(frame["scale"], frame["kind"], strict=True)))
    n_cols = min(4, len(metrics))
    n_rows = -(-len(metrics) // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(3.4 * n_cols, 0.32 * len(labels) * n_rows + 1.6),
        sharey=True,
        squeeze=False,
    )
    y_of = {label: i for i, label in enumerate(labels)}
    for ax, metric in zip(axes.ravel(), metrics, strict=False):
        sub = frame[frame["metric"] == metric]
        for flagged, face in ((False, "C0"), (True, "none")):
            rows = sub[sub["fluency_flagged"] == flagged]
            d = rows["percent_change"].to_numpy(dtype=float)
            err = np.abs(
                np.vstack(
                    [d - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(float) - d]
                )
            )
            y = [y_of[(s, k)] for s, k in zip(rows["scale"], rows["kind"], strict=True)]
            ax.errorbar(d, y, xerr=err, fmt="o", ms=5, capsize=2, color="C0", markerfacecolor=face)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("% change (95% CI)", fontsize=9)
        ax.set_yticks(range(len(labels)), [f"{s} · {k}" for s, k in labels], fontsize=9)
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    axes[0][0].invert_yaxis()
    fig.suptitle(
        f"{study.model}: effects at next-token KL {target:g} nats "
        "(hollow: fluency guard flagged the condition)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
