"""Stages of ``msma run``. Each returns ``(json-able results, Markdown section)``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._registry import OPERATORS, SEGMENTATION_METHODS
from ..segmentation._segmenter import _ranges
from ..utils._io import atomic_path

__all__ = ["STAGES"]

logger = logging.getLogger(__name__)

# Architecture family of each default model, for the original project's presets.
# SmolLM2 (Llama) and Gemma 3 have no row in the original tables: like GPT-2 they are
# decoder-only causal LMs, so the GPT-2 row is the one that applies.
FAMILIES = {
    "minilm": "bert",
    "smollm2-135m": "gpt2",
    "gemma3-270m": "gpt2",
    "tiny-gpt2": "gpt2",
    "tiny-bert": "bert",
    "tiny-roberta": "roberta",
    "tiny-t5": "t5",
}

#: model_type -> family of the original presets, for models not in FAMILIES
_TYPE_FAMILIES = {"bert": "bert", "roberta": "roberta", "t5": "t5", "gpt2": "gpt2"}


def model_family(name: str, model=None) -> str | None:
    """The original presets' family of ``name``: from FAMILIES, else from the model's config
    (bert / roberta / t5 / gpt2 by ``model_type``; any other decoder-only causal LM is
    "gpt2", as for SmolLM2); None when neither tells."""
    if name in FAMILIES:
        return FAMILIES[name]
    if model is None:
        return None
    config = model.config
    family = _TYPE_FAMILIES.get(str(config.model_type))
    if family is None and not config.is_encoder_decoder and model.can_generate():
        family = "gpt2"
    return family


def file_stem(name: str) -> str:
    """A file-name-safe stem for a model spec: the name itself for the package's models, else
    the last path part made safe plus a short hash of the whole spec (so two checkpoints
    called ``model`` in different folders do not overwrite each other's figures)."""
    import hashlib
    import re

    if re.fullmatch(r"[A-Za-z0-9._:-]+", name) and name not in (".", ".."):
        return name.replace(":", "-")
    tail = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name.rstrip("/\\")).name or name).strip("-.")
    return f"{tail or 'model'}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


# The original README's "Semantic Layer Distribution" table, verbatim.
README_TABLE = [
    "| GPT-2 (README) | 0-2 (25%) | 3-8 (50%) | 9-12 (25%) |",
    "| BERT (README) | 0-4 (42%) | 5-8 (29%) | 9-12 (29%) |",
    "| RoBERTa (README) | 0-4 (42%) | 5-8 (29%) | 9-12 (29%) |",
    "| T5 (README) | 0-2 (50%) | 3-4 (33%) | 5-6 (17%) |",
]


#: the corpora a run's `texts` can name, as the report describes them
CORPORA = {
    "bundled": "the bundled corpus",
    "word_order": "the docstring word-order corpus ({n} documents, `load_word_order`)",
}
#: documents the word-order corpus contributes to a run
WORD_ORDER_DOCUMENTS = 256


def _word_order(config):
    from ..datasets import load_word_order

    return load_word_order(WORD_ORDER_DOCUMENTS, random_state=config.random_state)


def corpus_description(config) -> str:
    """How the report names the run's texts."""
    if config.texts in CORPORA:
        return CORPORA[config.texts].format(n=WORD_ORDER_DOCUMENTS)
    return f"`{config.texts}`"


def load_run_texts(config):
    """The run's texts and their labels per scale (bundled corpus or the user's file)."""
    from ..datasets import load_corpus, load_texts

    if config.texts in CORPORA:
        corpus = load_corpus() if config.texts == "bundled" else _word_order(config)
        texts, labels = list(corpus.texts), {s: np.asarray(y) for s, y in corpus.targets.items()}
    else:
        texts = load_texts(config.texts, text_column=config.text_column)
        labels = _file_labels(config) if config.label_columns else {}
    idx = np.arange(len(texts))
    if config.quick:  # every 4th text: for the corpus 64, still balanced over its 8 x 4 x 2 cells
        idx = idx[::4]
    return [texts[i] for i in idx], {s: y[idx] for s, y in labels.items()}


