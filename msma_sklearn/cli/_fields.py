"""The fields of the ``msma run`` configuration: each setting's YAML path, default,
value check, comment and ``quick`` value, in one table (:data:`FIELDS`)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._registry import OPERATORS
from .._registry import SEGMENTATION_METHODS as _SEGMENTATION

__all__ = ["FIELDS", "STEERED_MODELS", "ConfigError", "Field", "run_id_problem"]


class ConfigError(ValueError):
    """A config file or value that cannot be used; raised before any work starts."""


# ------------------------------------------------------------------ checks
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(lo: int) -> Callable:
    def check(v):
        if not _is_int(v) or v < lo:
            return f"an integer >= {lo}"
        return None

    return check


def _zero_or_int(lo: int) -> Callable:
    def check(v):
        if not _is_int(v) or (v != 0 and v < lo):
            return f"0 (off) or an integer >= {lo}"
        return None

    return check


def _auto_or_int(lo: int) -> Callable:
    def check(v):
        if v == "auto":
            return None
        return None if _is_int(v) and v >= lo else f'"auto" or an integer >= {lo}'

    return check


def _bool(v):
    return None if isinstance(v, bool) else "true or false"


def _str(v):
    return None if isinstance(v, str) else "a string"


def _choice(*options) -> Callable:
    def check(v):
        return None if v in options else f"one of {list(options)}"

    return check


def _registry_choice(registry) -> Callable:
    """One of the registry's selectable entries, read when checked (so a new entry counts)."""

    def check(v):
        names = [n for n, m in registry.items() if m.selectable]
        return None if v in names else f"one of {names}"

    return check


def _str_list(allowed=None, *, empty=True) -> Callable:
    def check(v):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            return "a list of strings"
        if not empty and not v:
            return "a non-empty list of strings"
        if len(set(v)) != len(v):
            return "a list without repeats"
        if allowed is not None and any(x not in allowed for x in v):
            return f"a list drawn from {list(allowed)}"
        return None

    return check


def _number_list(lo: float) -> Callable:
    def check(v):
        if (
            not isinstance(v, list)
            or not v
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
            or not all(math.isfinite(x) and x >= lo for x in v)  # NaN compares False
        ):
            return f"a non-empty list of finite numbers >= {lo}"
        return None

    return check


def _positive_number(v):
    ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and v == v
    return None if ok and v != float("inf") else "a positive number"


def _int_list(v):
    if not isinstance(v, list) or not v or not all(_is_int(x) for x in v):
        return "a non-empty list of integers"
    return None


#: a run id is one folder name: letters, digits, '.', '_' and '-', not starting with '.'
_RUN_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def run_id_problem(v) -> str | None:
    """What is wrong with a run id ('' = a timestamp), or None."""
    if not isinstance(v, str):
        return "a string"
    if v and (not _RUN_ID.match(v) or ".." in v):
        return (
            "one folder name of letters, digits, '.', '_' and '-' (not starting with '.', "
            "no '..', at most 128 characters; choose the parent folder with output.dir / "
            "--out-dir)"
        )
    return None


def _label_map(v):
    if not isinstance(v, dict) or not all(
        k in ("global", "intermediate", "local") and isinstance(c, str) for k, c in v.items()
    ):
        return "a mapping from global / intermediate / local to a column name"
    return None


# ------------------------------------------------------------------ fields
@dataclass(frozen=True)
class Field:
    path: str  # dotted YAML path
    attr: str  # RunConfig attribute
    default: Any
    check: Callable
    comment: str
    quick: Any = None  # value under `quick: true` unless the file sets it


#: the causal LMs the default study steers
STEERED_MODELS = ("smollm2-135m", "gemma3-270m")

