"""The ``msma run`` configuration: one table of fields, read from YAML, checked up front.

Every setting is a :class:`Field` with its YAML path, default, value check and
comment; the defaults, the ``quick`` profile, the validation messages and the
commented file that ``msma init-config`` writes all come from :data:`FIELDS`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

from ._fields import FIELDS, ConfigError

__all__ = ["FIELDS", "ConfigError", "RunConfig", "default_config_text", "load_config"]


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
    text_every: int
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
    profile_texts: int
    profile_stride: int
    align_splits: int
    align_n_jobs: int
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
    calibration_tokens: int
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
