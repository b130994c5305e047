"""The batches of one extraction call: token-budget batching, out-of-memory backoff,
one progress bar; and the small helpers of the extractor's forward passes."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from ._core import Tokenised, capture_layers, pad_batch, pool, to_device

logger = logging.getLogger(__name__)


#: What ``batch_size="auto"`` and ``max_batch_tokens="auto"`` resolve to, per device
#: type: (most texts per batch, most padded tokens per batch). On a CPU 32 texts
#: per batch measured as fast as any token budget (docs/extraction.md); an
#: accelerator needs large batches to be busy, so the token budget decides there
#: (docs/benchmarks.md, GPU table).
AUTO_BATCH = {"cpu": (32, None), "accelerator": (None, 16384)}


def batch_limits(batch_size, max_batch_tokens, device) -> tuple[int | None, int | None]:
    """Resolve ``batch_size`` / ``max_batch_tokens`` (``"auto"`` or a number) on ``device``.

    Returns ``(max_rows, max_tokens)``; ``None`` means no cap. Without any token
    budget the rows are capped at 32, so a batch is never unbounded.

    Examples
    --------
    >>> batch_limits("auto", "auto", torch.device("cpu"))
    (32, None)
    >>> batch_limits("auto", "auto", torch.device("meta"))
    (None, 16384)
    >>> batch_limits(8, "auto", torch.device("meta"))
    (8, 16384)
    """
    key = "cpu" if torch.device(device).type == "cpu" else "accelerator"
    rows, tokens = AUTO_BATCH[key]
    rows = rows if batch_size == "auto" else batch_size
    tokens = tokens if max_batch_tokens == "auto" else max_batch_tokens
    if rows is None and tokens is None:
        rows = AUTO_BATCH["cpu"][0]
    return rows, tokens


def bytes_per_token(config, n_kept: int, dtype: torch.dtype) -> int:
    """Estimated accelerator memory one padded token needs during :func:`capture_layers`.

    The ``n_kept`` captured hidden states stay alive until pooled; on top, the
    block being run holds its feed-forward activations (three of width
    ``intermediate_size``, for gated MLPs), about six hidden-width tensors
    (attention projections and residuals) and the float32 copy pooling makes
    of one state. Attention scores are not counted: the SDPA kernels keep them
    per block of queries, not per token pair.

    Examples
    --------
    >>> from transformers import LlamaConfig
    >>> cfg = LlamaConfig(hidden_size=2048, intermediate_size=8192)
    >>> bytes_per_token(cfg, n_kept=17, dtype=torch.bfloat16)
    151552
    """
    text = config.get_text_config()
    width = int(text.hidden_size)
    inner = None
    for name in ("intermediate_size", "n_inner", "d_ff", "ffn_dim"):
        inner = getattr(text, name, None)
        if inner:
            break
    inner = int(inner or 4 * width)
    size = torch.empty((), dtype=dtype).element_size()
    return size * (n_kept * width + 3 * inner + 6 * width) + 4 * width


def memory_token_budget(per_token: int, free_bytes: int, fraction: float = 0.5) -> int:
    """Most padded tokens per batch that fit in ``fraction`` of ``free_bytes``, rounded
    down to a power of two, so that small changes in free memory between calls do not
    change the batches (and with them the last bits of the states).

    Examples
    --------
    >>> memory_token_budget(151552, 8 * 2**30)  # 28,339 fit
    16384
    """
    fits = max(1, int(fraction * free_bytes) // per_token)
    return 1 << (fits.bit_length() - 1)


def memory_capped_budget(tokens: int, config, n_kept: int, dtype, free_bytes: int) -> int:
    """``tokens``, lowered to :func:`memory_token_budget` of the estimated
    :func:`bytes_per_token` when that is smaller (logged).

    Examples
    --------
    >>> from transformers import LlamaConfig
    >>> cfg = LlamaConfig(hidden_size=2048, intermediate_size=8192)
    >>> memory_capped_budget(16384, cfg, 17, torch.bfloat16, 2 * 2**30)
    4096
    >>> memory_capped_budget(16384, cfg, 17, torch.bfloat16, 80 * 2**30)
    16384
    """
    per_token = bytes_per_token(config, n_kept, dtype)
    fits = memory_token_budget(per_token, free_bytes)
    if fits >= tokens:
        return tokens
    logger.info(
        "max_batch_tokens='auto': %d tokens, not %d, fit in half of the %.1f GiB free "
        "(about %d bytes per token)",
        fits,
        tokens,
        free_bytes / 2**30,
        per_token,
    )
    return fits


def free_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device (``None`` on any other device: no estimate)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def length_batches(
    lengths, max_rows: int | None, max_tokens: int | None = None
) -> list[np.ndarray]:
    """Group text indices into batches of similar length, longest first.

    Texts are sorted by decreasing length (stable) and cut into consecutive
    batches of at most ``max_rows`` texts (``None``: no cap); with ``max_tokens``, a batch also
    stops before its padded size (rows x its longest text) would exceed the
    budget, so batches of short texts hold more rows than batches of long
    ones. A text longer than the budget gets a batch of its own.

    Examples
    --------
    >>> [b.tolist() for b in length_batches([3, 9, 4, 8, 2], max_rows=2)]
    [[1, 3], [2, 0], [4]]
    >>> [b.tolist() for b in length_batches([3, 9, 4, 8, 2], max_rows=8, max_tokens=12)]
    [[1], [3], [2, 0, 4]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    if (max_rows is not None and max_rows < 1) or (max_tokens is not None and max_tokens < 1):
        raise ValueError(f"max_rows and max_tokens must be >= 1, got {max_rows}, {max_tokens}.")
    if max_rows is None and max_tokens is None:
        raise ValueError("length_batches needs max_rows or max_tokens (or both).")
    max_rows = order.size if max_rows is None else max_rows
    batches, start = [], 0
    while start < order.size:
        longest = max(int(lengths[order[start]]), 1)  # sorted: the first row is the longest
        rows = max_rows if max_tokens is None else max(1, min(max_rows, max_tokens // longest))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an accelerator's (or the allocator's) out-of-memory error."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class _BatchRun:
    """The batches of one call: one progress bar and one count of out-of-memory splits,
    however many windows of texts feed it."""

    def __init__(self, extractor, model, n_texts: int, desc: str):
        # extractor: the HiddenStateExtractor whose settings (batch size, pooling) apply
        self.ext = extractor
        self.device = next(model.parameters()).device
        rows, tokens = batch_limits(extractor.batch_size, extractor.max_batch_tokens, self.device)
        free = free_memory(self.device)
        if extractor.max_batch_tokens == "auto" and tokens is not None and free is not None:
            # the automatic budget never plans batches larger than half the free memory
            dtype = next(model.parameters()).dtype
            tokens = memory_capped_budget(tokens, model.config, len(extractor.layers_), dtype, free)
        self.limits = (rows, tokens)
        self.model = model
        self.n_split = 0
        self.bar = tqdm(
            total=n_texts, desc=desc, unit="text", disable=not extractor.verbose, leave=False
        )

    def batches(self, layout, tok: Tokenised, pad_id: int):
        """Yield ``(rows of tok, {layer: states}, pooling mask on the host)`` per batch."""
        ext, device = self.ext, self.device
        fixed = ext.max_length if ext.pooling == "mean_all" else None
        lengths = [fixed or len(ids) for ids in tok.ids]
        # longest first: fail fast on memory
        pending = length_batches(lengths, *self.limits)
        dec_start = _decoder_start(self.model) if layout.encoder is not None else None
        with torch.inference_mode():
            while pending:
                rows = pending.pop(0)
                seqs = [tok.ids[i] for i in rows]
                ids, mask = pad_batch(seqs, pad_id, ext.padding_side, fixed)
                kwargs = {}
                if dec_start is not None:
                    dec = [_shift_right(s, dec_start) for s in seqs]
                    dec_ids, dec_mask = pad_batch(dec, pad_id, ext.padding_side, fixed)
                    kwargs = {
                        "decoder_ids": to_device(dec_ids, device),
                        "decoder_mask": to_device(dec_mask, device),
                    }
                    pool_mask = dec_mask
                else:
                    pool_mask = mask
                try:
                    states = capture_layers(
                        layout,
                        to_device(ids, device),
                        to_device(mask, device),
                        ext.layers_.tolist(),
                        left_padded=ext.padding_side == "left",
                        **kwargs,
                    )
                except Exception as exc:
                    if not is_out_of_memory(exc):
                        raise
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    if len(rows) == 1:
                        raise MemoryError(
                            f"One text of {ids.shape[1]} tokens does not fit in memory on "
                            f"{device} even alone; lower max_length, use dtype='bfloat16', or "
                            "spread the model over devices with device_map='auto'."
                        ) from exc
                    half = len(rows) // 2
                    pending[:0] = [rows[:half], rows[half:]]
                    self.n_split += 1
                    continue
                self.bar.update(len(rows))
                yield rows, states, pool_mask.bool()  # on the host

    def close(self) -> None:
        self.bar.close()
        if self.n_split:
            max_rows, max_tokens = self.limits
            warnings.warn(
                f"{self.n_split} batch(es) ran out of memory on {self.device} and were split "
                f"in two and retried; set max_batch_tokens (now {max_tokens}) or batch_size "
                f"(now {max_rows}) lower to avoid the retries.",
                ResourceWarning,
                stacklevel=3,
            )


def _pool_on(states: torch.Tensor, mask: torch.Tensor, method: str) -> torch.Tensor:
    """Pool where the states are (a model spread by device_map keeps layers on several
    devices); the pooled rows come back to the mask's device."""
    if states.device != mask.device:
        return pool(states, mask.to(states.device), method).to(mask.device)
    return pool(states, mask, method)


def _shift_right(ids: list[int], start: int) -> list[int]:
    return [start, *ids[:-1]]


def _decoder_start(model) -> int:
    start = getattr(model.config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(model.config, "pad_token_id", None) or 0
    return int(start)


def _position_limit(config) -> int | None:
    text = config.get_text_config()
    limit = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None)
    if limit is None:
        return None
    offset = 2 if text.model_type in ("roberta", "xlm-roberta", "camembert") else 0
    return int(limit) - offset