FIELDS: tuple[Field, ...] = (
    Field(
        "models",
        "models",
        ["minilm", "smollm2-135m", "gemma3-270m"],
        _str_list(empty=False),
        "models to study: offline names (minilm, smollm2-135m, gemma3-270m, tiny-gpt2, ...), "
        "local directories or Hugging Face ids",
        quick=["minilm", "smollm2-135m"],
    ),
    Field(
        "tiny_models",
        "tiny_models",
        ["tiny-gpt2", "tiny-bert", "tiny-roberta", "tiny-t5"],
        _str_list(),
        "extra models in the layer-distribution table only (GPT-2, BERT, RoBERTa and T5 "
        "architectures, randomly initialised); [] to leave them out",
    ),
    Field(
        "texts",
        "texts",
        "word_order",
        _str,
        "'word_order' (256 documents: the opening sentences of docstrings of installed "
        "packages, with sentence order and bigram-shift labels planted; load_word_order), "
        "'bundled' (the labelled 256-text corpus written for this project) or a .txt (one "
        "text per line), .csv or .jsonl file",
        quick="bundled",
    ),
    Field("text_column", "text_column", "text", _str, "column / key of the texts in .csv / .jsonl"),
    Field(
        "label_columns",
        "label_columns",
        {},
        _label_map,
        "optional labels in .csv / .jsonl for the probes and plots, e.g. "
        "{global: topic, local: negation}",
    ),
    Field(
        "text_every",
        "text_every",
        1,
        _int(1),
        "keep every n-th text (quick: 4, which keeps the bundled corpus balanced over its "
        "8 x 4 x 2 label cells)",
        quick=4,
    ),
    Field(
        "quick",
        "quick",
        False,
        _bool,
        "small fast run: the lighter settings marked 'quick' (every 4th text, the bundled "
        "corpus unless texts is set)",
    ),
    Field("device", "device", "auto", _str, "auto, cpu, cuda, cuda:1, mps ..."),
    Field("seed", "random_state", 0, _int(0), "seeds splits, bootstraps, maps and interventions"),
    Field("output.dir", "out_dir", "results", _str, "runs are written to <dir>/<run_id>/"),
    Field(
        "output.run_id",
        "run_id",
        "",
        run_id_problem,
        "'' = a timestamp; a run id that already holds finished stages of the same config "
        "resumes from them",
    ),
    Field(
        "extraction.pooling",
        "pooling",
        "mean",
        _choice("mean", "mean_all", "first", "cls", "last", "max"),
        "how token states become one vector per text",
    ),
    Field("extraction.max_length", "max_length", 128, _int(1), "tokens kept per text (warned)"),
    Field(
        "extraction.batch_size",
        "batch_size",
        "auto",
        _auto_or_int(1),
        'texts per forward pass ("auto": 32 on CPU, a token budget on GPU)',
    ),
    Field("probes.cv_folds", "cv_folds", 5, _int(2), "folds of the per-layer linear probes"),
    Field(
        "segmentation.method",
        "segmentation",
        "cka",
        _registry_choice(_SEGMENTATION),
        "whose scales the alignment and interventions use (every method is tabulated)",
    ),
    Field(
        "segmentation.n_bootstrap",
        "n_bootstrap",
        20,
        _int(0),
        "subsample refits for boundary confidence",
        quick=5,
    ),
    Field(
        "segmentation.profile_texts",
        "profile_texts",
        64,
        _zero_or_int(10),  # TwoNN needs 10 points
        "held-out texts of the layer profile (logit lens, block deletion, angular distance, "
        "intrinsic dimension, largest unit) that the scales are tested against; 0 leaves it out",
        quick=16,
    ),
    Field(
        "segmentation.profile_stride",
        "profile_stride",
        4,
        _int(1),
        "the profile's logit lens and block deletion read every this many tokens (their cost "
        "is the LM head per position and layer)",
    ),
    Field(
        "alignment.n_splits",
        "align_splits",
        10,
        _int(2),
        "random train/held-out splits of the ablation (the corrected resampled t-test's "
        "repeats); the scales are refitted on each split's training texts",
        quick=2,
    ),
    Field(
        "alignment.n_jobs",
        "align_n_jobs",
        2,
        _int(1),
        "parallel fits of the ablation (results do not depend on it; tested)",
    ),
    Field(
        "alignment.full_ablation",
        "full_ablation",
        True,
        _bool,
        "all of the original's MSMA rows (false: the README's four); the six baselines always",
        quick=False,
    ),
    Field(
        "alignment.lambda_geo",
        "lambda_geo",
        [0.1, 1.0],
        _number_list(0),
        "λ_geo grid",
        quick=[1.0],
    ),
    Field("alignment.lambda_info", "lambda_info", [0.0, 0.1], _number_list(0), "λ_info grid"),
    Field(
        "alignment.lambda_curv",
        "lambda_curv",
        [0.0, 0.01],
        _number_list(0),
        "λ_curv grid",
        quick=[0.01],
    ),
    Field("alignment.cv_folds", "search_folds", 3, _int(2), "folds of the λ grid search", quick=2),
    Field(
        "interventions.models",
        "intervention_models",
        list(STEERED_MODELS),
        _str_list(empty=False),
        "causal LMs to steer (each must be among models; left out: the defaults that are)",
        quick=["smollm2-135m"],
    ),
    Field(
        "interventions.kinds",
        "intervention_kinds",
        list(OPERATORS),
        _str_list(OPERATORS, empty=False),
        "operators, each calibrated to the target KLs: "
        + ", ".join(f"{o.name} ({o.described})" for o in OPERATORS.values()),
        quick=["amplify"],
    ),
    Field(
        "interventions.target_kl",
        "target_kl",
        [0.1, 0.3, 1.0],
        _number_list(1e-9),
        "mean next-token KL (nats) every scale x operator is calibrated to",
        quick=[0.3],
    ),
    Field(
        "interventions.primary_kl",
        "primary_kl",
        0.3,
        _positive_number,
        "the dose (one of target_kl) of the exploratory grid and of the claims",
    ),
    Field(
        "interventions.dose_response",
        "dose_response_kinds",
        ["amplify"],
        _str_list(OPERATORS),
        "operators also generated at every other target KL (the dose-response)",
        quick=[],
    ),
    Field(
        "interventions.dose_response_models",
        "dose_response_models",
        ["smollm2-135m"],
        _str_list(),
        "steered models that get the dose-response (each must be among interventions.models; "
        "left out: the default if steered); the others are studied at primary_kl only",
    ),
    Field(
        "interventions.calibration_tol",
        "calibration_tol",
        0.15,
        _positive_number,
        "relative tolerance of the calibrated KL",
        quick=0.3,
    ),
    Field(
        "interventions.window",
        "window",
        3,
        _int(1),
        "hidden states at the centre of each scale the operators act on",
    ),
    Field(
        "interventions.prompts",
        "prompt_source",
        "reference",
        _choice("reference", "texts"),
        "'reference' (paragraphs of the Python Language Reference, in the stdlib) or "
        "'texts' (the run's texts; they must be longer than prompt_words)",
    ),
    Field(
        "interventions.prompt_words",
        "prompt_words",
        24,
        _int(1),
        "words per prompt (the start of a text)",
    ),
    Field(
        "interventions.n_prompts",
        "n_prompts",
        32,
        _int(2),
        "evaluation prompts per condition (the unit of every test)",
        quick=8,
    ),
    Field(
        "interventions.n_calibration",
        "n_calibration",
        32,
        _int(1),
        "other prompts the doses are calibrated on",
        quick=4,
    ),
    Field(
        "interventions.calibration_tokens",
        "calibration_tokens",
        32,
        _int(0),
        "tokens of the baseline's continuation the dose's KL is averaged over (teacher-forced); "
        "0: the prompt's next token only",
        quick=8,
    ),
    Field(
        "interventions.samples",
        "n_samples",
        2,
        _int(1),
        "sampled continuations per prompt (top-p 0.95), seeds shared with the baseline",
        quick=1,
    ),
    Field(
        "interventions.samples_without_dose_response",
        "n_samples_secondary",
        1,
        _int(1),
        "sampled continuations per prompt on the steered models without the dose-response "
        "(studied at primary_kl only; one sample keeps the full study near an hour)",
    ),
    Field(
        "interventions.max_new_tokens",
        "max_new_tokens",
        128,
        _int(1),
        "tokens generated per continuation (128: MTLD needs two completed factors and the "
        "moving-average TTR 25 words; at 64 most continuations had neither)",
        quick=12,
    ),
)
