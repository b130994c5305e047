"""The report's segmentation section: the scales of every model and method, their nulls."""

from __future__ import annotations

import numpy as np

from ._format import fmt_bounds, rounded, sig3

__all__ = ["profile_lines", "segmentation_section"]


# The original README's "Semantic Layer Distribution" table, verbatim.
README_TABLE = [
    "| GPT-2 (README) | 0-2 (25%) | 3-8 (50%) | 9-12 (25%) |",
    "| BERT (README) | 0-4 (42%) | 5-8 (29%) | 9-12 (29%) |",
    "| RoBERTa (README) | 0-4 (42%) | 5-8 (29%) | 9-12 (29%) |",
    "| T5 (README) | 0-2 (50%) | 3-4 (33%) | 5-6 (17%) |",
]


def segmentation_section(results, *, figures=None, quick: bool = False) -> str:
    """The segmentation section: every model's scales per method, the nulls, the figures.

    Parameters
    ----------
    results : dict of str -> SegmentationResult
        Per model, :func:`~msma_sklearn.study.run_segmentation`'s result; the
        refits, the MI's PCA width, the scale-count halvings and margin are read
        from it (its fitted segmenters and curves).
    figures : dict of str -> dict, default=None
        Per model, the figure files (``heatmap``, ``scale_count_figure``,
        ``phase_card``, ``robustness_figure``, ``projection``); a missing one is
        left out.
    quick : bool, default=False
        Whether the run was the quick profile (which leaves the robustness grid
        out, said in the prose).

    Returns
    -------
    str
        The section's Markdown.
    """
    figures = figures or {}
    first = next(iter(results.values()), None)
    cka = first.fitted.get("cka") if first is not None else None
    mi = first.fitted.get("mi") if first is not None else None
    n_boot = cka.n_bootstrap if cka is not None else 0
    fraction = cka.bootstrap_fraction if cka is not None else 0.8
    mi_dims = mi.n_components if mi is not None else 8
    lines = [
        "## Layer distribution (scale segmentation)",
        "",
        "Hidden-state indices per scale (0 = embedding output) with the share of the model's "
        "hidden states (embedding output counted as a layer: L + 1 in the denominator). "
        "Data-driven methods work on standardised states (every unit z-scored, so no single "
        "massive unit decides; `standardize=False` is the raw form) with at least "
        "`min_scale_size` hidden states per scale: "
        "`cka` = exact best contiguous split of the debiased-CKA matrix; "
        f"`mi` = cuts at the weakest adjacent-layer KSG mutual information (PCA to {mi_dims} dims); "
        "`attention_span` = best piecewise-constant fit of each block's mean attention distance. "
        "Presets: the original README's table and code lists, mapped proportionally to each "
        "model's depth (decoder-only models use the GPT-2 row, BERT-family encoders the BERT "
        f"row). Stability: {n_boot} refits on {fraction:.0%} subsamples of the texts; 'same "
        "boundary' is "
        "the share of refits that put each boundary at the same layer, 'refit ARI' the mean "
        "adjusted Rand index between refits and the fit on all texts, beside the same for "
        "random contiguous splits ('chance'). Agreement with the README preset: boundary "
        "distance in layers and ARI, beside what random contiguous splits give (their mean, "
        "and p = share of random splits agreeing at least as well).",
        "",
        "The original README's table, for reference (its percentages do not match its own ranges):",
        "",
        "| model | local | intermediate | global |",
        "|---|---|---|---|",
        *README_TABLE,
    ]
    for name, r in results.items():
        fig = figures.get(name, {})
        kind = (
            " (random weights: a test model, not a trained one)" if r.random_weights_model else ""
        )
        lines += [
            "",
            f"### {name}{kind}",
            "",
            "| model · method | local | intermediate | global | same boundary | refit ARI "
            "(chance) | vs README: distance (chance) | vs README: ARI (chance, p) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        vs = r.vs_readme or {}
        for label, seg in r.fitted.items():
            conf = getattr(seg, "boundary_confidence_", None)
            conf_s = ", ".join(f"{c:.2f}" for c in np.round(conf, 3)) if conf is not None else "–"
            st = getattr(seg, "bootstrap_stability_", None)
            st_s = f"{st['ari']:.2f} ({st['null_ari']:.2f})" if st else "–"
            c = vs.get(label)
            dist_s = f"{c['distance']:.1f} ({c['null_distance_mean']:.1f})" if c else "–"
            ari_s = f"{c['ari']:.2f} ({c['null_ari_mean']:.2f}, p={c['p_ari']:.2f})" if c else "–"
            row = seg.distribution_table(f"{name} · {label}")
            lines.append(f"{row} {conf_s} | {st_s} | {dist_s} | {ari_s} |")
        if fig.get("heatmap"):
            lines += ["", f"![{name} layer similarity]({fig['heatmap']})"]
        if vs and r.random_weights_model:
            lines += [
                "",
                f"No verdict against the README preset on {name}: a random-weight test model "
                "has no learned structure for the preset to describe.",
            ]
        elif vs and "cka" in vs:
            c = vs["cka"]
            if c["distance"] == 0:
                verdict = (
                    "The CKA segmentation puts the boundaries where the README preset does; "
                    f"{c['p_ari']:.0%} of the random contiguous splits the segmenter could "
                    "return agree as well"
                    + (
                        ", so chance rarely does this"
                        if c["p_ari"] < r.alpha
                        else ", so this agreement is what chance gives"
                    )
                )
            elif c["p_ari"] < r.alpha:
                verdict = (
                    f"The CKA segmentation is {c['distance']:.1f} layers from the README preset on "
                    f"average, closer than {1 - c['p_ari']:.0%} of random contiguous splits"
                )
            else:
                verdict = (
                    f"The CKA segmentation is {c['distance']:.1f} layers from the README preset on "
                    f"average; {c['p_ari']:.0%} of the random contiguous splits the segmenter "
                    "could return agree with the preset "
                    "at least as well (ARI), so this agreement is what chance gives"
                )
            lines += ["", f"{verdict} (on {name}, {r.n_states} hidden states)."]
        curves = r.curves
        first_curve = next(iter(curves.values()))
        rows = {label: c.as_rows() for label, c in curves.items()}
        k_max = len(first_curve.as_rows())
        lines += [
            "",
            "How many scales: boundaries fitted on one half of the texts and scored on the other "
            f"(held-out explained similarity, {first_curve.n_splits} random "
            "halvings), against "
            + (
                "a block-free null fitted to each half's matrix (the closest smooth drift: a "
                "speed of change with no interior maximum, similarity decreasing with the "
                "distance travelled, one factor per layer; `fit_smooth_drift`)"
                if first_curve.null_model == "drift"
                else "a no-block null (each half's matrix averaged along its diagonals)"
            )
            + f"; best k = smallest k within max(1 SE, {first_curve.tol:g}) of the largest gap "
            "over the null; k = 1 when no gap clears that margin. Trained and random-weight "
            "models go through the same curve.",
            "",
            "| weights | "
            + " | ".join(f"k={row['k']}" for row in first_curve.as_rows())
            + " | best k |",
            "|---|" + "---:|" * (k_max + 1),
        ]
        for label, curve in curves.items():
            cells = " | ".join(
                f"{row['explained']:.3f} (null {row['null']:.3f})" for row in rows[label]
            )
            lines.append(f"| {label} | {cells} | {curve.best_k} |")
        for label, curve in curves.items():
            if curve.best_k == 1:
                lines.append(
                    f"\n{label}: no k beats the block-free null; no scale structure found."
                )
            elif curve.best_k == k_max:
                lines.append(
                    f"\n{label}: the gain over the null still grows at k={k_max}; the data do "
                    f"not single out a number of scales in 1..{k_max}."
                )
            else:
                lines.append(f"\n{label}: the data support {curve.best_k} scales.")
        lines += [
            "",
            f"The study uses n_scales = {len(r.chosen.scale_layers_)} (as MSMA states) "
            "whatever this curve says.",
        ]
        if fig.get("scale_count_figure"):
            lines += ["", f"![{name} scale count]({fig['scale_count_figure']})"]
        lines += name_tests_lines(r.name_tests, name, r.used)
        lines += profile_lines(r, name, fig.get("phase_card"))
        null = r.random_weights
        if null:
            v = null["vs_trained"]
            lines += [
                "",
                f"Random-weight model of the same configuration (`random:{name}`), default "
                f"segmentation: boundaries at {fmt_bounds(null['boundaries'])} against "
                f"{fmt_bounds(r.fitted['cka'].boundaries_)} for the trained model "
                f"(distance {v['distance']:.1f} layers, ARI {v['ari']:.2f}; random contiguous "
                f"splits: {v['null_distance_mean']:.1f}, {v['null_ari_mean']:.2f}). Structure "
                "found on both is what the architecture gives without training.",
            ]
        grid = r.robustness
        if quick and not r.random_weights_model:
            lines += [
                "",
                "Robustness grid (pooling × standardisation × method): left out by the quick "
                "profile; a full run has it.",
            ]
        if grid:
            lines += [
                "",
                "Robustness: pooling × standardisation × method, boundaries on all texts and "
                f"their spread over {n_boot} refits:",
                "",
                "| pooling | features | method | boundaries | refit range per boundary | "
                "refit ARI (chance) |",
                "|---|---|---|---|---|---|",
            ]
            for g in grid:
                draws = np.asarray(g["bootstrap_boundaries"])
                rng_s = (
                    "; ".join(
                        f"{int(draws[:, b].min())}-{int(draws[:, b].max())}"
                        for b in range(draws.shape[1])
                    )
                    if draws.size
                    else "–"
                )
                st = g["stability"]
                st_s = f"{st['ari']:.2f} ({st['null_ari']:.2f})" if st else "–"
                feats = "standardised" if g["standardize"] else "raw"
                lines.append(
                    f"| {g['pooling']} | {feats} | {g['method']} | {fmt_bounds(g['boundaries'])} "
                    f"| {rng_s} | {st_s} |"
                )
            if fig.get("robustness_figure"):
                lines += ["", f"![{name} segmentation robustness]({fig['robustness_figure']})"]
        if fig.get("projection"):
            lines += [
                "",
                f"Scales used downstream: `{r.used}`. Each scale's texts in 2-D (PCA), "
                "coloured by that scale's label:",
                "",
                f"![{name} scale projections]({fig['projection']})",
            ]
    return "\n".join(lines) + "\n"


def name_tests_lines(tests, name: str, used: str) -> list[str]:
    """Markdown: does each scale carry the probe label it is named for?

    ``tests`` are :class:`~msma_sklearn.metrics.ScaleNameTest` results."""
    if not tests:
        return []
    lines = [
        "",
        f"Do the scales carry what they are named for? On the {used} scales, each label's "
        "probe accuracy averaged over a scale's layers; the named scale against the best "
        "other (the best other chosen again in each of the paired bootstrap resamples over "
        "texts; Holm over the names; 'supported': the named scale carries more, "
        "'contradicted': another carries more):",
        "",
        "| label | accuracy per scale | named minus best other [95% CI] | Holm p (more, "
        "less) | verdict |",
        "|---|---|---:|---|---|",
    ]
    for t in tests:
        acc = ", ".join(f"{k} {v:.3f}" for k, v in t.accuracy.items())
        lo, hi = (rounded(v) for v in t.ci)
        lines.append(
            f"| {t.label} | {acc} | {rounded(t.advantage):+.3f} [{lo:+.3f}, "
            f"{hi:+.3f}] (best other: {t.best_other}) | {sig3(t.p_more_holm):.3g}, "
            f"{sig3(t.p_less_holm):.3g} | **{t.verdict}** on {name} |"
        )
    return lines


def profile_lines(result, name: str, figure=None) -> list[str]:
    """Markdown: the scales' boundaries against the layer profile, and the published
    shapes, as measured (``result``: a :class:`~msma_sklearn.study.SegmentationResult`)."""
    profile = result.profile_summary()
    if profile is None:
        return []
    used = result.used
    lines = [
        "",
        f"Boundaries against the layer profile (signals from outside layer similarity, on "
        f"{profile['n_texts']} texts held out from a refit of `{used}`, whose boundaries are "
        f"{fmt_bounds(profile['boundaries'])}; the logit lens and block deletion read every "
        f"{profile.get('stride', 1)} tokens"
        + (
            f", leaving out the first {profile['sink_tokens']} (attention sinks, as the pooled "
            "states do)"
            if profile.get("sink_tokens")
            else ""
        )
        + "): the mean change of each signal at those "
        "boundaries against admissible random splits into as many scales (p = share of them "
        "with at least as large a change; exact when every split is enumerated), and the "
        "signal's own best split with its mean distance to the boundaries, in layers. "
        f"Profile wall time {profile['seconds']:.0f} s.",
        "",
        "| signal | change at the boundaries | random splits | p | own split | distance |",
        "|---|---:|---:|---:|---|---:|",
    ]

    def num(x, spec=".3g"):
        return "–" if x is None or not np.isfinite(x) else format(x, spec)

    for t in profile["tests"]:
        own = fmt_bounds(t["own_boundaries"]) if t["own_boundaries"] else "–"
        lines.append(
            f"| {t['signal']} | {num(t['change_at_boundaries'])} | {num(t['null_mean'])} "
            f"| {num(t['p'], '.3f')} | {own} | {num(t['distance'], '.1f')} |"
        )
    first = profile["tests"][0] if profile["tests"] else None
    if first is not None:
        lines += [
            "",
            f"{first['n_splits']} admissible splits: the smallest p this test can give on "
            f"{name} is {first['min_p']:.3g}"
            + (
                f", so it cannot reach {result.alpha:g} here: read a large p as "
                "'inconclusive', not as evidence against the boundaries."
                if first["min_p"] > result.alpha
                else "."
            ),
        ]
    lines += [
        "",
        "Published shapes, as measured on this model and these texts:",
        "",
        "| signal | published shape | holds here | measured |",
        "|---|---|---|---|",
    ]
    for c in profile["shapes"]:
        holds = {True: "yes", False: "no", None: "not measured"}[c["holds"]]
        lines.append(f"| {c['signal']} | {c['expected']} | {holds} | {c['observed']} |")
    if figure:
        lines += ["", f"![{name} phase card]({figure})"]
    return lines