def _file_labels(config) -> dict:
    import pandas as pd

    path = Path(config.texts)
    if path.suffix == ".csv":  # "NA" or "None" is a label like any other; only empty is missing
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        first_row = 2  # the header is line 1
    else:
        frame = pd.read_json(path, lines=True, dtype=False)
        first_row = 1
    missing = [c for c in config.label_columns.values() if c not in frame.columns]
    if missing:
        raise ValueError(
            f"label_columns names {missing}, not columns of {str(path)!r} "
            f"(it has {list(frame.columns)})."
        )
    labels = {}
    for scale, column in config.label_columns.items():
        values = frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            rows = (np.flatnonzero(empty.to_numpy()) + first_row).tolist()
            raise ValueError(
                f"label column {column!r} of {path.name} has {len(rows)} missing value(s) at "
                f"line(s) {', '.join(map(str, rows[:10]))}{', ...' if len(rows) > 10 else ''}; "
                "fill them in or drop those rows (every text needs its label)."
            )
        labels[scale] = values.astype(str).to_numpy()
    return labels


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
    """Extract every hidden state of every model; probe each layer (study.run_extraction)."""
    from ..study import run_extraction

    texts, labels = load_run_texts(config)
    config.n_texts = len(texts)
    context["texts"], context["labels"], context["hidden"] = texts, labels, {}
    results = {}
    for name in tqdm(config.models, desc="Extracting models", unit="model"):
        # the preflight loaded it first (run_extraction's load hits the cache): its time
        result = run_extraction(
            name,
            texts,
            labels,
            pooling=config.pooling,
            max_length=config.max_length,
            batch_size=config.batch_size,
            device=config.device,
            cv_folds=config.cv_folds,
            random_state=config.random_state,
            load_seconds=context.get("load_seconds", {}).get(name),
        )
        ext, X = result.extractor, result.states
        context["hidden"][name] = (ext, X)
        with atomic_path(run_dir / f"hidden_states_{file_stem(name)}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    X=X,
                    layers=ext.layers_,
                    feature_names=ext.get_feature_names_out().astype(str),
                )
        results[name] = result.to_dict()
    return results, _extract_markdown(config, results)


def _extract_markdown(config, results) -> str:
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
def stage_segment(config, run_dir: Path, context: dict):
    """Segment every model's layers with every method, beside nulls (study.run_segmentation);
    tables and figures."""
    import pandas as pd

    from ..plotting import (
        plot_boundary_distributions,
        plot_layer_similarity,
        plot_scale_count_curves,
        plot_scale_projection,
        save_figure,
    )
    from ..study import run_segmentation

    texts = context["texts"]
    hidden = dict(context["hidden"])
    for name in config.tiny_models:
        if name not in hidden:
            ext, X, _ = _extract(name, texts, config)
            hidden[name] = (ext, X)
    results = {}
    for name, (ext, X) in tqdm(hidden.items(), desc="Segmenting", unit="model"):
        tiny = name.startswith("tiny-")  # random-weight test models: no null of their own
        real = name in config.models
        frame = pd.DataFrame(X, columns=ext.get_feature_names_out())
        result = run_segmentation(
            name,
            ext,
            frame,
            texts,
            family=model_family(name, ext._loaded()[0]),
            used=config.segmentation,
            n_bootstrap=config.n_bootstrap,
            random_state=config.random_state,
            random_weights=real and not tiny,
            robustness=real and not tiny and not config.quick,  # quick leaves the grid out
            random_weights_model=tiny,
        )
        context.setdefault("segmenters", {})[name] = (result.chosen, frame)
        stem = file_stem(name)
        figures = {"projection": None, "robustness_figure": None}
        if real:
            figures["projection"] = f"scale_projection_{stem}.png"
            fig = plot_scale_projection(result.chosen, frame, context["labels"], title=name)
            save_figure(fig, run_dir / figures["projection"])
        readme = result.fitted.get("preset: readme")
        ax = plot_layer_similarity(
            result.fitted["cka"],
            title=f"{name}: layer similarity ({len(texts)} texts)",
            compare={"README preset": readme.boundaries_} if readme is not None else {},
        )
        figures["heatmap"] = f"layer_similarity_{stem}.png"
        save_figure(ax.figure, run_dir / figures["heatmap"])
        if result.robustness:
            ax = plot_boundary_distributions(
                result.robustness,
                n_layers=result.n_states,
                title=f"{name}: boundaries over {config.n_bootstrap} refits on 80% of the texts",
            )
            figures["robustness_figure"] = f"segmentation_robustness_{stem}.png"
            save_figure(ax.figure, run_dir / figures["robustness_figure"])
        ax = plot_scale_count_curves(result.curves, title=f"{name}: how many scales")
        figures["scale_count_figure"] = f"scale_count_{stem}.png"
        save_figure(ax.figure, run_dir / figures["scale_count_figure"])
        results[name] = {**result.to_dict(), **figures}
    return results, _segment_markdown(config, results)


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
        if vs and r["random_weights_model"]:
            lines += [
                "",
                f"No verdict against the README preset on {name}: a random-weight test model "
                "has no learned structure for the preset to describe.",
            ]
        elif vs and "cka" in vs:
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
def alignment_configs(config) -> dict:
    """The MSMA rows the ablation fits: all of the original's, or the README's four."""
    from ..alignment import ABLATION_CONFIGS

    rows = {k: v for k, v in ABLATION_CONFIGS.items() if v is not None}
    if config.full_ablation:
        return rows
    return {k: rows[k] for k in ("Full MSMA", "No Geometry", "No Information", "No Curvature")}


