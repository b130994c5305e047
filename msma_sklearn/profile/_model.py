"""Per-layer signals that need the model itself: the logit lens (each hidden state read
out through the model's own final norm and head) and block deletion (the next-token
distribution when one block is skipped)."""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import numpy as np
import torch
from tqdm.auto import tqdm

from ..extraction import load_model, pad_batch, pad_token_id, resolve_layout
from ..utils import attached_hooks
from ..utils._warnings import warn_user

__all__ = ["deletion_kl", "logit_lens_kl"]

#: attribute names of a decoder stack's final norm (Llama/Gemma, GPT-2, OPT/T5, Phi)
_FINAL_NORMS = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


def _causal(model_spec):
    if isinstance(model_spec, tuple):  # an already loaded (model, tokenizer)
        model, tokenizer = model_spec
        model_spec = type(model).__name__
    else:
        model, tokenizer = load_model(model_spec)
    layout = resolve_layout(model)
    if not layout.causal or getattr(model.config, "is_encoder_decoder", False):
        raise ValueError(
            f"{model_spec!r} is not a decoder-only causal LM; the logit lens and block "
            "deletion read next-token distributions."
        )
    if model.get_output_embeddings() is None:
        raise ValueError(f"{model_spec!r} has no language-model head to read out through.")
    return model, tokenizer, layout


def _final_norm(layout):
    for name in _FINAL_NORMS:
        norm = getattr(layout.module, name, None)
        if isinstance(norm, torch.nn.Module):
            return norm
    raise ValueError(
        f"Cannot find the final norm of {type(layout.module).__name__} (looked for "
        f"{list(_FINAL_NORMS)})."
    )


def _batches(tokenizer, model, texts, max_length, batch_size):
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_length)[
        "input_ids"
    ]
    pad = pad_token_id(tokenizer, model)
    device = next(model.parameters()).device
    for start in range(0, len(ids), batch_size):
        input_ids, mask = pad_batch(ids[start : start + batch_size], pad, "right")
        yield input_ids.to(device), mask.to(device)


def _kept(model, input_ids, stride: int, sink_tokens: int = 0):
    """The positions read out (every ``stride``-th after the first ``sink_tokens``) and
    the forward's keyword for them."""
    width = input_ids.shape[1]
    keep = torch.arange(min(sink_tokens, width), width, stride, device=input_ids.device)
    if keep.numel() == 0:
        raise ValueError(
            f"No position is left to read: texts of {input_ids.shape[1]} tokens with "
            f"sink_tokens={sink_tokens}. Use longer texts or fewer sink tokens."
        )
    takes = "logits_to_keep" in inspect.signature(model.forward).parameters
    whole = stride == 1 and sink_tokens == 0
    return keep, ({"logits_to_keep": keep} if takes and not whole else {})


def _at(logits: torch.Tensor, keep: torch.Tensor, sliced: dict) -> torch.Tensor:
    """The logits of the kept positions (already sliced when the model took the keyword)."""
    return logits if sliced else logits[:, keep]


def _check_stride(stride, sink_tokens=0) -> tuple[int, int]:
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}.")
    if int(sink_tokens) != sink_tokens or sink_tokens < 0:
        raise ValueError(f"sink_tokens must be a non-negative integer, got {sink_tokens!r}.")
    return int(stride), int(sink_tokens)


