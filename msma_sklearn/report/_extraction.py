"""The report's extraction section: per-layer probes, where each label is decoded."""

from __future__ import annotations

import numpy as np

from ._format import layer_ranges

__all__ = ["LABELS_DESCRIBED", "extraction_section"]


#: how the report describes the labels of the corpora ``msma run`` bundles
LABELS_DESCRIBED = {
    "bundled": "Labels: global = topic, intermediate = discourse type, local = negation.",
    "word_order": "Labels (planted, each on half the documents, independently): global = "
    "sentence order (original / shuffled), local = one bigram per sentence swapped "
    "(original / shifted); neither changes the words, so the embedding layer can read "
    "them only through position; topic = the package (lexical, for comparison).",
}


def extraction_section(results, *, labels: str = "", random_state: int = 0) -> str:
    """The extraction section: per-layer probes with intervals and where each label is decoded.

    Parameters
    ----------
    results : dict of str -> ExtractionResult
        Per model, :func:`~msma_sklearn.study.run_extraction`'s result; the probes'
        folds, bootstrap and confidence are read from it.
    labels : str, default=""
        What the labels are (one sentence; :data:`LABELS_DESCRIBED` for the
        bundled corpora).
    random_state : int, default=0
        The probes' seed.

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
            f"| {name} | {r.model_type} | {r.n_layers} | {r.hidden_size} | {r.n_texts}"
            f" | {r.n_tokens} | {round(r.load_seconds, 2)} | {round(r.extract_seconds, 2)}"
            f" | {round(r.tokens_per_second, 1)} |"
        )
    probes_of = [p for r in results.values() for p in r.probes.values()]
    folds = probes_of[0].folds if probes_of else 5
    confidence = probes_of[0].confidence if probes_of else 0.95
    lines += [
        "",
        "## Linear-probe accuracy per hidden state",
        "",
        f"Ridge classifier on standardised pooled states; every text predicted once out of "
        f"{folds}-fold CV (seed {random_state}); "
        f"{confidence:.0%} intervals: percentile bootstrap over texts. "
        "Selectivity = accuracy minus accuracy on a control task (Hewitt & Liang 2019, for "
        "texts: every word type gets a random label, a text takes its words' majority label), "
        f"with a paired bootstrap interval. {labels + ' ' if labels else ''}Layer 0 is the "
        "embedding output.",
    ]
    if not probes_of:
        lines += [
            "",
            "No labels with two or more classes for these texts (set `label_columns`), so no "
            "probes.",
        ]
        return "\n".join(lines) + "\n"
    ci_name = f"{confidence:.0%} CI"
    for name, r in results.items():
        probes = r.probes
        scales = [s for s in ("global", "intermediate", "local") if s in probes]
        scales += [s for s in probes if s not in scales]
        lines += [
            "",
            f"### {name}",
            "",
            "| layer | "
            + " | ".join(f"{s} accuracy [{ci_name}] | {s} selectivity [{ci_name}]" for s in scales)
            + " | mean norm |",
            "|---:|" + "---:|---:|" * len(scales) + "---:|",
        ]
        # values as the results' JSON keeps them (4 digits), so the two never disagree
        view = {
            s: {
                k: np.round(np.asarray(getattr(probes[s], k)), 4).astype(float)
                for k in ("accuracy", "accuracy_ci", "selectivity", "selectivity_ci")
            }
            for s in scales
        }
        norms = np.round(np.asarray(r.mean_state_norm), 3).astype(
            float
        )  # its own dtype, as the JSON
        for j in range(len(norms)):
            cells = " | ".join(
                f"{view[s]['accuracy'][j]:.3f} [{view[s]['accuracy_ci'][j][0]:.2f}, "
                f"{view[s]['accuracy_ci'][j][1]:.2f}] | {view[s]['selectivity'][j]:+.3f} "
                f"[{view[s]['selectivity_ci'][j][0]:+.2f}, {view[s]['selectivity_ci'][j][1]:+.2f}]"
                for s in scales
            )
            lines.append(f"| {j} | {cells} | {norms[j]:.2f} |")
        lines.append("")
        for s in scales:
            p = probes[s]
            acc, ci = view[s]["accuracy"], view[s]["accuracy_ci"]
            where_decoded = layers_above_embedding({"accuracy": acc, "accuracy_ci": ci})
            best, beyond = where_decoded["best"], where_decoded["beyond"]
            where = (
                f"layers whose interval lies wholly above layer 0's: {layer_ranges(beyond)}"
                if beyond
                else "no layer's interval lies wholly above layer 0's"
            )
            lines.append(
                f"- {s}: chance (majority class) {round(p.chance, 4):.3f}, control-task majority "
                f"{round(p.control_chance, 4):.3f}; the embedding output already decodes it at "
                f"{acc[0]:.3f} [{ci[0][0]:.2f}, {ci[0][1]:.2f}]; best layer {best} at "
                f"{acc[best]:.3f} [{ci[best][0]:.2f}, {ci[best][1]:.2f}]; {where}."
            )
    return "\n".join(lines) + "\n"
