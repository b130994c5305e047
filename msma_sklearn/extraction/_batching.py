"""The batches of one extraction call: token-budget batching, out-of-memory backoff,
one progress bar; and the small helpers of the extractor's forward passes."""

from __future__ import annotations

import warnings

import torch
from tqdm.auto import tqdm

from ._core import (
    Tokenised,
    batch_limits,
    capture_layers,
    free_memory,
    is_out_of_memory,
    length_batches,
    memory_capped_budget,
    pad_batch,
    pool,
    to_device,
)


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
