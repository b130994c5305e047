"""The ``msma run`` configuration: one table of fields, read from YAML, checked up front.

Every setting is a :class:`Field` with its YAML path, default, value check and
comment; the defaults, the ``quick`` profile, the validation messages and the
commented file that ``msma init-config`` writes all come from :data:`FIELDS`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .._registry import OPERATORS
from .._registry import SEGMENTATION_METHODS as _SEGMENTATION

__all__ = ["FIELDS", "ConfigError", "RunConfig", "default_config_text", "load_config"]


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
        "quick",
        "quick",
        False,
        _bool,
        "small fast run: every 4th text (the bundled corpus unless texts is set) and the "
        "lighter settings marked 'quick'",
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
        "alignment.n_splits",
        "align_splits",
        10,
        _int(2),
        "random train/held-out splits of the ablation (the corrected resampled t-test's "
        "repeats); the scales are refitted on each split's training texts",
        quick=2,
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
        16,
        _int(1),
        "other prompts the doses are calibrated on",
        quick=4,
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
        64,
        _int(1),
        "tokens generated per continuation",
        quick=12,
    ),
)

_BY_PATH = {f.path: f for f in FIELDS}
_SECTIONS = sorted({f.path.split(".")[0] for f in FIELDS if "." in f.path})


@dataclass
class RunConfig:
    """Resolved settings of one ``msma run`` (attribute names of :data:`FIELDS`)."""

    models: list
    tiny_models: list
    texts: str
    text_column: str
    label_columns: dict
    quick: bool
    device: str
    random_state: int
    out_dir: str
    run_id: str
    pooling: str
    max_length: int
    batch_size: int | str
    cv_folds: int
    segmentation: str
    n_bootstrap: int
    align_splits: int
    full_ablation: bool
    lambda_geo: list
    lambda_info: list
    lambda_curv: list
    search_folds: int
    intervention_models: list
    intervention_kinds: list
    target_kl: list
    primary_kl: float
    dose_response_kinds: list
    dose_response_models: list
    calibration_tol: float
    window: int
    prompt_source: str
    prompt_words: int
    n_prompts: int
    n_calibration: int
    n_samples: int
    n_samples_secondary: int
    max_new_tokens: int
    n_texts: int = 0  # filled in from the texts

    def as_yaml_dict(self) -> dict:
        """The settings as the nested mapping a config file holds."""
        out: dict = {}
        for f in FIELDS:
            node = out
            *parents, leaf = f.path.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = getattr(self, f.attr)
        return out

    def fingerprint(self) -> str:
        """SHA-256 of every setting that changes results (not where they are written) and of
        the package version, whose code produced the checkpoints a resumed run would load."""
        from .. import __version__

        skip = {"out_dir", "run_id", "n_texts"}
        data = {k.name: getattr(self, k.name) for k in fields(self) if k.name not in skip}
        data["msma_sklearn_version"] = __version__
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _flatten(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigError(f"Config keys must be strings, got {key!r}.")
        path = f"{prefix}{key}"
        if path in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"'{path}' must be a section (a mapping of its settings), got {value!r}."
                )
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def load_config(path: str | Path | None = None, **overrides) -> RunConfig:
    """Read, check and resolve a config; ``overrides`` are dotted paths (CLI flags).

    Raises :class:`ConfigError` naming each bad key or value and what is valid.
    """
    data: dict = {}
    source = "the defaults"
    if path is not None:
        import yaml

        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"Config file {source!r} does not exist.")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"Config file {source!r} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"Config file {source!r} must hold a mapping of settings, got "
                f"{type(loaded).__name__}."
            )
        data = _flatten(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    errors = []
    for key in data:
        if key not in _BY_PATH:
            errors.append(f"unknown key '{key}' (valid keys: {', '.join(_BY_PATH)})")
    quick = data.get("quick", False)
    values, bad = {}, set()
    for f in FIELDS:
        if f.path in data:
            value = data[f.path]
            problem = f.check(value)
            if problem:
                errors.append(f"'{f.path}' must be {problem}, got {value!r}")
                bad.add(f.attr)
        else:
            value = f.quick if (quick is True and f.quick is not None) else f.default
        values[f.attr] = value
    errors += _disagreements(values, data, bad)
    if errors:
        raise ConfigError(f"Config from {source} rejected:\n  - " + "\n  - ".join(errors))
    return RunConfig(**values)


def _disagreements(values: dict, data: dict, bad: set) -> list[str]:
    """Settings that must agree with each other, checked wherever the settings involved
    are themselves valid (so every problem of a file is listed at once). Resolves the
    defaults of the steered models in ``values``."""
    errors = []
    if {"models", "intervention_models"}.isdisjoint(bad):
        if "interventions.models" not in data:  # the defaults that this run studies
            values["intervention_models"] = [
                m for m in values["intervention_models"] if m in values["models"]
            ]
        missing = [m for m in values["intervention_models"] if m not in values["models"]]
        if missing:
            errors.append(
                f"'interventions.models' {missing} must be among 'models' "
                f"{values['models']} (their scales come from the segmentation)"
            )
    if {"intervention_models", "dose_response_models"}.isdisjoint(bad):
        if "interventions.dose_response_models" not in data:
            values["dose_response_models"] = [
                m for m in values["dose_response_models"] if m in values["intervention_models"]
            ]
        outside = [
            m for m in values["dose_response_models"] if m not in values["intervention_models"]
        ]
        if outside:
            errors.append(
                f"'interventions.dose_response_models' {outside} must be among "
                f"'interventions.models' {values['intervention_models']}"
            )
    if (
        {"label_columns", "texts"}.isdisjoint(bad)
        and values["label_columns"]
        and not str(values["texts"]).endswith((".csv", ".jsonl"))
    ):
        errors.append(
            f"'label_columns' reads labels from the columns of a .csv or .jsonl texts file; "
            f"'texts' is {values['texts']!r}, which has no columns (the bundled corpora carry "
            "their own labels). Use a .csv / .jsonl file or leave label_columns out"
        )
    if {"primary_kl", "target_kl"}.isdisjoint(bad) and values["primary_kl"] not in values[
        "target_kl"
    ]:
        errors.append(
            f"'interventions.primary_kl' ({values['primary_kl']}) must be one of "
            f"'interventions.target_kl' {values['target_kl']}"
        )
    return errors


def _yaml_value(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and lists are valid YAML


def default_config_text() -> str:
    """The default config as YAML, every setting with its comment (``msma init-config``)."""
    lines = [
        "# msma run configuration. Run: msma run --config THIS_FILE",
        "# Values marked 'quick:' are used instead when quick is true and the file leaves",
        "# that setting out.",
        "",
    ]
    section = None
    for f in FIELDS:
        parts = f.path.split(".")
        indent = ""
        if len(parts) == 2:
            if parts[0] != section:
                section = parts[0]
                lines += ["", f"{section}:"]
            indent = "  "
        elif section is not None:
            section = None
            lines.append("")
        note = f" (quick: {_yaml_value(f.quick)})" if f.quick is not None else ""
        lines.append(f"{indent}# {f.comment}{note}")
        lines.append(f"{indent}{parts[-1]}: {_yaml_value(f.default)}")
    return "\n".join(lines) + "\n"
