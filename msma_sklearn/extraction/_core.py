"""Functional core of hidden-state extraction: tokenise, batch, capture, pool.

Everything here takes plain objects (a loaded model, a tokenizer, lists and
tensors) and returns arrays; :class:`HiddenStateExtractor` only validates and
holds state.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..utils._hooks import attached_hooks

__all__ = [
    "POOLINGS",
    "ModelLayout",
    "drop_leading_tokens",
    "pool",
    "reshape_by_layer",
    "resolve_layout",
]


POOLINGS = ("mean", "mean_all", "first", "cls", "last", "max")


def pool(states: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool token states ``(B, T, H)`` to ``(B, H)`` under a boolean mask ``(B, T)``.

    ``mean`` averages real tokens only; ``mean_all`` averages every position,
    padding included (the original MSMA code's behaviour); ``first``/``cls``
    take the first real token and ``last`` the last real token (correct for
    left and right padding); ``max`` is the element-wise max over real tokens.
    Padding positions are replaced (not multiplied) so a non-finite value
    there cannot leak into the result.

    Examples
    --------
    >>> h = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> m = torch.tensor([[True, True, False]])
    >>> pool(h, m, "mean").item(), pool(h, m, "last").item(), pool(h, m, "mean_all").item()
    (2.0, 3.0, 34.66666793823242)
    """
    states = states.float()
    if method == "mean_all":
        return states.mean(dim=1)
    keep = mask.unsqueeze(-1)
    if method == "mean":
        total = torch.where(keep, states, 0.0).sum(dim=1)
        return total / mask.sum(dim=1, keepdim=True).clamp(min=1).to(states.dtype)
    if method == "max":
        return torch.where(keep, states, float("-inf")).amax(dim=1)
    rows = torch.arange(states.shape[0], device=states.device)
    if method in ("first", "cls"):
        idx = mask.int().argmax(dim=1)
    elif method == "last":
        idx = mask.shape[1] - 1 - mask.flip(1).int().argmax(dim=1)
    else:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {method!r}.")
    return states[rows, idx]


def drop_leading_tokens(mask: torch.Tensor, n: int) -> tuple[torch.Tensor, int]:
    """Remove each row's first ``n`` real tokens from a boolean mask ``(B, T)``.

    Used to leave attention-sink tokens out of pooling. Works for left and
    right padding (positions are counted over real tokens). A row with ``n``
    or fewer real tokens keeps all of them (there would be nothing left to
    pool); the second return value counts such rows so the caller can warn.

    Examples
    --------
    >>> m = torch.tensor([[True, True, True, False], [False, False, True, True], [True, False, False, False]])
    >>> kept, n_short = drop_leading_tokens(m, 1)
    >>> kept.int().tolist(), n_short
    ([[0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]], 1)
    """
    mask = mask.bool()
    if n <= 0:
        return mask, 0
    rank = mask.long().cumsum(dim=1)  # 1 at the first real token
    short = mask.sum(dim=1) <= n
    kept = mask & ((rank > n) | short[:, None])
    return kept, int(short.sum().item())