def stage_align(config, run_dir: Path, context: dict):
    """The alignment ablation beside the baselines, the claims and a λ search, per model."""
    from ..plotting import plot_alignment_ablation, plot_lambda_search, save_figure
    from ..study import run_alignment_study

    grid = {
        "lambda_geo": list(config.lambda_geo),
        "lambda_info": list(config.lambda_info),
        "lambda_curv": list(config.lambda_curv),
    }
    studies = {}
    for name in tqdm(config.models, desc="Aligning", unit="model"):
        segmenter, frame = context["segmenters"][name]
        study = run_alignment_study(
            frame,
            segmenter,
            model=name,
            configs=alignment_configs(config),
            n_splits=config.align_splits,
            lambda_grid=grid,
            search_folds=config.search_folds,
            random_state=config.random_state,
            n_jobs=2,
        )
        studies[name] = study
        stem = file_stem(name)
        with atomic_path(run_dir / f"ablation_{stem}.csv") as tmp:
            study.scores.to_csv(tmp, index=False)
        with atomic_path(run_dir / f"ablation_comparisons_{stem}.csv") as tmp:
            study.comparisons.to_csv(tmp, index=False)
        save_figure(plot_alignment_ablation(study), run_dir / f"ablation_{stem}.png")
        save_figure(
            plot_lambda_search(study.grid_search, name), run_dir / f"lambda_search_{stem}.png"
        )
    results = {name: s.to_dict() for name, s in studies.items()}
    return results, _align_markdown(config, results)


