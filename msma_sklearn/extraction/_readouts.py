"""Token-level read-outs of :class:`HiddenStateExtractor`: unpooled states, attention
spans, and the tokenisation and batching they share with pooled extraction."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..utils._validation import check_texts
from ..utils._warnings import warn_user
from ._batching import _BatchRun, _decoder_start, _shift_right, batch_limits, length_batches
from ._core import attention_distance, pad_batch, pad_token_id, resolve_layout, stack_call, tokenise

__all__ = ["TokenReadoutMixin"]


class TokenReadoutMixin:
    """Unpooled token states, attention spans, tokenisation and batching."""

    def transform_tokens(self, X, *, return_tokens: bool = False):
        """Unpooled states of the real (non-padding) tokens of each text.

        Parameters
        ----------
        X : list of str
            The texts.
        return_tokens : bool, default=False
            Also return each text's token strings.

        Returns
        -------
        states : list of ndarray, each of shape (n_selected_layers, n_tokens_i, hidden_size)
            In input order; float32.
        tokens : list of list of str
            Only if ``return_tokens`` is True.
        """
        check_is_fitted(self, "layers_")
        texts = check_texts(X, name="X")
        model, tokenizer = self._loaded()
        layout = resolve_layout(model, self.stack)
        layers = self.layers_.tolist()
        result: list[np.ndarray | None] = [None] * len(texts)
        tok = self._tokenise(tokenizer, texts)
        for rows, states, mask in self._batches(
            model, layout, tok, pad_token_id(tokenizer, model), "Token states"
        ):
            stacked = torch.stack([states[j].float() for j in layers], dim=1).cpu().numpy()
            mask_np = mask.numpy()
            for b, row in enumerate(rows):
                result[row] = stacked[b][:, mask_np[b]]
        if not return_tokens:
            return result
        ids = tok.ids
        if layout.stack == "decoder" and layout.encoder is not None:
            ids = [_shift_right(s, _decoder_start(model)) for s in ids]
        return result, [tokenizer.convert_ids_to_tokens(s) for s in ids]

    def attention_span(self, X) -> np.ndarray:
        """Mean attention distance of every block, in tokens.

        For each real query token, the attention-weighted mean distance to the
        tokens it attends to, averaged over heads, then over all query tokens
        of all texts. This is the per-layer "attention span" the MSMA paper
        thresholds into scales (``ScaleSegmenter(method="attention_span")``).

        Parameters
        ----------
        X : list of str
            The texts.

        Returns
        -------
        spans : ndarray of shape (n_layers_,)
            ``spans[j - 1]`` belongs to block j (hidden state j). Causal models
            can only look back, so their spans are smaller than an encoder's
            on the same texts.

        Notes
        -----
        Attention weights need the eager attention implementation; the model
        is switched to it for the call and switched back in ``finally``.
        """
        check_is_fitted(self, "layers_")
        texts = check_texts(X, name="X")
        model, tokenizer = self._loaded()
        layout = resolve_layout(model, self.stack)
        tok = self._tokenise(tokenizer, texts)
        pad_id = pad_token_id(tokenizer, model)
        device = next(model.parameters()).device
        dec_start = _decoder_start(model) if layout.encoder is not None else None
        batches = length_batches(
            [len(ids) for ids in tok.ids],
            *batch_limits(self.batch_size, self.max_batch_tokens, device),
        )
        total, count = np.zeros(layout.n_layers), 0
        previous = model.config._attn_implementation
        try:
            model.set_attn_implementation("eager")
            with torch.inference_mode():
                for rows in batches:
                    seqs = [tok.ids[i] for i in rows]
                    ids, mask = pad_batch(seqs, pad_id, "right")
                    dec_ids = dec_mask = None
                    if dec_start is not None:
                        dec = [_shift_right(s, dec_start) for s in seqs]
                        dec_ids, dec_mask = (t.to(device) for t in pad_batch(dec, pad_id, "right"))
                    call, read_mask = stack_call(
                        layout, ids.to(device), mask.to(device), dec_ids, dec_mask
                    )
                    out = layout.module(**call, output_attentions=True)
                    sums, n = attention_distance(out.attentions, read_mask)
                    total += sums
                    count += n
        finally:
            model.set_attn_implementation(previous)
        return total / count

    def _tokenise(self, tokenizer, texts):
        tok = tokenise(tokenizer, texts, self.max_length)
        self._warn_truncated(tok.n_truncated, len(texts))
        return tok

    def _warn_sink_only(self, n_short: int, n_texts: int) -> None:
        if n_short:
            warn_user(
                f"{n_short} of {n_texts} text(s) have no more than sink_tokens="
                f"{self._sinks()} real token(s); their sink tokens were pooled (nothing else "
                "was left). Pass longer texts or sink_tokens=0."
            )

    def _warn_truncated(self, n_truncated: int, n_texts: int) -> None:
        if n_truncated:
            warn_user(
                f"{n_truncated} of {n_texts} text(s) exceed max_length={self.max_length} "
                "tokens and were truncated; raise max_length to keep them whole."
            )

    def _batches(self, model, layout, tok, pad_id, desc):
        """Yield ``(row indices, {layer: states}, pooling mask on the host)`` per batch.

        Batches hold at most ``batch_size`` texts and, with ``max_batch_tokens``,
        at most that many padded tokens. A batch that runs out of memory is
        split in two and retried (counted, one warning per call).
        """
        run = _BatchRun(self, model, len(tok.ids), desc)
        yield from run.batches(layout, tok, pad_id)
        run.close()
