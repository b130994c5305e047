"""The checks ``msma run`` makes before it writes anything: enough texts for every stage,
every model loadable and fit for its role, all problems listed at once."""

from __future__ import annotations

import math
import time

from ._config import ConfigError, RunConfig

__all__ = ["text_requirements"]


#: held-out share of each alignment split (run_alignment_study's test_size)
ALIGN_TEST_SIZE = 0.2
#: debiased CKA divides by n - 3: the fewest rows any CKA in the study is computed on
CKA_MIN_ROWS = 4
#: the layer profile's intrinsic dimension (TwoNN) needs this many held-out texts
PROFILE_MIN_TEXTS = 10


def _fewest_rows_holding_out(k: int, share: float) -> int:
    """The fewest rows n whose held-out part, ``ceil(share * n)`` as ``ShuffleSplit`` takes
    it, holds at least ``k`` rows."""
    n = k
    while math.ceil(share * n) < k:
        n += 1
    return n


def text_requirements(config: RunConfig) -> list[tuple[int, str]]:
    """The fewest texts each stage needs under ``config``, with the stage and setting
    that set it: ``[(minimum, reason), ...]``."""
    need = [
        (
            CKA_MIN_ROWS,
            f"segmentation: debiased CKA between layers needs at least {CKA_MIN_ROWS} texts",
        ),
        (
            _fewest_rows_holding_out(CKA_MIN_ROWS, ALIGN_TEST_SIZE),
            f"alignment: each of the alignment.n_splits={config.align_splits} splits holds "
            f"out {ALIGN_TEST_SIZE:.0%} of the texts and scores CKA on them, which needs at "
            f"least {CKA_MIN_ROWS} held-out texts",
        ),
    ]
    if config.profile_texts:
        need.append(
            (
                2 * PROFILE_MIN_TEXTS,
                "segmentation: the layer profile (segmentation.profile_texts="
                f"{config.profile_texts}) holds out at most half of the texts, and its "
                f"intrinsic dimension needs at least {PROFILE_MIN_TEXTS} of them "
                "(segmentation.profile_texts: 0 turns the profile off)",
            )
        )
    if config.prompt_source == "texts" and config.intervention_models:
        need.append(
            (
                config.n_prompts + config.n_calibration,
                f"interventions: interventions.prompts='texts' draws n_prompts="
                f"{config.n_prompts} evaluation and n_calibration={config.n_calibration} "
                "calibration prompts from the texts",
            )
        )
    return need


def _too_few_texts(config: RunConfig, n_texts: int) -> list[str]:
    where = (
        f" (after {'quick: true' if config.quick else 'text_every'} keeps every "
        f"{config.text_every}th text)"
        if config.text_every > 1
        else ""
    )
    return [
        f"{config.texts!r} gives {n_texts} texts{where}; {why}, so the run needs at least "
        f"{minimum}. Add texts{' or set quick: false' if config.quick else ''}."
        for minimum, why in text_requirements(config)
        if n_texts < minimum
    ]


def _preflight(config: RunConfig) -> dict:
    """Fail before any work on what can be checked up front, all at once: the texts (enough
    for every stage) and the models (each loads; max_length fits it; each steered one
    generates text). Returns each model's load time (s)."""
    from ..extraction import load_model
    from ..extraction._batching import _position_limit
    from ..interventions._intervener import _is_generative
    from ._stages import load_run_texts, model_family

    errors = []
    try:
        texts, _ = load_run_texts(config)
    except (OSError, ValueError) as exc:
        errors.append(str(exc))
    else:
        errors += _too_few_texts(config, len(texts))
    seconds = {}
    for name in config.models:
        start = time.perf_counter()
        try:
            model, _ = load_model(name, device=config.device)
        except (OSError, ValueError, ImportError) as exc:
            errors.append(f"Model {name!r} cannot be loaded: {exc}")
            continue
        seconds[name] = time.perf_counter() - start
        limit = _position_limit(model.config)
        if limit is not None and config.max_length > limit:
            errors.append(
                f"'extraction.max_length' is {config.max_length}, but model {name!r} encodes at "
                f"most {limit} positions; use max_length <= {limit}."
            )
        if config.segmentation == "readme" and model_family(name, model) is None:
            errors.append(
                f"segmentation.method 'readme' uses the original README's rows (GPT-2, BERT, "
                f"RoBERTa, T5, and decoder-only causal LMs as GPT-2); model {name!r} is a "
                f"{model.config.model_type} model with no row. Use 'cka' (the default), 'mi', "
                "'attention_span' or 'uniform'."
            )
        if name in config.intervention_models and not _is_generative(model):
            errors.append(
                f"'interventions.models' names {name!r}, a {model.config.model_type} model "
                "that does not generate text; steer a causal LM (e.g. smollm2-135m) or leave "
                "it out of 'interventions.models'."
            )
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        raise ConfigError(
            f"msma run cannot start ({len(errors)} problems):\n  - " + "\n  - ".join(errors)
        )
    return seconds