def reshape_by_layer(X, n_layers: int) -> np.ndarray:
    """Reshape ``(n_samples, n_layers * hidden)`` features to ``(n_samples, n_layers, hidden)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_layers * hidden_size)
        Output of :meth:`HiddenStateExtractor.transform` (blocks in layer order).
    n_layers : int
        Number of selected layers (``len(extractor.layers_)``).

    Returns
    -------
    ndarray of shape (n_samples, n_layers, hidden_size)
        A view of ``X`` when it is contiguous.

    Examples
    --------
    >>> reshape_by_layer(np.arange(12).reshape(2, 6), 3)[1, 2]
    array([10, 11])
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] % n_layers:
        raise ValueError(
            f"Expected a 2-D array whose width is a multiple of n_layers={n_layers}, "
            f"got shape {X.shape}."
        )
    return X.reshape(X.shape[0], n_layers, X.shape[1] // n_layers)


# ---------------------------------------------------------------- model layout
@dataclass(frozen=True)
class ModelLayout:
    """Where the transformer blocks of one stack live and how to call it.

    Parameters
    ----------
    stack : {"encoder", "decoder"}
        Which stack this is.
    module : nn.Module
        The module whose forward runs the stack.
    blocks : nn.ModuleList
        Its transformer blocks, in order.
    encoder : nn.Module or None
        The encoder, for the decoder stack of an encoder-decoder.
    pass_position_ids : bool
        Whether position ids derived from the mask are passed.
    causal : bool
        Whether the stack attends causally.
    """

    stack: str  # "encoder" or "decoder"
    module: nn.Module  # the module whose forward runs the stack
    blocks: nn.ModuleList
    encoder: nn.Module | None  # for the decoder stack of an encoder-decoder
    pass_position_ids: bool  # give position ids derived from the mask
    causal: bool

    @property
    def n_layers(self) -> int:
        return len(self.blocks)


def _block_list(module: nn.Module, expected: int | None) -> nn.ModuleList:
    lists = [m for m in module.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    for candidate in lists:
        if expected is not None and len(candidate) == expected:
            return candidate
    if not lists:
        raise ValueError(f"Cannot find the transformer blocks of {type(module).__name__}.")
    return max(lists, key=len)


def resolve_layout(model: nn.Module, stack: str = "auto") -> ModelLayout:
    """Find the stack to read in a loaded model (encoder-only, decoder-only or T5-like).

    Parameters
    ----------
    model : nn.Module
        A loaded transformers model.
    stack : {"auto", "encoder", "decoder"}, default="auto"
        For encoder-decoders, which stack ("auto": the encoder).

    Returns
    -------
    ModelLayout
    """
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        stack = "encoder" if stack == "auto" else stack
        encoder = model.get_encoder()
        if stack == "encoder":
            module, enc = encoder, None
            expected = getattr(config, "num_layers", None) or getattr(
                config, "encoder_layers", None
            )
        else:
            module, enc = model.get_decoder(), encoder
            expected = getattr(config, "num_decoder_layers", None) or getattr(
                config, "decoder_layers", None
            )
        causal = stack == "decoder"
    else:
        causal = bool(getattr(config, "is_decoder", False)) or _is_causal_lm(model)
        natural = "decoder" if causal else "encoder"
        stack = natural if stack == "auto" else stack
        if stack != natural:
            raise ValueError(
                f"stack={stack!r} does not apply to {config.model_type!r}, which has only a "
                f"{natural} stack; use stack='auto' or stack={natural!r}."
            )
        module, enc = model.base_model, None
        expected = getattr(config, "num_hidden_layers", None)
    blocks = _block_list(module, expected)
    params = inspect.signature(module.forward).parameters
    # RoBERTa-style embeddings derive positions from the pad token themselves.
    embeddings = getattr(module, "embeddings", None)
    mask_aware = getattr(embeddings, "padding_idx", None) is not None
    pass_pos = "position_ids" in params and not mask_aware
    return ModelLayout(stack, module, blocks, enc, pass_pos, causal)


def _is_causal_lm(model: nn.Module) -> bool:
    archs = " ".join(getattr(model.config, "architectures", None) or [])
    name = type(model).__name__
    return any(s in name or s in archs for s in ("CausalLM", "LMHeadModel"))


# ------------------------------------------------------------------ tokenising
@dataclass
class Tokenised:
    ids: list[list[int]]
    n_truncated: int


def tokenise(tokenizer, texts: list[str], max_length: int) -> Tokenised:
    """Token ids per text (special tokens added), truncated to ``max_length``."""
    full = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    long_idx = [i for i, ids in enumerate(full) if len(ids) > max_length]
    if long_idx:
        cut = tokenizer(
            [texts[i] for i in long_idx],
            add_special_tokens=True,
            truncation=True,
            max_length=max_length,
        )["input_ids"]
        for i, ids in zip(long_idx, cut, strict=True):
            full[i] = ids
    return Tokenised(ids=[list(x) for x in full], n_truncated=len(long_idx))


def window_sizes(n: int, first: int = 64, largest: int = 4096) -> list[int]:
    """Sizes of the windows :func:`tokenised_windows` cuts ``n`` texts into.

    They double from ``first`` up to ``largest``, so the first forward pass
    waits only for a small window's tokens while later windows stay large
    enough to hold several length-sorted batches.

    Examples
    --------
    >>> window_sizes(500, first=64, largest=256)
    [64, 128, 256, 52]
    >>> window_sizes(10)
    [10]
    """
    if first < 1 or largest < first:
        raise ValueError(f"need 1 <= first <= largest, got first={first}, largest={largest}.")
    sizes, size, done = [], first, 0
    while done < n:
        take = min(size, n - done)
        sizes.append(take)
        done += take
        size = min(2 * size, largest)
    return sizes


def tokenised_windows(
    tokenize, texts: list[str], first: int = 64, largest: int = 4096, groups=None
):
    """Yield ``(text indices, Tokenised)`` window by window, longest texts first.

    Texts are ordered by decreasing character length (stable), a cheap proxy
    for token length, and cut into :func:`window_sizes`; each window is
    tokenised by ``tokenize(list_of_texts) -> Tokenised`` in a background
    thread while the caller runs the previous window's batches. Tokenising
    every text before the first forward pass left an accelerator idle for it
    (71 ms of a 450 ms call for 2,048 short texts on an H100,
    docs/benchmarks.md). The caller sorts each window by token length.

    ``groups``: ``(start, stop)`` ranges of ``texts`` (shards) that windows
    never span, each windowed as if it were alone, so the batches, and the
    numbers, are those of extracting each shard by itself; the tokenising
    still runs one window ahead across a shard's end. Default: one group.
    """
    from concurrent.futures import ThreadPoolExecutor

    windows = []
    for start, stop in [(0, len(texts))] if groups is None else groups:
        order = start + np.argsort([-len(t) for t in texts[start:stop]], kind="stable")
        bounds = np.cumsum([0, *window_sizes(stop - start, first, largest)])
        windows += [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if not windows:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="msma-tokenise") as pool:
        ahead = pool.submit(tokenize, [texts[i] for i in windows[0]])
        for k, index in enumerate(windows):
            tok = ahead.result()
            if k + 1 < len(windows):
                ahead = pool.submit(tokenize, [texts[i] for i in windows[k + 1]])
            yield index, tok


def pad_batch(
    seqs: list[list[int]], pad_id: int, side: str, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists to one length; return ``(input_ids, attention_mask)`` (long).

    Vectorised: one boolean mask marks the real-token slots of every row, and
    the concatenated ids fill them in row-major order.

    Parameters
    ----------
    seqs : list of list of int
        Token ids per text.
    pad_id : int
        The padding id.
    side : {"left", "right"}
        Where the padding goes.
    length : int, default=None
        Padded length (None: the longest sequence).

    Returns
    -------
    input_ids, attention_mask : Tensor of int64, shape (n, length)
    """
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    width = int(length if length is not None else lengths.max())
    cols = np.arange(width)
    if side == "right":
        real = cols[None, :] < lengths[:, None]
    else:
        real = cols[None, :] >= (width - lengths)[:, None]
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    ids[real] = np.fromiter((t for s in seqs for t in s), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(ids), torch.from_numpy(real.astype(np.int64))


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to ``device``; to CUDA from pinned memory without blocking.

    A copy from ordinary (pageable) host memory makes the host wait until the
    GPU has finished all earlier work, so the next batch cannot be queued while
    this one runs (seen on an H100 as one stream synchronisation per batch).
    """
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def pad_token_id(tokenizer, model) -> int:
    """Pad id to use; models without one (GPT-2, some Llamas) pad with EOS, masked out.

    Parameters
    ----------
    tokenizer : PreTrainedTokenizer
        The model's tokenizer.
    model : PreTrainedModel
        The model (its config may name a pad id).

    Returns
    -------
    int
    """
    for candidate in (
        tokenizer.pad_token_id,
        getattr(model.config, "pad_token_id", None),
        tokenizer.eos_token_id,
    ):
        if candidate is not None:
            return int(candidate)
    return 0


# ------------------------------------------------------------------ capturing
def stack_call(
    layout, input_ids, attention_mask, decoder_ids=None, decoder_mask=None, left_padded=False
):
    """Keyword arguments for ``layout.module`` and the mask of the tokens it reads."""
    if layout.stack == "decoder" and layout.encoder is not None:
        encoder_states = layout.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        call = {
            "input_ids": decoder_ids,
            "attention_mask": decoder_mask,
            "encoder_hidden_states": encoder_states,
            "encoder_attention_mask": attention_mask,
            "use_cache": False,
        }
        mask = decoder_mask
    else:
        call = {"input_ids": input_ids, "attention_mask": attention_mask}
        if layout.causal:
            call["use_cache"] = False
        mask = attention_mask
    if layout.pass_position_ids and left_padded:
        call["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
    return call, mask


def attention_distance(attentions, mask: torch.Tensor) -> tuple[np.ndarray, int]:
    """Summed per-query mean attention distance of each block, and the query count.

    ``attentions``: one ``(B, heads, T, T)`` tensor per block. For each real
    query token i, its distance is ``sum_j a_ij |pos_i - pos_j|`` (positions
    counted over real tokens), averaged over heads; the function returns the
    sum over real queries (per block) and their number, so batches can be
    pooled exactly.
    """
    real = mask.bool()
    pos = (mask.cumsum(-1) - 1).float()  # position among real tokens
    dist = (pos[:, :, None] - pos[:, None, :]).abs()  # (B, T, T)
    sums = []
    for att in attentions:
        per_query = (att.float().mean(dim=1) * dist).sum(dim=-1)  # (B, T)
        sums.append(per_query[real].sum().item())
    return np.asarray(sums), int(real.sum().item())


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass after the deepest needed block."""


def capture_layers(
    layout: ModelLayout,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: list[int],
    *,
    decoder_ids: torch.Tensor | None = None,
    decoder_mask: torch.Tensor | None = None,
    left_padded: bool = False,
) -> dict[int, torch.Tensor]:
    """Run one stack and return ``{layer index: (B, T, H) states}``.

    Index 0 is the embedding output (input of block 0), index ``j < L`` the
    input of block ``j`` (= output of block ``j - 1``) and index ``L`` the
    stack's final output (after its final norm, as in transformers'
    ``hidden_states``). When every requested index is ``< L`` the pass stops
    right after capturing the deepest one.

    With ``left_padded``, position ids are derived from the attention mask so
    real tokens keep the positions they have unpadded; with right padding the
    model's default positions are already right (and pad slots keep theirs,
    which ``pooling="mean_all"`` depends on).
    """
    n = layout.n_layers
    captured: dict[int, torch.Tensor] = {}
    wanted = sorted(set(layers))
    deepest = wanted[-1]
    hooks = []
    for j in wanted:
        if j >= n:
            continue

        def grab(module, args, kwargs, j=j):
            captured[j] = args[0] if args else kwargs["hidden_states"]
            if j == deepest:
                raise _StopForward

        hooks.append((layout.blocks[j], "forward_pre", grab))

    call, _ = stack_call(layout, input_ids, attention_mask, decoder_ids, decoder_mask, left_padded)
    with attached_hooks(hooks):
        try:
            out = layout.module(**call)
        except _StopForward:
            out = None
    if deepest == n:
        captured[n] = out.last_hidden_state
    return captured
