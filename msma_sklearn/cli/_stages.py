"""Stages of ``msma run``. Each returns ``(json-able results, typed results)``; the report
section of each is rendered from the typed results (:data:`RENDERERS`), also when a stage
is loaded from its checkpoint. A stage with nothing to render returns its section text."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .._registry import OPERATORS
from ..report import (
    alignment_section,
    extraction_section,
    file_stem,
    interventions_section,
    segmentation_section,
)
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


def labels_described(config) -> str:
    """How the report names the run's labels (one sentence; empty without labels)."""
    from ..report import LABELS_DESCRIBED

    if config.texts in CORPORA:
        return LABELS_DESCRIBED[config.texts]
    if not config.label_columns:
        return ""
    return (
        "Labels: " + ", ".join(f"{k} = column `{v}`" for k, v in config.label_columns.items()) + "."
    )


def load_run_texts(config):
    """The run's texts and their labels per scale (bundled corpus or the user's file)."""
    from ..datasets import load_corpus, load_texts

    if config.texts in CORPORA:
        corpus = load_corpus() if config.texts == "bundled" else _word_order(config)
        texts, labels = list(corpus.texts), {s: np.asarray(y) for s, y in corpus.targets.items()}
    else:
        texts = load_texts(config.texts, text_column=config.text_column)
        labels = _file_labels(config) if config.label_columns else {}
    idx = np.arange(len(texts))[:: config.text_every]
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
    results, typed = {}, {}
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
        context.setdefault("probes", {})[name] = result.probes
        with atomic_path(run_dir / f"hidden_states_{file_stem(name)}.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(
                    fh,
                    X=X,
                    layers=ext.layers_,
                    feature_names=ext.get_feature_names_out().astype(str),
                )
        results[name] = result.to_dict()
        typed[name] = replace(result, extractor=None, states=None)  # in the context already
    return results, typed


# ---------------------------------------------------------------- segmentation
def stage_segment(config, run_dir: Path, context: dict):
    """Segment every model's layers with every method, beside nulls (study.run_segmentation);
    tables and figures."""
    import pandas as pd

    from ..plotting import (
        plot_boundary_distributions,
        plot_layer_similarity,
        plot_phase_card,
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
    results, typed, figure_files = {}, {}, {}
    for name, (ext, X) in tqdm(hidden.items(), desc="Segmenting", unit="model"):
        real = name in config.models  # the extra segmentation-only models get no nulls
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
            random_weights="auto" if real else False,
            robustness="auto" if real and not config.quick else False,  # quick: left out
            probes=context.get("probes", {}).get(name),
            profile_texts=config.profile_texts,
            profile_stride=config.profile_stride,
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
        if result.profile is not None:
            fig = plot_phase_card(
                result.profile,
                scale_layers=result.chosen.scale_layers_,
                boundaries={
                    **{label: seg.boundaries_ for label, seg in result.fitted.items()},
                    f"{result.used} (without the profile's texts)": result.profile_boundaries,
                },
                title=f"{name}: layer profile ({result.profile.n_texts} held-out texts), "
                f"{result.used} scales shaded",
            )
            figures["phase_card"] = f"phase_card_{stem}.png"
            save_figure(fig, run_dir / figures["phase_card"])
        results[name] = {**result.to_dict(), **figures}
        typed[name], figure_files[name] = result, figures
    return results, (typed, figure_files)


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
            n_jobs=config.align_n_jobs,
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
    return {name: s.to_dict() for name, s in studies.items()}, studies


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
        calibration_tokens=config.calibration_tokens,
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
    from ._fields import STEERED_MODELS

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
    return results, (studies, source_name)


def _render_extract(config, typed) -> str:
    return extraction_section(
        typed, labels=labels_described(config), random_state=config.random_state
    )


def _render_segment(config, typed) -> str:
    results, figures = typed
    return segmentation_section(results, figures=figures, quick=config.quick)


def _render_align(config, typed) -> str:
    return alignment_section(
        typed, segmentation=config.segmentation, random_state=config.random_state
    )


def _render_intervene(config, typed) -> str:
    studies, prompt_source = typed
    return interventions_section(studies, prompt_source=prompt_source)


#: stage -> ``render(config, typed results) -> Markdown section``
RENDERERS = {
    "extract": _render_extract,
    "segment": _render_segment,
    "align": _render_align,
    "intervene": _render_intervene,
}

STAGES = [
    ("extract", stage_extract),
    ("segment", stage_segment),
    ("align", stage_align),
    ("intervene", stage_intervene),
]
