"""Stages of ``msma run``. Each returns ``(json-able results, Markdown section)``."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..metrics.text import TextMetrics
from ..segmentation._segmenter import _ranges
from ..utils._io import atomic_path

__all__ = ["STAGES"]

logger = logging.getLogger(__name__)

# Architecture family of each default model, for the original project's presets.
# SmolLM2 (Llama) has no row in the original tables: like GPT-2 it is a
# decoder-only causal LM, so the GPT-2 row is the one that applies.
FAMILIES = {
    "minilm": "bert",
    "smollm2-135m": "gpt2",
    "tiny-gpt2": "gpt2",
    "tiny-bert": "bert",
    "tiny-roberta": "roberta",
    "tiny-t5": "t5",
}

# The original README's "Semantic Layer Distribution" table, verbatim.
README_TABLE = [
    "| GPT-2 (README) | 0-2 (25%) | 3-8 (50%) | 9-12 (25%) |",
    "| BERT (README) | 0-4 (42%) | 5-8 (29%) | 9-12 (29%) |",
    "| RoBERTa (README) | 0-4 (42%) | 5-8 (29%) | 9-12 (29%) |",
    "| T5 (README) | 0-2 (50%) | 3-4 (33%) | 5-6 (17%) |",
]


def load_run_texts(config):
    """The run's texts and their labels per scale (bundled corpus or the user's file)."""
    from ..datasets import load_corpus, load_texts

    if config.texts == "bundled":
        corpus = load_corpus()
        texts, labels = list(corpus.texts), {s: np.asarray(y) for s, y in corpus.targets.items()}
    else:
        texts = load_texts(config.texts, text_column=config.text_column)
        labels = _file_labels(config) if config.label_columns else {}
    idx = np.arange(len(texts))
    if config.quick:  # every 4th text: for the corpus 64, still balanced over its 8 x 4 x 2 cells
        idx = idx[::4]
    if len(idx) < 10:
        raise ValueError(
            f"{config.texts!r} gives {len(idx)} texts{' in quick mode' if config.quick else ''}; "
            "the study needs at least 10 (segmentation, alignment splits and probes)."
        )
    return [texts[i] for i in idx], {s: y[idx] for s, y in labels.items()}


def _file_labels(config) -> dict:
    import pandas as pd

    path = Path(config.texts)
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_json(path, lines=True)
    missing = [c for c in config.label_columns.values() if c not in frame.columns]
    if missing:
        raise ValueError(
            f"label_columns names {missing}, not columns of {str(path)!r} "
            f"(it has {list(frame.columns)})."
        )
    return {s: frame[c].astype(str).to_numpy() for s, c in config.label_columns.items()}


def _probe_all(per_layer, labels, texts, config, name) -> dict:
    """Per-layer probes with bootstrap CIs and a control task, per label."""
    from ..metrics import probe_layers

    out = {}
    for scale, y in tqdm(labels.items(), desc=f"Probing {name}", unit="label", leave=False):
        classes = np.unique(y)
        if classes.size < 2:
            warnings.warn(
                f"Label {scale!r} has one class ({classes.tolist()}) in these texts: not probed.",
                UserWarning,
                stacklevel=2,
            )
            continue
        out[scale] = probe_layers(
            per_layer, y, texts, folds=config.cv_folds, random_state=config.random_state
        ).to_dict()
    return out


def _extract(name, texts, config, **overrides):
    from ..extraction import HiddenStateExtractor

    settings = {
        "pooling": config.pooling,
        "max_length": config.max_length,
        "batch_size": config.batch_size,
        "device": config.device,
        "verbose": 1,
        **overrides,
    }
    ext = HiddenStateExtractor(name, **settings).fit(texts)
    t0 = time.perf_counter()
    X = ext.transform(texts)
    return ext, X, time.perf_counter() - t0


# ------------------------------------------------------------------ extraction
def stage_extract(config, run_dir: Path, context: dict):
    """Extract every hidden state of every model; probe each layer."""
    from ..extraction import load_model

    texts, labels = load_run_texts(config)
    config.n_texts = len(texts)
    context["texts"], context["labels"], context["hidden"] = texts, labels, {}
    results = {}
    for name in tqdm(config.models, desc="Extracting models", unit="model"):
        t0 = time.perf_counter()
        _, tokenizer = load_model(name, device=config.device)
        load_s = time.perf_counter() - t0
        ext, X, extract_s = _extract(name, texts, config)
        context["hidden"][name] = (ext, X)
        n_tokens = int(
            sum(min(len(ids), config.max_length) for ids in tokenizer(texts)["input_ids"])
        )
        per_layer = ext.reshape_by_layer(X)
        probes = _probe_all(per_layer, labels, texts, config, name)
        with atomic_path(run_dir / f"hidden_states_{name}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    X=X,
                    layers=ext.layers_,
                    feature_names=ext.get_feature_names_out().astype(str),
                )
        results[name] = {
            "model_type": ext.model_type_,
            "n_layers": ext.n_layers_,
            "hidden_size": ext.hidden_size_,
            "n_texts": len(texts),
            "n_tokens": n_tokens,
            "load_seconds": round(load_s, 2),
            "extract_seconds": round(extract_s, 2),
            "tokens_per_second": round(n_tokens / extract_s, 1),
            "mean_state_norm": np.linalg.norm(per_layer, axis=2).mean(axis=0).round(3).tolist(),
            "sink_tokens": ext.sink_tokens_,
            "probe_accuracy": {s: np.round(v["accuracy"], 3).tolist() for s, v in probes.items()},
            "probes": probes,
            "chance": {s: round(1 / len(set(y.tolist())), 3) for s, y in labels.items()},
        }
    return results, _extract_markdown(config, results)


def _extract_markdown(config, results) -> str:
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
    described = (
        "Labels: global = topic, intermediate = discourse type, local = negation."
        if config.texts == "bundled"
        else "Labels: "
        + ", ".join(f"{k} = column `{v}`" for k, v in config.label_columns.items())
        + "."
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
            best = int(np.argmax(acc))
            beyond = [j for j in range(len(acc)) if ci[j][0] > ci[0][1]]
            where = (
                f"layers whose interval lies wholly above layer 0's: {_ranges(beyond)}"
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


# ---------------------------------------------------------------- segmentation
def _segmenters(config, family, spans):
    from ..segmentation import ScaleSegmenter

    n_boot = config.n_bootstrap
    seed = config.random_state
    methods = {
        "cka": ScaleSegmenter("cka", n_bootstrap=n_boot, random_state=seed),
        "mi": ScaleSegmenter("mi", n_bootstrap=n_boot, random_state=seed),
        "attention_span": ScaleSegmenter("attention_span", attention_spans=spans),
        "preset: readme": ScaleSegmenter("preset", preset="readme", family=family),
        "preset: uniform": ScaleSegmenter("preset", preset="uniform"),
    }
    if family in ("bert", "gpt2"):
        methods["preset: msma_code"] = ScaleSegmenter("preset", preset="msma_code", family=family)
    return methods


def _comparison(starts, reference, n: int, seed: int) -> dict:
    """ARI and boundary distance to a reference, with random contiguous splits beside."""
    from dataclasses import asdict

    from ..segmentation import compare_to_random_splits

    c = compare_to_random_splits(starts, reference, n, random_state=seed)
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(c).items()}


def _curve(frame, config):
    """The number of scales the data support (ScaleSegmenter's k selection)."""
    from ..segmentation import ScaleSegmenter

    seg = ScaleSegmenter("cka", n_scales="auto", random_state=config.random_state).fit(frame)
    return seg.scale_count_curve_


def _pooling_variants(name: str, ext) -> dict:
    """Extractor settings of the robustness grid's pooling axis (distinct ones only)."""
    variants = {f"mean (sink_tokens={ext.sink_tokens_})": {"pooling": "mean"}}
    if ext.sink_tokens_ != 0:
        variants["mean (sink_tokens=0)"] = {"pooling": "mean", "sink_tokens": 0}
    variants["last"] = {"pooling": "last"}
    return variants


def _robustness_grid(name, ext, X, texts, config) -> list[dict]:
    """Pooling x standardisation x method: each configuration's boundary distribution."""
    import pandas as pd

    from ..segmentation import ScaleSegmenter

    rows = []
    for pooling, settings in _pooling_variants(name, ext).items():
        if pooling.startswith("mean (sink_tokens=") and "sink_tokens" not in settings:
            Xv = X  # the run's own states
        else:
            Xv = _extract(name, texts, config, **settings)[1]
        frame = pd.DataFrame(Xv, columns=ext.get_feature_names_out())
        for standardize in (True, False):
            for method in ("cka", "mi"):
                seg = ScaleSegmenter(
                    method,
                    standardize=standardize,
                    n_bootstrap=config.n_bootstrap,
                    random_state=config.random_state,
                ).fit(frame)
                rows.append(
                    {
                        "label": f"{pooling} · {'standardised' if standardize else 'raw'} · "
                        f"{method}",
                        "pooling": pooling,
                        "standardize": standardize,
                        "method": method,
                        "boundaries": seg.boundaries_,
                        "bootstrap_boundaries": (
                            seg.bootstrap_boundaries_.tolist()
                            if hasattr(seg, "bootstrap_boundaries_")
                            else []
                        ),
                        "stability": getattr(seg, "bootstrap_stability_", None),
                    }
                )
    return rows


def stage_segment(config, run_dir: Path, context: dict):
    """Segment every model's layers with every method, beside nulls; tables and figures."""
    import pandas as pd

    from ..plotting import (
        plot_boundary_distributions,
        plot_layer_similarity,
        plot_scale_count_curves,
        save_figure,
    )

    texts = context["texts"]
    hidden = dict(context["hidden"])
    for name in config.tiny_models:
        if name not in hidden:
            ext, X, _ = _extract(name, texts, config)
            hidden[name] = (ext, X)
    results = {}
    seed = config.random_state
    for name, (ext, X) in tqdm(hidden.items(), desc="Segmenting", unit="model"):
        family = FAMILIES.get(name)
        spans = ext.attention_span(texts)
        frame = pd.DataFrame(X, columns=ext.get_feature_names_out())
        n_states = len(ext.layers_)
        rows = {}
        fitted = {}
        for label, seg in _segmenters(config, family, spans).items():
            if family is None and "readme" in label:
                continue
            seg.fit(frame)
            fitted[label] = seg
            rows[label] = {
                "scale_layers": seg.scale_layers_,
                "boundaries": seg.boundaries_,
                "shares": {k: round(v, 4) for k, v in seg.layer_shares_.items()},
                "table_row": seg.distribution_table(f"{name} · {label}"),
                "boundary_confidence": (
                    seg.boundary_confidence_.round(3).tolist()
                    if hasattr(seg, "boundary_confidence_")
                    else None
                ),
                "stability": getattr(seg, "bootstrap_stability_", None),
            }
        cka = fitted["cka"]
        chosen = fitted[SEGMENTATION_LABELS[config.segmentation]]
        context.setdefault("segmenters", {})[name] = (chosen, frame)
        tiny = name.startswith("tiny-")  # random-weight test models: no null of their own
        real = name in config.models
        if real:
            projection = run_dir / f"scale_projection_{name}.png"
            _projection_plot(chosen, frame, context["labels"], name, projection)
        readme = fitted.get("preset: readme")
        compare = {"README preset": readme.boundaries_} if readme is not None else {}
        ax = plot_layer_similarity(
            cka, title=f"{name}: layer similarity ({len(texts)} texts)", compare=compare
        )
        png = run_dir / f"layer_similarity_{name}.png"
        save_figure(ax.figure, png)
        curves = {"this model" if tiny else "trained": _curve(frame, config)}
        null = grid = None
        if real and not tiny:
            r_ext, r_X, _ = _extract(f"random:{name}", texts, config)
            r_frame = pd.DataFrame(r_X, columns=r_ext.get_feature_names_out())
            r_seg = _segmenters(config, family, spans)["cka"].fit(r_frame)
            curves["random weights"] = _curve(r_frame, config)
            null = {
                "scale_layers": r_seg.scale_layers_,
                "boundaries": r_seg.boundaries_,
                "stability": getattr(r_seg, "bootstrap_stability_", None),
                "vs_trained": _comparison(r_seg.boundaries_, cka.boundaries_, n_states, seed),
            }
        if real and not tiny and not config.quick:  # the quick profile leaves the grid out
            grid = _robustness_grid(name, ext, X, texts, config)
            ax = plot_boundary_distributions(
                grid,
                n_layers=n_states,
                title=f"{name}: boundaries over {config.n_bootstrap} refits on 80% of the texts",
            )
            grid_png = run_dir / f"segmentation_robustness_{name}.png"
            save_figure(ax.figure, grid_png)
        ax = plot_scale_count_curves(curves, title=f"{name}: how many scales")
        curve_png = run_dir / f"scale_count_{name}.png"
        save_figure(ax.figure, curve_png)
        results[name] = {
            "family": family,
            "n_states": n_states,
            "random_weights_model": tiny,
            "attention_spans": np.round(spans, 3).tolist(),
            "adjacent_mi": np.round(fitted["mi"].adjacent_mi_, 4).tolist(),
            "layer_similarity": np.round(cka.layer_similarity_, 4).tolist(),
            "share_denominator": cka.share_denominator_,
            "min_scale_size": cka.min_scale_size_,
            "methods": rows,
            "vs_readme": (
                {
                    m: _comparison(sg.boundaries_, readme.boundaries_, n_states, seed)
                    for m, sg in fitted.items()
                    if m != "preset: readme"
                }
                if readme is not None
                else None
            ),
            "scale_count": {
                k: {"rows": c.as_rows(), "best_k": c.best_k} for k, c in curves.items()
            },
            "random_weights": null,
            "robustness": grid,
            "heatmap": png.name,
            "scale_count_figure": curve_png.name,
            "robustness_figure": grid_png.name if grid else None,
            "used": SEGMENTATION_LABELS[config.segmentation],
            "projection": projection.name if real else None,
        }
    return results, _segment_markdown(config, results)


# labels of the segment table's methods, by `segmentation.method`
SEGMENTATION_LABELS = {
    "cka": "cka",
    "mi": "mi",
    "attention_span": "attention_span",
    "readme": "preset: readme",
    "uniform": "preset: uniform",
}


def _projection_plot(segmenter, frame, labels: dict, name: str, path: Path) -> None:
    """PCA of each scale's representations (mean over its layers), coloured by its label."""
    from sklearn.decomposition import PCA

    from ..plotting._similarity import _pyplot, save_figure

    plt = _pyplot()
    per_scale = np.asarray(segmenter.set_output(transform="default").transform(frame))
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
            for k, value in enumerate(sorted(set(y.tolist()))):
                sel = y == value
                ax.scatter(
                    xy[sel, 0], xy[sel, 1], s=8, label=str(value), color=plt.cm.tab10(k % 10)
                )
            ax.legend(fontsize=6, markerscale=1.5, loc="best")
        ax.set_title(f"{scale} ({_span(segmenter.scale_layers_[scale])})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{name}: each scale's texts, PCA of standardised states", fontsize=10)
    save_figure(fig, path)


def _fmt_bounds(b) -> str:
    return ", ".join(str(x) for x in b) if b else "–"


def _segment_markdown(config, results) -> str:
    n_boot = config.n_bootstrap
    lines = [
        "## Layer distribution (scale segmentation)",
        "",
        "Hidden-state indices per scale (0 = embedding output) with the share of the model's "
        "hidden states (embedding output counted as a layer: L + 1 in the denominator). "
        "Data-driven methods work on standardised states (every unit z-scored, so no single "
        "massive unit decides; `standardize=False` is the raw form) with at least "
        "`min_scale_size` hidden states per scale: "
        "`cka` = exact best contiguous split of the debiased-CKA matrix; "
        "`mi` = cuts at the weakest adjacent-layer KSG mutual information (PCA to 8 dims); "
        "`attention_span` = best piecewise-constant fit of each block's mean attention distance. "
        "Presets: the original README's table and code lists, mapped proportionally to each "
        "model's depth (decoder-only models use the GPT-2 row, BERT-family encoders the BERT "
        f"row). Stability: {n_boot} refits on 80% subsamples of the texts; 'same boundary' is "
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
        kind = (
            " (random weights: a test model, not a trained one)"
            if r["random_weights_model"]
            else ""
        )
        lines += [
            "",
            f"### {name}{kind}",
            "",
            "| model · method | local | intermediate | global | same boundary | refit ARI "
            "(chance) | vs README: distance (chance) | vs README: ARI (chance, p) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        vs = r["vs_readme"] or {}
        for label, row in r["methods"].items():
            conf = row["boundary_confidence"]
            conf_s = ", ".join(f"{c:.2f}" for c in conf) if conf is not None else "–"
            st = row.get("stability")
            st_s = f"{st['ari']:.2f} ({st['null_ari']:.2f})" if st else "–"
            c = vs.get(label)
            dist_s = f"{c['distance']:.1f} ({c['null_distance_mean']:.1f})" if c else "–"
            ari_s = f"{c['ari']:.2f} ({c['null_ari_mean']:.2f}, p={c['p_ari']:.2f})" if c else "–"
            lines.append(f"{row['table_row']} {conf_s} | {st_s} | {dist_s} | {ari_s} |")
        lines += ["", f"![{name} layer similarity]({r['heatmap']})"]
        if vs and "cka" in vs:
            c = vs["cka"]
            if c["distance"] == 0:
                verdict = "The CKA segmentation puts the boundaries where the README preset does"
            elif c["p_ari"] < 0.05:
                verdict = (
                    f"The CKA segmentation is {c['distance']:.1f} layers from the README preset on "
                    f"average, closer than {1 - c['p_ari']:.0%} of random contiguous splits"
                )
            else:
                verdict = (
                    f"The CKA segmentation is {c['distance']:.1f} layers from the README preset on "
                    f"average; {c['p_ari']:.0%} of random contiguous splits agree with the preset "
                    "at least as well (ARI), so this agreement is what chance gives"
                )
            lines += ["", f"{verdict} (on {name}, {r['n_states']} hidden states)."]
        sc = r["scale_count"]
        lines += [
            "",
            "How many scales: boundaries fitted on one half of the texts and scored on the other "
            "(held-out explained similarity, 10 random halvings), against a no-block null (each "
            "half's matrix averaged along its diagonals: the same decay with depth, no blocks); "
            "best k = smallest k within max(1 SE, 0.01) of the largest gap over the null.",
            "",
            "| weights | "
            + " | ".join(f"k={row['k']}" for row in next(iter(sc.values()))["rows"])
            + " | best k |",
            "|---|" + "---:|" * (len(next(iter(sc.values()))["rows"]) + 1),
        ]
        for label, curve in sc.items():
            cells = " | ".join(
                f"{row['explained']:.3f} (null {row['null']:.3f})" for row in curve["rows"]
            )
            lines.append(f"| {label} | {cells} | {curve['best_k']} |")
        k_max = len(next(iter(sc.values()))["rows"])
        for label, curve in sc.items():
            if curve["best_k"] == 1:
                lines.append(f"\n{label}: no k beats the no-block null; no scale structure found.")
            elif curve["best_k"] == k_max:
                lines.append(
                    f"\n{label}: the gain over the null still grows at k={k_max}; the data do "
                    "not single out a number of scales in 1..{k_max}.".replace(
                        "{k_max}", str(k_max)
                    )
                )
            else:
                lines.append(f"\n{label}: the data support {curve['best_k']} scales.")
        lines += [
            "",
            "The study uses n_scales = 3 (as MSMA states) whatever this curve says.",
            "",
            f"![{name} scale count]({r['scale_count_figure']})",
        ]
        null = r.get("random_weights")
        if null:
            v = null["vs_trained"]
            lines += [
                "",
                f"Random-weight model of the same configuration (`random:{name}`), default "
                f"segmentation: boundaries at {_fmt_bounds(null['boundaries'])} against "
                f"{_fmt_bounds(r['methods']['cka']['boundaries'])} for the trained model "
                f"(distance {v['distance']:.1f} layers, ARI {v['ari']:.2f}; random contiguous "
                f"splits: {v['null_distance_mean']:.1f}, {v['null_ari_mean']:.2f}). Structure "
                "found on both is what the architecture gives without training.",
            ]
        grid = r.get("robustness")
        if config.quick and not r["random_weights_model"]:
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
                    f"| {g['pooling']} | {feats} | {g['method']} | {_fmt_bounds(g['boundaries'])} "
                    f"| {rng_s} | {st_s} |"
                )
            lines += ["", f"![{name} segmentation robustness]({r['robustness_figure']})"]
        if r.get("projection"):
            lines += [
                "",
                f"Scales used downstream: `{r['used']}`. Each scale's texts in 2-D (PCA), "
                "coloured by that scale's label:",
                "",
                f"![{name} scale projections]({r['projection']})",
            ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- alignment
CLAIMS = [
    # (description, config, baseline config, metric, low, high) as relative changes
    (
        "Full MSMA reduces KL by 99.5% vs baseline",
        "Full MSMA",
        "Baseline (no map)",
        "kl_sum",
        -0.995,
        -0.995,
    ),
    ("No curvature raises KL by 18-32% vs full", "No Curvature", "Full MSMA", "kl_sum", 0.18, 0.32),
    (
        "No geometry lowers MI by 43-68% vs full",
        "No Geometry",
        "Full MSMA",
        "mi_hist",
        -0.68,
        -0.43,
    ),
]


def stage_align(config, run_dir: Path, context: dict):
    """Ablation of the MSMA objective and a lambda grid search, per real model."""
    import pandas as pd
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, KFold

    from ..alignment import (
        ABLATION_CONFIGS,
        METRICS,
        ManifoldAligner,
        alignment_ablation,
        summarise_ablation,
    )

    n_seeds = config.align_seeds
    readme_rows = (
        "Baseline (no map)",
        "Full MSMA",
        "No Geometry",
        "No Information",
        "No Curvature",
    )
    configs = (
        ABLATION_CONFIGS if config.full_ablation else {k: ABLATION_CONFIGS[k] for k in readme_rows}
    )
    grid_params = {
        "lambda_geo": list(config.lambda_geo),
        "lambda_info": list(config.lambda_info),
        "lambda_curv": list(config.lambda_curv),
    }
    results = {}
    for name in tqdm(config.models, desc="Aligning", unit="model"):
        segmenter, frame = context["segmenters"][name]
        scales = segmenter.set_output(transform="pandas").transform(frame)
        long, fits = alignment_ablation(
            scales,
            configs=configs,
            n_seeds=n_seeds,
            random_state=config.random_state,
            return_fits=True,
        )
        with atomic_path(run_dir / f"ablation_{name}.csv") as tmp:
            long.to_csv(tmp, index=False)
        with atomic_path(run_dir / f"ablation_fits_{name}.csv") as tmp:
            fits.to_csv(tmp, index=False)
        pulls = fits.groupby("config", sort=False)[
            ["share_geo", "share_info", "share_curv", "n_steps"]
        ].mean()
        table = summarise_ablation(long)
        _ablation_bars(table, name, run_dir / f"ablation_{name}.png")
        grid = GridSearchCV(
            ManifoldAligner(map="mlp", random_state=config.random_state),
            grid_params,
            cv=KFold(config.search_folds, shuffle=True, random_state=config.random_state),
            n_jobs=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # alignment_ablation above already said once that each fit chooses a PCA dimension
            warnings.filterwarnings("ignore", message=r".*\(n < 5 d\)", category=UserWarning)
            grid.fit(scales)
        search = [
            {**params, "mean_r2": round(float(m), 4), "sd_r2": round(float(s), 4)}
            for params, m, s in zip(
                grid.cv_results_["params"],
                grid.cv_results_["mean_test_score"],
                grid.cv_results_["std_test_score"],
                strict=True,
            )
        ]
        means = table.xs("mean", axis=1, level=1)
        claims = []
        for text, cfg, base, metric, lo, hi in CLAIMS:
            change = float(means.loc[cfg, metric] / means.loc[base, metric] - 1.0)
            holds = (lo - 0.05 <= change <= hi + 0.05) if lo == hi else (lo <= change <= hi)
            claims.append({"claim": text, "measured_change": round(change, 4), "holds": holds})
        results[name] = {
            "segments": segmenter.scale_layers_,
            "table": {
                cfg: {
                    m: [
                        round(float(table.loc[cfg, (m, "mean")]), 4),
                        round(float(table.loc[cfg, (m, "sd")]), 4),
                    ]
                    for m in METRICS
                }
                for cfg in table.index
            },
            "grid_search": search,
            "best_params": grid.best_params_,
            "claims": claims,
            "n_seeds": n_seeds,
            "n_components": sorted({int(k) for k in fits["n_components"] if pd.notna(k)}),
            "term_shares": {
                cfg: {k: round(float(v), 4) for k, v in row.items()}
                for cfg, row in pulls.iterrows()
            },
        }
        _lambda_heatmap(search, name, run_dir / f"lambda_search_{name}.png")
    return results, _align_markdown(results)


def _ablation_bars(table, name: str, path: Path) -> None:
    """Mean ± sd of the sound metrics for every ablation row."""
    from ..alignment import METRICS
    from ..plotting._similarity import _pyplot, save_figure

    plt = _pyplot()
    shown = ["kl_mean", "mi_ksg", "cka", "procrustes"]
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 4.2), sharey=True)
    y = np.arange(len(table.index))
    for ax, metric in zip(axes, shown, strict=True):
        ax.barh(
            y,
            table[(metric, "mean")].to_numpy(dtype=float),
            xerr=table[(metric, "sd")].to_numpy(dtype=float),
            color="tab:blue",
            alpha=0.8,
            capsize=2,
        )
        ax.set_title(f"{METRICS[metric][0]} {'↑' if METRICS[metric][2] else '↓'}", fontsize=9)
        if metric == "kl_mean" and (table[(metric, "mean")] > 0).all():
            ax.set_xscale("log")  # the unmapped baseline is orders of magnitude above the rest
    axes[0].set_yticks(y, list(table.index), fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"{name}: alignment ablation (held-out, mean ± sd over seeds)", fontsize=10)
    save_figure(fig, path)


def _lambda_heatmap(search: list[dict], name: str, path: Path) -> None:
    """Mean held-out r² over the λ_geo x λ_info grid, one panel per λ_curv."""
    from ..plotting._similarity import _pyplot, save_figure

    plt = _pyplot()
    geo = sorted({r["lambda_geo"] for r in search})
    info = sorted({r["lambda_info"] for r in search})
    curv = sorted({r["lambda_curv"] for r in search})
    fig, axes = plt.subplots(1, len(curv), figsize=(3.6 * len(curv) + 0.8, 3.4), squeeze=False)
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
        ax.set_ylabel("λ_info")
        ax.set_title(f"λ_curv = {c}", fontsize=9)
    fig.colorbar(im, ax=list(axes[0]), label="mean held-out r²")
    fig.suptitle(f"{name}: λ grid search", fontsize=10)
    save_figure(fig, path)


def _align_markdown(results) -> str:
    from ..alignment import METRICS

    lines = [
        "## Alignment ablation (the original README's tables, re-measured)",
        "",
        "Maps f_GI (global -> intermediate) and f_IL (intermediate -> local) on the CKA "
        "scales above; MLP maps (linear part started at the Procrustes solution, so the "
        "curvature term acts); fitted on 80% of the texts, measured on the held-out 20%; "
        "mean ± sd over seeds (each seed its own split), values averaged over the two maps. "
        "'Baseline' compares the scales with no map (all scales live in the model's own "
        "hidden space). Original-form metrics are the original code's; sound forms beside "
        "them. ↓ lower is better, ↑ higher is better. Rotation-invariant metrics (CKA, dCor, "
        "CCA, KSG on per-side PCA, Procrustes) cannot see a rotation, so an orthogonal "
        "alignment leaves them unchanged by construction.",
    ]
    order = ["kl_sum", "mi_hist", "dcor", "cca", "kl_mean", "mi_ksg", "cka", "procrustes"]
    for name, r in results.items():
        lines += [
            "",
            f"### {name} ({r['n_seeds']} seeds)",
            "",
            "| configuration | "
            + " | ".join(
                f"{METRICS[m][0]} ({METRICS[m][1]}) {'↑' if METRICS[m][2] else '↓'}" for m in order
            )
            + " |",
            "|---|" + "---:|" * len(order),
        ]
        for cfg, vals in r["table"].items():
            cells = [f"{vals[m][0]:.3g} ± {vals[m][1]:.2g}" for m in order]
            lines.append(f"| {cfg} | " + " | ".join(cells) + " |")
        lines += ["", "Original claims against this run:", ""]
        for c in r["claims"]:
            verdict = "holds" if c["holds"] else "does not hold"
            lines.append(f"- {c['claim']}: measured {c['measured_change']:+.1%} — {verdict}.")
        ks = r.get("n_components") or []
        lines += [
            "",
            "How much each term pulled: its share of the gradient norm on the mapped points, "
            "mean over steps, maps and seeds (`term_gradient_share_`); a λ > 0 with a share "
            "under 0.001 barely acts. "
            + (
                "With fewer than 5 training texts per dimension, each fit reduced every scale to "
                f"{ks[0] if len(ks) == 1 else f'{ks[0]}-{ks[-1]}'} principal components, chosen "
                "on its held-out validation texts (n_components='auto'; docs/alignment.md)."
                if ks
                else ""
            ),
            "",
            "| configuration | geometry | information | curvature | optimiser steps |",
            "|---|---:|---:|---:|---:|",
        ]
        for cfg, sh in r.get("term_shares", {}).items():
            lines.append(
                f"| {cfg} | {sh['share_geo']:.3f} | {sh['share_info']:.3f} "
                f"| {sh['share_curv']:.3f} | {sh['n_steps']:.0f} |"
            )
        lines += [
            "",
            "λ grid search (GridSearchCV, 3-fold, score = held-out r² of the maps, "
            "independent of the λ):",
            "",
            "| λ_geo | λ_info | λ_curv | mean r² | sd |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in sorted(r["grid_search"], key=lambda x: -x["mean_r2"]):
            lines.append(
                f"| {row['lambda_geo']} | {row['lambda_info']} | {row['lambda_curv']} "
                f"| {row['mean_r2']:.4f} | {row['sd_r2']:.4f} |"
            )
        lines += [
            "",
            f"![{name} ablation](ablation_{name}.png)",
            "",
            f"![{name} lambda search](lambda_search_{name}.png)",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- interventions
INTERVENTIONS = {
    "translation": {"kind": "translation", "direction": "random", "norm": 0.5},
    "amplify": {"kind": "scaling", "alpha": 1.5},
    "noise": {"kind": "noise", "sigma": 0.5},
    "attention": {"kind": "attention", "temperature": 2.0},
}
# every text metric except the distinct-n counts (TTR and MTLD already cover diversity)
TEXT_METRICS = tuple(m for m in TextMetrics.ALL if m not in ("distinct_1", "distinct_2"))
# The original README's GPT-2 claims: (scale, intervention, metric, claimed % change)
INTERVENTION_CLAIMS = [
    ("global", "amplify", "mtld", 7.4, "+7.4% lexical diversity"),
    ("global", "amplify", "coherence", -24.0, "-24% coherence"),
    ("intermediate", "amplify", "sentence_count", 25.0, "+25% sentence count"),
    ("intermediate", "amplify", "mean_sentence_length", -19.0, "-19% mean sentence length"),
    ("local", "amplify", "ttr", 34.0, "+34% lexical variation"),
]


def stage_intervene(config, run_dir: Path, context: dict):
    """Every scale x intervention on SmolLM2; paired effects over prompts and seeds."""
    import pandas as pd

    from ..interventions import Intervener, benjamini_hochberg, holm, prompt_effect

    model = config.intervention_model
    if model not in context.get("segmenters", {}):
        return {"skipped": f"{model} not among the run's models"}, (
            f"## Interventions\n\nSkipped: {model} is not among the models.\n"
        )
    segmenter, _ = context["segmenters"][model]
    texts = context["texts"]
    n_prompts = config.n_prompts
    prompts = [" ".join(t.split()[:6]) for t in texts[:: max(1, len(texts) // n_prompts)]]
    prompts = prompts[:n_prompts]
    seeds = list(config.intervention_seeds)
    new_tokens = config.max_new_tokens
    base = Intervener(
        model,
        layers=[1],
        max_new_tokens=new_tokens,
        metrics=list(TEXT_METRICS),
        batch_size=16,
    ).fit()
    baseline = base._measure(base.generate_baseline(prompts), len(prompts))
    rows, measured = [], {}
    # the prompt is the unit: samples of one prompt (one per seed) are averaged first
    prompt_ids = np.tile(np.arange(len(prompts)), len(seeds))
    stacked_base = np.vstack([baseline] * len(seeds))
    combos = [(s, k) for s in segmenter.scale_names_ for k in config.intervention_kinds]
    for scale, name in tqdm(combos, desc="Intervening", unit="config"):
        layers = segmenter.scale_layers_[scale]
        if name == "attention":
            layers = [j for j in layers if j > 0]  # hidden state 0 has no attention block
        treated = []
        for seed in seeds:
            iv = Intervener(
                model,
                layers=layers,
                max_new_tokens=new_tokens,
                metrics=list(TEXT_METRICS),
                batch_size=16,
                random_state=seed,
                **INTERVENTIONS[name],
            )
            iv.fit(texts[:32] if name == "translation" else None)
            treated.append(iv._measure(iv.generate(prompts), len(prompts)))
        treated = np.vstack(treated)
        measured[(scale, name)] = treated
        for k, metric in enumerate(TEXT_METRICS):
            effect = prompt_effect(
                prompt_ids, stacked_base[:, k], treated[:, k], random_state=config.random_state
            )
            rows.append(
                {
                    "scale": scale,
                    "intervention": name,
                    "metric": metric,
                    "n_prompts": effect.n_prompts,
                    "n_pairs": effect.n_pairs,
                    "defined_baseline": effect.defined_baseline,
                    "defined_treated": effect.defined_treated,
                    "baseline_mean": effect.baseline_mean,
                    "treated_mean": effect.treated_mean,
                    "percent_change": effect.percent_change,
                    "ci_low": effect.ci_low,
                    "ci_high": effect.ci_high,
                    "d_z": effect.d_z,
                    "p": effect.p_claimed,
                }
            )
    table = pd.DataFrame(rows)
    valid = table["p"].notna()
    table["q_bh"] = np.nan
    if valid.any():  # false-discovery rate over the whole exploratory grid
        table.loc[valid, "q_bh"] = benjamini_hochberg(table.loc[valid, "p"])
    with atomic_path(run_dir / "interventions.csv") as tmp:
        table.to_csv(tmp, index=False)
    _forest_plot(table, model, run_dir / "intervention_forest.png")
    # the original's claims, judged with the prompt as the unit: samples of one prompt
    # (seeds; identical under greedy decoding) are averaged before any test
    tested = []
    for scale, name, metric, claimed, text in INTERVENTION_CLAIMS:
        if (scale, name) not in measured:  # that scale or intervention is not in this run
            continue
        k = TEXT_METRICS.index(metric)
        args = (prompt_ids, stacked_base[:, k], measured[(scale, name)][:, k])
        tested.append((scale, name, text, claimed, args))
    raw = [
        prompt_effect(*args, claimed_percent=claimed, random_state=config.random_state)
        for *_, claimed, args in tested
    ]
    finite = [i for i, e in enumerate(raw) if np.isfinite(e.p_claimed)]
    adjusted = dict(zip(finite, holm([raw[i].p_claimed for i in finite]), strict=True))
    claims = []
    for i, (scale, name, text, claimed, args) in enumerate(tested):
        effect = (
            prompt_effect(
                *args,
                claimed_percent=claimed,
                p_adjusted=float(adjusted[i]),
                random_state=config.random_state,
            )
            if i in adjusted
            else raw[i]
        )
        layers = segmenter.scale_layers_[scale]
        claims.append(
            {
                "claim": f"{scale} {name}: {text}",
                "dose": f"{name} ("
                + ", ".join(f"{k} {v}" for k, v in INTERVENTIONS[name].items())
                + f") on hidden states {layers[0]}-{layers[-1]}",
                "verdict": effect.verdict,
                "reason": effect.reason,
                "n_prompts": effect.n_prompts,
                "n_pairs": effect.n_pairs,
                "measured_percent": _rounded(effect.percent_change, 2),
                "ci": [_rounded(effect.ci_low, 2), _rounded(effect.ci_high, 2)],
                "d_z": _rounded(effect.d_z, 3),
                "p_holm": _rounded(adjusted.get(i, np.nan), 4),
                "power": _rounded(effect.power, 3),
            }
        )
    results = {
        "model": model,
        "prompts": prompts,
        "seeds": seeds,
        "max_new_tokens": new_tokens,
        "scales": segmenter.scale_layers_,
        "effects": table.replace({np.nan: None}).to_dict(orient="records"),
        "claims": claims,
    }
    return results, _intervene_markdown(results, table)


def _rounded(value, digits: int):
    """A JSON-safe rounded float, None when not finite."""
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _forest_plot(table, model: str, path: Path) -> None:
    from ..plotting._similarity import _pyplot, save_figure

    plt = _pyplot()
    metrics = list(dict.fromkeys(table["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics), 5.0), sharey=True)
    labels = [
        f"{s} · {i}" for s, i in dict.fromkeys(zip(table.scale, table.intervention, strict=True))
    ]
    for ax, metric in zip(axes, metrics, strict=True):
        sub = table[table.metric == metric]
        y = np.arange(len(sub))
        d = sub["percent_change"].to_numpy(dtype=float)  # NaN (not drawn): < 20 pairs
        err = np.vstack(
            [d - sub["ci_low"].to_numpy(dtype=float), sub["ci_high"].to_numpy(dtype=float) - d]
        )
        ax.errorbar(d, y, xerr=np.abs(err), fmt="o", ms=4, capsize=2)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel("% change (95% CI over prompts)", fontsize=8)
    axes[0].set_yticks(np.arange(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"{model}: intervention effects vs matched baseline", fontsize=11)
    save_figure(fig, path)


def _intervene_markdown(results, table) -> str:
    lines = [
        "## Interventions",
        "",
        f"{results['model']}, scales from the CKA segmentation "
        f"({', '.join(f'{k} {_span(v)}' for k, v in results['scales'].items())}); "
        f"{len(results['prompts'])} prompts (the first six words of bundled texts), greedy "
        f"decoding of {results['max_new_tokens']} new tokens, seeds {results['seeds']} (they "
        "drive the random direction and the noise). Interventions on every hidden state of "
        "the scale: translation by a random direction of 0.5 x the layer's median token norm "
        "(attention sinks left out), amplify = scaling by 1.5 (compounding over the scale's "
        "layers), Gaussian noise with sigma 0.5 x rms(h), attention temperature 2. Effects "
        "are paired against the unmodified generation of the same prompt, the prompt being "
        "the unit (the seeds' outputs averaged within it): percent change of the mean with a "
        "bootstrap 95% CI over prompts, two-sided paired t-test, Benjamini-Hochberg q over "
        "the whole grid (exploratory). A metric needs 20 prompts where it is defined with and "
        "without the intervention; below that no effect is given.",
        "",
        "| Model | Scale | Intervention | Effects at FDR 5% (% change [95% CI], q) "
        "| Metrics with ≥ 20 defined prompts |",
        "|---|---|---|---|---:|",
    ]
    for (scale, name), sub in table.groupby(["scale", "intervention"], sort=False):
        measured = sub.dropna(subset=["percent_change"])
        found = measured[measured["q_bh"] < 0.05]
        cells = "; ".join(
            f"{r['metric']} {r['percent_change']:+.1f}% [{r['ci_low']:+.1f}, "
            f"{r['ci_high']:+.1f}], q {r['q_bh']:.2g}"
            for _, r in found.iterrows()
        )
        lines.append(
            f"| {results['model']} | {scale} | {name} | {cells or 'none'} "
            f"| {len(measured)} of {len(sub)} |"
        )
    lines += [
        "",
        "The original README's GPT-2 claims, tested on this model with the prompt as the unit "
        f"({len(results['prompts'])} prompts; the seeds' outputs averaged within each prompt, so "
        "identical greedy outputs count once). One pre-registered metric per claim; one-sided "
        "paired t-test in the claimed direction, Holm over these claims; 'contradicted' when "
        "the effect is shown opposite to the claim or smaller than half of it; fewer than 20 "
        "defined prompt pairs is 'inconclusive' with no effect reported; power to detect the "
        "claimed size beside each verdict. These verdicts are about this model at this dose "
        "only.",
        "",
    ]

    def fmt(value, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    for c in results["claims"]:
        measured = (
            f"measured {fmt(c['measured_percent'], '+.1f')}% [{fmt(c['ci'][0], '+.1f')}, "
            f"{fmt(c['ci'][1], '+.1f')}], Holm p {fmt(c['p_holm'], '.3g')}, power "
            f"{fmt(c['power'], '.0%')}; "
            if c["measured_percent"] is not None
            else ""
        )
        lines.append(
            f"- {c['claim']} — on {results['model']} at {c['dose']}: {measured}"
            f"{c['verdict']} ({c['reason']}; {c['n_pairs']} of {c['n_prompts']} prompts defined)."
        )
    lines += [
        "",
        "Every scale x intervention x metric is in `interventions.csv`.",
        "",
        "![intervention effects](intervention_forest.png)",
    ]
    return "\n".join(lines) + "\n"


def _span(layers) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])


STAGES = [
    ("extract", stage_extract),
    ("segment", stage_segment),
    ("align", stage_align),
    ("intervene", stage_intervene),
]
