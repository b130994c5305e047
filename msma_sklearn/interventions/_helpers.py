"""Small pieces the Intervener's modules share: hooks that count steps and capture
outputs, model-kind tests, submodule lookup, per-row KL, the centre of a scale."""

from __future__ import annotations

import math

import numpy as np
import torch

#: Representation metrics of encoder-only models, with their value when nothing changes.
REPRESENTATION_METRICS = {
    "state_shift": 0.0,
    "state_cosine": 1.0,
    "prediction_kl": 0.0,
    "top1_agreement": 1.0,
}

# self-attention projections: Llama-style, GPT-2, BERT / RoBERTa, T5 (layer 0 = self-attention)
# Models with a norm on the queries (Gemma 3, Qwen3, OLMo 2) would undo a scaling of
# q_proj's output, so the temperature acts on the normalised queries there.
_Q_PROJ = (
    "self_attn.q_norm",
    "self_attn.q_proj",
    "attn.c_attn",
    "attention.self.query",
    "layer.0.SelfAttention.q",
)
_O_PROJ = ("self_attn.o_proj", "attn.c_proj", "attention.output.dense", "layer.0.SelfAttention.o")


def _step_counter(state):
    def hook(module, args, kwargs):
        state["step"] += 1

    return hook


def _capture(store: dict):
    def hook(module, args, kwargs, output):
        store["h"] = output[0]

    return hook


def _is_seq2seq(model) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def _is_generative(model) -> bool:
    return bool(getattr(model, "can_generate", lambda: False)())


def _submodule(block, paths):
    for path in paths:
        module = block
        try:
            for part in path.split("."):
                module = getattr(module, part)
        except AttributeError:
            continue
        return module
    raise ValueError(
        f"kind='attention' cannot find the self-attention projection of "
        f"{type(block).__name__} (looked for {', '.join(paths)})."
    )


def kl_rows(base: torch.Tensor, treated: torch.Tensor) -> np.ndarray:
    """Row-wise KL(base || treated) of log-probability rows, in nats (float64).

    A few rows at a time: the same sums as one whole-array expression, but its
    temporaries for 1,000 rows of a 262,144-token vocabulary (Gemma 3) are a gigabyte
    each, and 8 rows stay in cache (6.3 s against 1.0 s for 1,022 such rows, here)."""
    kl = torch.empty(base.shape[0], dtype=base.dtype)
    for start in range(0, base.shape[0], 8):
        b = base[start : start + 8]
        kl[start : start + 8] = (b.exp() * (b - treated[start : start + 8])).sum(-1)
    return kl.clamp(min=0.0).numpy().astype(np.float64)


def _baseline_rows(baseline, n_prompts: int):
    """The unmodified model's rows as one tensor and the rows per prompt, or (None, None)."""
    if baseline is None:
        return None, None
    if isinstance(baseline, (str, bytes)) or len(baseline) != n_prompts:
        raise ValueError(
            f"baseline must hold one array of log-probability rows per prompt ({n_prompts}), "
            f"got {type(baseline).__name__} of length {len(baseline)}."
        )
    parts = [torch.as_tensor(np.asarray(part, dtype=np.float32)) for part in baseline]
    parts = [part.reshape(1, -1) if part.ndim == 1 else part for part in parts]
    return torch.cat(parts), [len(part) for part in parts]


def centred_window(layers, window: int) -> list[int]:
    """The ``window`` consecutive entries at the centre of ``layers`` (lower middle on
    a parity mismatch; all of them when the scale is smaller than the window).

    Parameters
    ----------
    layers : sequence of int
        A scale's hidden-state indices, in order.
    window : int
        How many to keep.

    Returns
    -------
    list of int

    Examples
    --------
    >>> centred_window([3, 4, 5, 6, 7, 8, 9, 10], 3)
    [5, 6, 7]
    >>> centred_window([0, 1], 3)
    [0, 1]
    """
    layers = sorted(int(j) for j in layers)
    if window >= len(layers):
        return layers
    first = (len(layers) - window) // 2
    return layers[first : first + window]


def _check_finite(estimator, names) -> None:
    """NaN or infinity passes scikit-learn's Interval checks; refuse it by name."""
    bad = {n: getattr(estimator, n) for n in names if not math.isfinite(getattr(estimator, n))}
    if bad:
        shown = ", ".join(f"{n}={v!r}" for n, v in bad.items())
        raise ValueError(f"{type(estimator).__name__} needs finite numbers; got {shown}.")