def _align_markdown(config, results) -> str:
    """The alignment section, from the results and the config only."""
    from ..alignment import PAIRED_METRICS

    method = SEGMENTATION_METHODS[config.segmentation].described
    lines = ["## Alignment ablation (the original README's rows, beside baselines)", ""]
    order = list(PAIRED_METRICS)
    for name, r in results.items():
        lines += [
            f"### {name}",
            "",
            f"{r['n_splits']} random splits of the {r['n_train'] + r['n_test']} texts "
            f"({r['n_train']} training, {r['n_test']} held out; `ShuffleSplit`, seed "
            f"{config.random_state} + split). On each split the {method} scales are fitted "
            "on the training texts only, "
            + (
                "every unit of every scale is z-scored with the training texts' mean and sd "
                "(so no single unit, such as a decoder's rogue dimension, decides the "
                "variance-weighted r²), "
                if r.get("standardized", False)
                else "the raw coordinates are kept (not z-scored), "
            )
            + "one PCA basis with "
            f"{r['n_components']} dimensions (≥ 5 training texts per dimension) is fitted on "
            "the training rows of every scale, and every method maps "
            + ", ".join(p.replace("->", "→") for p in r["pairs"])
            + " from the training texts and is scored on the held-out ones, values averaged "
            "over the maps. MSMA rows are `ManifoldAligner` "
            "MLP maps from the same start (a seeded random rotation per split, so no row "
            "starts at the geometry term's optimum) with the same iteration budget, "
            "validation choosing among the accepted checkpoints; the baselines "
            "are no map, mean and scale matching, closed-form Procrustes, ridge (penalty by "
            "leave-one-out) and CCA. Primary metrics respect pairing (r², top-1 retrieval of "
            "the paired text, chance 1/n, CKA); the original-form metrics are labelled. Mean "
            "± sd over splits; ↑ higher is better, ↓ lower.",
            "",
            "| method | kind | "
            + " | ".join(
                f"{m} ({PAIRED_METRICS[m][1]}) {'↑' if PAIRED_METRICS[m][2] else '↓'}"
                for m in order
            )
            + " |",
            "|---|---|" + "---:|" * len(order),
        ]
        for row_name, vals in r["table"].items():
            cells = [
                "–" if vals[m][0] is None else f"{vals[m][0]:.3g} ± {vals[m][1] or 0:.2g}"
                for m in order
            ]
            lines.append(f"| {row_name} | {vals['kind']} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Full MSMA against every other row (corrected resampled t-test over the "
            f"{r['n_splits']} splits, Nadeau & Bengio; Holm within each metric; "
            "'supported' = Full MSMA better, 'contradicted' = the other better):",
            "",
            "| other | metric | Full MSMA | other | advantage | Holm p | verdict |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for c in r["comparisons"]:
            lines.append(
                f"| {c['other']} | {c['metric']} | {_fmt_optional(c['mean_reference'], '.4f')} "
                f"| {_fmt_optional(c['mean_other'], '.4f')} "
                f"| {_fmt_optional(c['mean_advantage'], '+.4f')} "
                f"| {_fmt_optional(c['p_holm'], '.2g')} | {c['verdict']} |"
            )
        lines += [
            "",
            "The original README's claims on this model: each re-measured in its original "
            "form (the relative change on the original metric, mean ± sd over splits; "
            "reported, not tested: the original metrics ignore which text maps to which) "
            "and tested in a paired form (held-out r², Holm over the claims; 'detectable': "
            "the advantage the test finds with 80% power at Holm's first step, from the "
            "spread over splits):",
            "",
            "| claim | original form: claimed, measured | paired form tested | advantage "
            "(r²) | detectable | Holm p | verdict |",
            "|---|---|---|---:|---:|---:|---|",
        ]
        for c in r["claims"]:
            lo, hi = c["claimed_range"]
            claimed = f"{lo:+.1%}" if lo == hi else f"{lo:+.0%} to {hi:+.0%}"
            measured = (
                "–"
                if c["original_change"] is None
                else f"{c['original_change']:+.1%} ± {(c['original_change_sd'] or 0):.1%}"
            )
            lines.append(
                f"| {c['claim']} | {c['original_metric']}: {claimed}; {measured} "
                f"| {c['tested_form']} | {_fmt_optional(c['advantage'], '+.4f')} "
                f"| {_fmt_optional(c['detectable'], '.4f')} "
                f"| {_fmt_optional(c['p_holm'], '.2g')} | **{c['verdict']}** on {name} |"
            )
        lines += [
            "",
            "How much each term pulled: its share of the gradient norm on the mapped points, "
            "mean over steps, maps and splits (`term_gradient_share_`); a λ > 0 with a share "
            "under 0.001 barely acts. 'Moved from the start': the relative change of the "
            "training predictions from the map's start (`prediction_change_`; the pull is not "
            "the effect: `msma_sklearn.alignment.term_effects` refits without a term).",
            "",
            "| MSMA row | geometry | information | curvature | optimiser steps "
            "| moved from the start |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for cfg, sh in r["term_shares"].items():
            moved = sh.get("prediction_change")
            lines.append(
                f"| {cfg} | {sh['share_geo']:.3f} | {sh['share_info']:.3f} "
                f"| {sh['share_curv']:.3f} | {sh['n_steps']:.0f} "
                f"| {'' if moved is None else f'{moved:.3f}'} |"
            )
        lines += [
            "",
            f"λ grid search (`GridSearchCV` over `Pipeline([ScaleSegmenter, "
            f"{'StandardScaler, ' if r.get('standardized', False) else ''}"
            f"ManifoldAligner])`, {r['search_folds']}-fold, the scales refitted on each "
            "fold's training texts; score = the aligner's held-out r² in its own PCA basis, "
            "so not on the ablation's scale):",
            "",
            "| rank | λ_geo | λ_info | λ_curv | mean r² | sd |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for row in sorted(r["grid_search"], key=lambda x: -x["mean_r2"]):
            tie = " (tied)" if row.get("tied_with_best") else ""
            lines.append(
                f"| {row.get('rank', '')}{tie} | {row['lambda_geo']} | {row['lambda_info']} "
                f"| {row['lambda_curv']} | {row['mean_r2']:.4f} | {row['sd_r2']:.4f} |"
            )
        n_tied = sum(bool(row.get("tied_with_best")) for row in r["grid_search"])
        if n_tied > 1:
            lines += [
                "",
                f"{n_tied} settings tie for the best held-out score (the same score on every "
                "fold's mean): the search cannot tell them apart, and `GridSearchCV` reports "
                "the first in grid order as best.",
            ]
        lines += [
            "",
            f"![{name} ablation](ablation_{file_stem(name)}.png)",
            "",
            f"![{name} lambda search](lambda_search_{file_stem(name)}.png)",
            "",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------- interventions


def intervention_design(config, model: str | None = None):
    """The :class:`~msma_sklearn.study.InterventionDesign` a run's config asks for (for
    ``model``: without the dose-response unless it is among ``dose_response_models``)."""
    from ..study import InterventionDesign

    sweep = model is None or model in config.dose_response_models
    return InterventionDesign(
        kinds=tuple(OPERATORS[k].kind for k in config.intervention_kinds),
        target_kl=tuple(float(t) for t in config.target_kl),
        primary_kl=float(config.primary_kl),
        dose_response_kinds=tuple(OPERATORS[k].kind for k in config.dose_response_kinds)
        if sweep
        else (),
        window=config.window,
        calibration_tol=float(config.calibration_tol),
        n_prompts=config.n_prompts,
        n_calibration=config.n_calibration,
        prompt_words=config.prompt_words,
        n_samples=config.n_samples if sweep else config.n_samples_secondary,
        max_new_tokens=config.max_new_tokens,
        random_state=config.random_state,
    )


def stage_intervene(config, run_dir: Path, context: dict):
    """Every scale x operator on each causal LM, at calibrated doses (the study library)."""
    import pandas as pd

    from ..datasets import load_reference_prose
    from ..plotting import plot_dose_response, plot_intervention_effects, save_figure
    from ..study import prompt_sets, run_intervention_study
    from ._config import STEERED_MODELS

    models = [m for m in config.intervention_models if m in context.get("segmenters", {})]
    if not models:
        why = (
            f"no causal LM to steer: 'interventions.models' left out, and none of the defaults "
            f"({', '.join(STEERED_MODELS)}) is among the run's models"
        )
        return {"skipped": why}, f"## Interventions\n\nSkipped: {why}.\n"
    design = intervention_design(config)
    if config.prompt_source == "reference":
        source = load_reference_prose().texts
        source_name = "paragraphs of the Python Language Reference (stdlib `pydoc_data`)"
    else:
        source = context["texts"]
        source_name = "the run's texts"
    prompts, calibration = prompt_sets(
        source,
        design.n_prompts,
        design.n_calibration,
        design.prompt_words,
        random_state=config.random_state,
    )
    studies, frames = {}, {"effects": [], "fluency": [], "calibration": []}
    for model in models:
        segmenter, _ = context["segmenters"][model]
        study = run_intervention_study(
            model, segmenter, prompts, calibration, intervention_design(config, model)
        )
        studies[model] = study
        for key, frame in (
            ("effects", study.effects_frame()),
            ("fluency", study.fluency_frame()),
            ("calibration", study.calibration_frame()),
        ):
            frames[key].append(frame.assign(model=model))
        save_figure(plot_dose_response(study), run_dir / f"dose_response_{file_stem(model)}.png")
        save_figure(
            plot_intervention_effects(study),
            run_dir / f"intervention_forest_{file_stem(model)}.png",
        )
    for key, name in (
        ("effects", "interventions.csv"),
        ("fluency", "intervention_fluency.csv"),
        ("calibration", "intervention_calibration.csv"),
    ):
        with atomic_path(run_dir / name) as tmp:
            pd.concat(frames[key], ignore_index=True).to_csv(tmp, index=False)
    results = {
        "prompt_source": source_name,
        "models": {m: st.to_dict() for m, st in studies.items()},
        "effects": pd.concat(frames["effects"], ignore_index=True)
        .replace({np.nan: None})
        .to_dict(orient="records"),
    }
    results["design"] = results["models"][models[0]]["design"]
    return results, _intervene_markdown(results, studies, frames["effects"])


def _samples_phrase(studies) -> str:
    """'2 time(s)' or, when the models differ, '2 time(s) on `a` and 1 on `b`'."""
    counts = {m: st.design.n_samples for m, st in studies.items()}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} time(s)"
    parts = [f"{n} time(s) on `{m}`" for m, n in counts.items()]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _intervene_markdown(results, studies, effects) -> str:
    swept = {m: st for m, st in studies.items() if st.design.dose_response_kinds}
    first = next(iter(studies.values()))
    design = next(iter(swept.values())).design if swept else first.design
    power = first.power
    names = {o.kind: o.name for o in OPERATORS.values()}
    lines = [
        "## Interventions",
        "",
        f"Causal LMs: {', '.join(f'`{m}`' for m in studies)}. Prompts: {design.n_prompts} "
        f"evaluation and {design.n_calibration} other calibration prompts, the first "
        f"{design.prompt_words} words of {results['prompt_source']}. Each prompt is continued "
        f"{_samples_phrase(studies)} by nucleus sampling (top-p {design.top_p}, "
        f"{design.max_new_tokens} new tokens), the baseline and every condition sharing the "
        "seeds; the samples of a prompt are averaged before any test, so the prompt is the "
        "unit.",
        "",
        f"Doses. Every operator acts on the {design.window} hidden states at the centre of "
        "each scale (attention: the blocks producing them, hidden state 0 having none), and "
        "its strength is calibrated on the calibration prompts to a mean next-token KL "
        f"(baseline ‖ intervened) of {', '.join(f'{t:g}' for t in design.target_kl)} nats "
        f"(within {design.calibration_tol:.0%}), so scales are compared at matched "
        f"disruption. The exploratory grid and the claims are at {design.primary_kl:g} nats"
        + (
            f"; on {', '.join(f'`{m}`' for m in swept)}, "
            f"{', '.join(names[k] for k in design.dose_response_kinds)} also at every other "
            "dose (the dose-response)"
            + (
                f"; {', '.join(f'`{m}`' for m in studies if m not in swept)} at "
                f"{design.primary_kl:g} nats only ('interventions.dose_response_models')."
                if len(swept) < len(studies)
                else "."
            )
            if swept and len(design.target_kl) > 1
            else "; no operator is generated at other doses in this run."
        ),
        "",
        f"Design power: with {power['n_prompts']} prompts a one-sided paired t-test detects "
        f"d_z ≥ {power['mde_d_z']:.2f} with 80% power at α = {power['alpha']} and d_z ≥ "
        f"{power['mde_d_z_holm']:.2f} at Holm's strictest step over {power['n_claims']} "
        "claims; smaller effects can come out inconclusive.",
        "",
    ]
    for (model, study), model_effects in zip(studies.items(), effects, strict=True):
        lines += [f"### {model}", ""]
        lines += [
            "| scale | operator | hidden states | target KL | strength | KL reached "
            "| median ppl vs baseline | fluency |",
            "|---|---|---|---:|---:|---:|---:|---|",
        ]
        for r in study.conditions:
            c = r.condition
            lines.append(
                f"| {c.scale} | {names[c.kind]} | {_span(list(c.layers))} | {c.target_kl:g} | "
                f"{c.parameter} {c.strength:.3g} | {c.calibrated_kl:.2g}"
                f"{'' if c.converged else ' (not reached)'} | "
                f"{r.fluency.ppl_ratio:.2f}× | "
                f"{'flagged (> 2× baseline)' if r.fluency.flagged else 'ok'} |"
            )
        lines += [
            "",
            f"Baseline median perplexity {study.baseline_fluency['median_perplexity']:.1f} "
            "(continuation given prompt, under the unmodified model). A flagged condition's "
            "text metrics describe degraded text.",
            "",
            f"Effects at next-token KL {design.primary_kl:g} nats, Benjamini-Hochberg q < 0.05 "
            "over every condition x metric of this model (exploratory); percent change of the "
            "prompt means [95% bootstrap CI over prompts]; how often each metric is defined "
            "(with / without the operator) is an outcome of its own, and below 20 defined "
            "prompt pairs no effect is given.",
            "",
            "| scale | operator | effects at FDR 5% | metrics with ≥ 20 defined pairs "
            "| defined share (baseline → treated), sentence metrics |",
            "|---|---|---|---:|---|",
        ]
        frame = model_effects
        frame = frame[frame["target_kl"] == design.primary_kl]
        for (scale, kind), sub in frame.groupby(["scale", "kind"], sort=False):
            measured = sub.dropna(subset=["percent_change"])
            found = measured[measured["q_bh"] < 0.05]
            cells = "; ".join(
                f"{r['metric']} {r['percent_change']:+.1f}% [{r['ci_low']:+.1f}, "
                f"{r['ci_high']:+.1f}], q {r['q_bh']:.2g}"
                for _, r in found.iterrows()
            )
            defined = "; ".join(
                f"{r['metric']} {r['defined_baseline']:.0%} → {r['defined_treated']:.0%}"
                for _, r in sub.iterrows()
                if r["metric"] in ("coherence", "sentiment_spread")
            )
            lines.append(
                f"| {scale} | {names[kind]} | {cells or 'none'} | {len(measured)} of "
                f"{len(sub)} | {defined} |"
            )
        lines += [
            "",
            f"The original README's GPT-2 claims, tested on {model} at the calibrated dose "
            "(amplify = scaling with alpha > 1): one pre-registered metric per claim, "
            "one-sided paired t-tests (in the claimed direction; opposite to it; smaller "
            "than half of it), each Holm-adjusted over the claims; 'supported' when the "
            "first rejects, 'contradicted' when the effect is shown opposite to the claim or "
            "smaller than half of it, 'inconclusive' otherwise or below 20 defined "
            "prompt pairs; the power to detect the claimed size is given beside each.",
            "",
        ]
        for c in results["models"][model]["claims"]:
            fmt = _fmt_optional
            measured = (
                f"measured {fmt(c['measured_percent'], '+.1f')}% [{fmt(c['ci'][0], '+.1f')}, "
                f"{fmt(c['ci'][1], '+.1f')}], d_z {fmt(c['d_z'], '+.2f')}, Holm p "
                f"{fmt(c['p_holm'], '.3g')}, power {fmt(c['power'], '.0%')}; "
                if c["measured_percent"] is not None
                else ""
            )
            guard = " (fluency guard flagged this dose)" if c["fluency_flagged"] else ""
            lines.append(
                f"- {c['claim']} — on {model} at {c['dose']}: {measured}**{c['verdict']}** "
                f"({c['reason']}; {c['n_pairs']} of {c['n_prompts']} prompts defined){guard}."
            )
        lines += [
            "",
            f"![{model} dose-response](dose_response_{file_stem(model)}.png)",
            "",
            f"![{model} intervention effects](intervention_forest_{file_stem(model)}.png)",
            "",
        ]
    lines += [
        "Every condition x metric is in `interventions.csv`, the fluency guard in "
        "`intervention_fluency.csv`, every calibration measurement in "
        "`intervention_calibration.csv`. These verdicts are about these models at these "
        "doses only.",
    ]
    return "\n".join(lines) + "\n"


def _fmt_optional(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _span(layers) -> str:
    return f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else str(layers[0])


STAGES = [
    ("extract", stage_extract),
    ("segment", stage_segment),
    ("align", stage_align),
    ("intervene", stage_intervene),
]