def _token_kl(log_p: torch.Tensor, log_q: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Per row: KL(p || q) of the next-token distributions, mean over real tokens."""
    kl = (log_p.exp() * (log_p - log_q)).sum(-1)  # (B, T)
    m = mask.to(kl.dtype)
    count = m.sum(-1)
    mean = (kl * m).sum(-1) / count.clamp(min=1)
    # a text with no position read (shorter than sink_tokens + 1): undefined, not 0
    return torch.where(count > 0, mean, torch.full_like(mean, float("nan"))).cpu().numpy()


def _warn_unread(values: np.ndarray, what: str) -> None:
    n = int(np.isnan(values).all(axis=1).sum())
    if n:
        warn_user(
            f"{what}: {n} of {len(values)} text(s) have no token left to read after the "
            "sink tokens; their values are NaN and the profile's means leave them out. Pass "
            "longer texts or fewer sink_tokens."
        )


def _logprobs(model, logits: torch.Tensor) -> torch.Tensor:
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    if cap:  # Gemma 2-style soft-capping, as the model's own forward applies it
        logits = torch.tanh(logits / cap) * cap
    return torch.log_softmax(logits.float(), dim=-1)


def _recorder(outputs: list):
    """A forward hook that keeps each call's output (a copy of its hidden states)."""

    def hook(module, args, kwargs, output):
        first = output[0] if isinstance(output, tuple) else output
        outputs.append((first.clone(), output[1:] if isinstance(output, tuple) else None))

    return hook


@contextmanager
def _replayed(blocks, outputs):
    """Each block returns its recorded output without computing (its own forward set
    aside on the instance, restored afterwards)."""

    def replay(first, rest):
        def forward(*args, **kwargs):
            h = first.clone()  # a later block may write into its input
            return h if rest is None else (h, *rest)

        return forward

    try:
        for block, (first, rest) in zip(blocks, outputs, strict=False):
            block.forward = replay(first, rest)
        yield
    finally:
        for block in blocks:
            block.__dict__.pop("forward", None)


def logit_lens_kl(
    model,
    texts,
    *,
    max_length: int = 128,
    batch_size: int = 4,
    stride: int = 1,
    sink_tokens: int = 0,
    verbose: bool = True,
) -> np.ndarray:
    """KL(final || lens) per text and hidden state: each state read out through the
    model's own final norm and head (nostalgebraist 2020), against the model's output.

    Index ``j < L`` is the input of block ``j`` (0: the embeddings) put through the
    final norm and the head; index ``L`` is the stack's output, whose read-out is
    the model's own distribution (KL 0). Averaged over each text's real tokens.

    Parameters
    ----------
    model : str or (model, tokenizer)
        A decoder-only causal LM spec :func:`~msma_sklearn.extraction.load_model`
        takes, or a loaded model and its tokenizer.
    texts : sequence of str
        The texts.
    max_length : int, default=128
        Tokens per text (longer texts are truncated).
    batch_size : int, default=4
        Texts per forward pass.
    stride : int, default=1
        Read every ``stride``-th position (the head's cost is per position
        and per layer: 262k outputs on Gemma-3).
    sink_tokens : int, default=0
        Leading positions left out of the mean (attention sinks: on causal LMs
        the first token's state is an outlier; the extractor's ``sink_tokens_``).
    verbose : bool, default=True
        Progress bar.

    Returns
    -------
    ndarray of shape (n_texts, n_layers + 1)
    """
    stride, sink_tokens = _check_stride(stride, sink_tokens)
    lm, tokenizer, layout = _causal(model)
    norm, head = _final_norm(layout), lm.get_output_embeddings()
    out = []
    batches = list(_batches(tokenizer, lm, texts, max_length, batch_size))
    for input_ids, mask in tqdm(batches, desc="Logit lens", disable=not verbose):
        keep, sliced = _kept(lm, input_ids, stride, sink_tokens)
        with torch.inference_mode():
            res = lm(input_ids=input_ids, attention_mask=mask, output_hidden_states=True, **sliced)
            final = _logprobs(lm, _at(res.logits, keep, sliced))
            states = res.hidden_states
            rows = []
            for j, h in enumerate(states):
                h = h[:, keep]
                read = h if j == len(states) - 1 else norm(h)
                rows.append(_token_kl(final, _logprobs(lm, head(read)), mask[:, keep]))
        out.append(np.stack(rows, axis=1))
    result = np.concatenate(out, axis=0)
    _warn_unread(result, "logit_lens_kl")
    return result


def deletion_kl(
    model,
    texts,
    *,
    max_length: int = 128,
    batch_size: int = 4,
    stride: int = 1,
    sink_tokens: int = 0,
    verbose: bool = True,
) -> np.ndarray:
    """KL(full || block skipped) per text and block: block ``j``'s output replaced by its
    input during the forward pass (the residual stream passes it by), next-token
    distributions compared at every real token (Lad et al., "The Remarkable Robustness
    of LLMs: Stages of Inference?").

    Parameters
    ----------
    model : str or (model, tokenizer)
        A decoder-only causal LM spec, or a loaded model and its tokenizer.
    texts : sequence of str
        The texts.
    max_length : int, default=128
        Tokens per text.
    batch_size : int, default=4
        Texts per forward pass.
    stride : int, default=1
        Compare every ``stride``-th position (the head runs on those only).
    sink_tokens : int, default=0
        Leading positions left out of the mean (see :func:`logit_lens_kl`).
    verbose : bool, default=True
        Progress bar.

    Returns
    -------
    ndarray of shape (n_texts, n_layers)
        Block ``j`` maps hidden state ``j`` to ``j + 1``.
    """
    stride, sink_tokens = _check_stride(stride, sink_tokens)
    lm, tokenizer, layout = _causal(model)

    def skip(module, args, kwargs, output):
        h = args[0] if args else kwargs["hidden_states"]
        return (h, *output[1:]) if isinstance(output, tuple) else h

    batches = list(_batches(tokenizer, lm, texts, max_length, batch_size))
    out = []
    for input_ids, mask in tqdm(batches, desc="Block deletion", disable=not verbose):
        keep, sliced = _kept(lm, input_ids, stride, sink_tokens)

        def read(keep=keep, sliced=sliced, input_ids=input_ids, mask=mask):
            logits = lm(input_ids=input_ids, attention_mask=mask, **sliced).logits
            return _logprobs(lm, _at(logits, keep, sliced))

        with torch.inference_mode():
            outputs = []
            with attached_hooks([(b, "forward", _recorder(outputs)) for b in layout.blocks]):
                full = read()
            rows = []
            for j, block in enumerate(layout.blocks):
                # the blocks before j compute what they computed in the full pass: replay
                # their outputs instead of recomputing them (half the passes' cost)
                with (
                    _replayed(layout.blocks[:j], outputs),
                    attached_hooks([(block, "forward", skip)]),
                ):
                    cut = read()
                rows.append(_token_kl(full, cut, mask[:, keep]))
        out.append(np.stack(rows, axis=1))
    result = np.concatenate(out, axis=0)
    _warn_unread(result, "deletion_kl")
    return result
