"""The report's extraction section: per-layer probes, where each label is decoded."""

from __future__ import annotations

import numpy as np

from ._format import layer_ranges

__all__ = ["extraction_section"]


def extraction_section(config, results) -> str:
    """The extraction section: per-layer probes with intervals and where each label is decoded.

    Parameters
    ----------
    config : RunConfig
        The run's design (settings are read from it, never repeated in prose).
    results : dict
        Per model, the stage's results as ``summary.json`` holds them.

    Returns
    -------
    str
        The section's Markdown.
    """
    from ..study import layers_above_embedding

    lines = [
        "## Extraction",
        "",
        "| model | architecture | blocks | hidden | texts | tokens | load s | extract s | tokens/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['model_type']} | {r['n_layers']} | {r['hidden_size']} | {r['n_texts']}"
            f" | {r['n_tokens']} | {r['load_seconds']} | {r['extract_seconds']}"
            f" | {r['tokens_per_second']} |"
        )
    described = {
        "bundled": "Labels: global = topic, intermediate = discourse type, local = negation.",
        "word_order": "Labels (planted, each on half the documents, independently): global = "
        "sentence order (original / shuffled), local = one bigram per sentence swapped "
        "(original / shifted); neither changes the words, so the embedding layer can read "
        "them only through position; topic = the package (lexical, for comparison).",
    }.get(
        config.texts,
        "Labels: "
        + ", ".join(f"{k} = column `{v}`" for k, v in config.label_columns.items())
        + ".",
    )
    lines += [
        "",
        "## Linear-probe accuracy per hidden state",
        "",
        f"Ridge classifier on standardised pooled states; every text predicted once out of "
        f"{config.cv_folds}-fold CV (seed {config.random_state}); "
        "95% intervals: percentile bootstrap over texts. "
        "Selectivity = accuracy minus accuracy on a control task (Hewitt & Liang 2019, for "
        "texts: every word type gets a random label, a text takes its words' majority label), "
        f"with a paired bootstrap interval. {described} Layer 0 is the embedding output.",
    ]
    if not any(r["probe_accuracy"] for r in results.values()):
        lines += [
            "",
            "No labels with two or more classes for these texts (set `label_columns`), so no "
            "probes.",
        ]
        return "\n".join(lines) + "\n"
    for name, r in results.items():
        probes = r["probes"]
        scales = [s for s in ("global", "intermediate", "local") if s in probes]
        scales += [s for s in probes if s not in scales]
        lines += [
            "",
            f"### {name}",
            "",
            "| layer | "
            + " | ".join(f"{s} accuracy [95% CI] | {s} selectivity [95% CI]" for s in scales)
            + " | mean norm |",
            "|---:|" + "---:|---:|" * len(scales) + "---:|",
        ]
        for j in range(len(r["mean_state_norm"])):
            cells = " | ".join(
                f"{probes[s]['accuracy'][j]:.3f} [{probes[s]['accuracy_ci'][j][0]:.2f}, "
                f"{probes[s]['accuracy_ci'][j][1]:.2f}] | {probes[s]['selectivity'][j]:+.3f} "
                f"[{probes[s]['selectivity_ci'][j][0]:+.2f}, {probes[s]['selectivity_ci'][j][1]:+.2f}]"
                for s in scales
            )
            lines.append(f"| {j} | {cells} | {r['mean_state_norm'][j]:.2f} |")
        lines.append("")
        for s in scales:
            p = probes[s]
            acc = np.asarray(p["accuracy"])
            ci = np.asarray(p["accuracy_ci"])
            where_decoded = layers_above_embedding(p)
            best, beyond = where_decoded["best"], where_decoded["beyond"]
            where = (
                f"layers whose interval lies wholly above layer 0's: {layer_ranges(beyond)}"
                if beyond
                else "no layer's interval lies wholly above layer 0's"
            )
            lines.append(
                f"- {s}: chance (majority class) {p['chance']:.3f}, control-task majority "
                f"{p['control_chance']:.3f}; the embedding output already decodes it at "
                f"{acc[0]:.3f} [{ci[0][0]:.2f}, {ci[0][1]:.2f}]; best layer {best} at "
                f"{acc[best]:.3f} [{ci[best][0]:.2f}, {ci[best][1]:.2f}]; {where}."
            )
    return "\n".join(lines) + "\n"
