"""Generation under an intervention, and next-token distributions with and without it."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from tqdm.auto import tqdm
from transformers import LogitsProcessorList

from ..extraction import (
    pad_batch,
    pad_token_id,
)
from ..utils._hooks import attached_hooks
from ..utils._validation import check_texts
from ._helpers import _baseline_rows, _is_seq2seq, kl_rows
from ._sampling import NucleusSampler


class GenerationMixin:
    """Text generation and next-token read-outs of :class:`Intervener`."""

    # ---------------------------------------------------------------- generate
    def generate(self, prompts) -> list[str]:
        """Generated continuations with the intervention (prompt excluded).

        Parameters
        ----------
        prompts : list of str
            The prompts.

        Returns
        -------
        list of str
            ``num_return_sequences`` per prompt, prompts in input order.
        """
        return self._generate(prompts, intervene=True)

    def generate_baseline(self, prompts) -> list[str]:
        """The matched baseline: same prompts, settings and seeds, no intervention.

        Parameters
        ----------
        prompts : list of str
            The prompts.

        Returns
        -------
        list of str
            One continuation per prompt and return sequence, prompt excluded.
        """
        return self._generate(prompts, intervene=False)

    def _generate(self, prompts, *, intervene: bool) -> list[str]:
        check_is_fitted(self, "layers_")
        prompts = check_texts(prompts, name="prompts")
        if self.num_return_sequences > 1 and not self.do_sample:
            # greedy decoding has one continuation per prompt: copies would only repeat it
            raise ValueError(
                f"num_return_sequences={self.num_return_sequences} needs do_sample=True: "
                "greedy decoding gives one continuation per prompt. Set do_sample=True, "
                "or num_return_sequences=1."
            )
        if not self.generative_:
            raise ValueError(
                f"{self.model!r} is encoder-only and does not generate text. Use transform / "
                "effects (effects on its representations and token predictions) or fill_mask."
            )
        model, tokenizer = self._loaded()
        device = next(model.parameters()).device
        pad_id = pad_token_id(tokenizer, model)
        seq2seq = _is_seq2seq(model)
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        out: list[str] = []
        starts = tqdm(
            range(0, len(prompts), self.batch_size),
            desc="Generating" if intervene else "Generating (baseline)",
            unit="batch",
            disable=not self.verbose,
            leave=False,
        )
        for start in starts:
            batch = ids[start : start + self.batch_size]
            # causal LMs continue from the right edge: pad on the left
            input_ids, mask = pad_batch(batch, pad_id, "right" if seq2seq else "left")
            enc = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
            state = self._state(prompts[start : start + len(batch)], mask)
            hooks = self._hooks(model, state) if intervene else []
            kwargs = dict(max_new_tokens=self.max_new_tokens, pad_token_id=pad_id, do_sample=False)
            if self.num_return_sequences > 1:  # each prompt's copies in a row, as generate's own
                # expansion lays them out (greedy decoding, which runs our sampler, has none)
                enc = {k: v.repeat_interleave(self.num_return_sequences, 0) for k, v in enc.items()}
            if self.do_sample:
                # our sampler draws the token (from one seeded uniform per row, inside
                # the nucleus) and leaves greedy decoding's argmax nothing else to pick:
                # transformers' top-p sorts and its multinomial scans the whole vocabulary
                generator = torch.Generator().manual_seed(self._seed(start))
                sampler = NucleusSampler(self.top_p, self.sampling_temperature, generator)
                kwargs.update(logits_processor=LogitsProcessorList([sampler]))
            with attached_hooks(hooks), torch.inference_mode():
                generated = model.generate(**enc, **kwargs)
            # an encoder-decoder returns decoder tokens only (after its start token)
            new_tokens = generated if seq2seq else generated[:, enc["input_ids"].shape[1] :]
            out.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return out

    def next_token_kl(self, prompts) -> np.ndarray:
        """KL(baseline || intervened) of the next-token distribution after each prompt, in nats.

        One forward pass over the prompts with and one without the
        intervention (causal LMs: the last real prompt token's logits; the
        intervention acts as on generation's prompt pass). A dose-free
        measure of how much the operator disrupts the model, used by
        :func:`calibrate_dose`.

        Parameters
        ----------
        prompts : list of str
            The prompts.

        Returns
        -------
        ndarray of shape (n_prompts,)
        """
        base = self._next_token_logprobs(prompts, intervene=False)
        return kl_rows(base, self._next_token_logprobs(prompts, intervene=True))

    def next_token_logprobs(self, prompts, *, intervene: bool = True) -> np.ndarray:
        """Log-probabilities of the token after each prompt, with or without the intervention.

        Parameters
        ----------
        prompts : list of str
            The prompts.
        intervene : bool, default=True
            False: the unmodified model.

        Returns
        -------
        ndarray of shape (n_prompts, vocab)
        """
        return self._next_token_logprobs(prompts, intervene=intervene).numpy()

    def _next_token_logprobs(self, prompts, *, intervene: bool) -> torch.Tensor:
        """Log-probabilities of the token after each prompt, (n_prompts, vocab), on the CPU."""
        rows, _ = self._position_logprobs(prompts, None, intervene=intervene)
        return rows

    def continuation_logprobs(
        self, prompts, continuations, *, intervene: bool = True, max_tokens: int | None = None
    ) -> list[np.ndarray]:
        """Next-token log-probabilities along given continuations (teacher-forced).

        Each prompt is followed by its continuation's tokens (at most
        ``max_tokens`` of them) in one forward pass, and the distribution that
        predicts each continuation token is read: the prompt's last position
        first (what :meth:`next_token_logprobs` reads), then every position of
        the continuation but its last. With ``positions="all"`` the operator acts
        on every position, as it does over a generation. A dose measured here is
        the disruption over the positions that are generated and scored, not
        only at the prompt's edge.

        Parameters
        ----------
        prompts : list of str
            The prompts.
        continuations : list of str
            One continuation per prompt (e.g. the baseline's generation).
        intervene : bool, default=True
            False: the unmodified model.
        max_tokens : int, default=None
            Continuation tokens read per prompt (None: all).

        Returns
        -------
        list of ndarray of shape (n_positions_i, vocab)
            One per prompt; ``n_positions_i`` is the continuation's length in
            tokens (at least 1: an empty continuation gives the prompt's next
            token only).
        """
        rows, counts = self._position_logprobs(
            prompts, continuations, intervene=intervene, max_tokens=max_tokens
        )
        return [r.numpy() for r in torch.split(rows, counts)]

    def continuation_kl(
        self, prompts, continuations, *, max_tokens: int | None = None, baseline=None
    ):
        """KL(baseline || intervened) per prompt, averaged over the positions of
        :meth:`continuation_logprobs`, in nats.

        Parameters
        ----------
        prompts : list of str
            The prompts.
        continuations : list of str
            One continuation per prompt (teacher-forced).
        max_tokens : int, default=None
            Continuation tokens read per prompt (None: all).
        baseline : list of ndarray, default=None
            The unmodified model's rows,
            ``continuation_logprobs(prompts, continuations, intervene=False,
            max_tokens=max_tokens)``: computed once, it saves a forward pass for
            every operator scored on the same prompts. None: computed here.

        Returns
        -------
        ndarray of shape (n_prompts,)
        """
        if baseline is None:
            base, counts = self._position_logprobs(
                prompts, continuations, intervene=False, max_tokens=max_tokens
            )
        else:
            base, counts = _baseline_rows(baseline, len(check_texts(prompts, name="prompts")))
        kl = self._position_kl(base, counts, prompts, continuations, max_tokens=max_tokens)
        return np.array([part.mean() for part in np.split(kl, np.cumsum(counts)[:-1])])

    def _position_logprobs(
        self, prompts, continuations, *, intervene: bool, max_tokens: int | None = None
    ) -> tuple[torch.Tensor, list[int]]:
        """Log-probability rows of every read position (CPU, float32), all prompts
        concatenated, and how many rows each prompt has."""
        counts, batches = self._position_batches(
            prompts, continuations, intervene=intervene, max_tokens=max_tokens
        )
        return torch.cat([rows.cpu() for batch in batches for rows in batch]), counts

    def _position_kl(self, base, base_counts, prompts, continuations, *, max_tokens=None):
        """KL(``base`` || intervened) of every read position (float64), batch by batch:
        the intervened rows are never gathered (for 1,000 rows of a 262k vocabulary that
        is a gigabyte, whose fresh pages cost seconds here). ``base`` holds
        ``base_counts`` rows per prompt, which must be the rows these prompts read."""
        counts, batches = self._position_batches(
            prompts, continuations, intervene=True, max_tokens=max_tokens
        )
        if list(base_counts) != counts:
            raise ValueError(
                f"baseline has {list(base_counts)} rows per prompt where these prompts, "
                f"continuations and max_tokens read {counts}; compute it with "
                "Intervener.continuation_logprobs(..., intervene=False) on the same prompts, "
                "continuations and max_tokens."
            )
        kl, at = [], 0
        for batch in batches:
            for rows in batch:
                kl.append(kl_rows(base[at : at + len(rows)], rows.cpu()))
                at += len(rows)
        return np.concatenate(kl)

    def _position_batches(self, prompts, continuations, *, intervene: bool, max_tokens=None):
        """Validate and tokenise, then (rows per prompt, a generator of each batch's
        log-probability rows, one tensor per prompt, softmaxed in the logits' place)."""
        check_is_fitted(self, "layers_")
        prompts = check_texts(prompts, name="prompts")
        model, tokenizer = self._loaded()
        if not self.generative_ or _is_seq2seq(model):
            raise ValueError(
                f"next-token read-outs need a causal LM; {self.model!r} is "
                f"{'encoder-only' if not self.generative_ else 'an encoder-decoder'}."
            )
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        counts = [1] * len(prompts)
        if continuations is not None:
            if isinstance(continuations, str) or not all(isinstance(c, str) for c in continuations):
                raise TypeError(
                    "continuations must be a list of strings (one per prompt; an empty string "
                    "reads the prompt's next token only)."
                )
            continuations = list(continuations)
            if len(continuations) != len(prompts):
                raise ValueError(
                    f"One continuation per prompt is needed: got {len(continuations)} for "
                    f"{len(prompts)} prompts."
                )
            if self.positions != "all":
                raise ValueError(
                    f"Teacher-forced read-outs need positions='all' (got {self.positions!r}): "
                    "in one forward pass the prompt and the continuation cannot be told apart "
                    "the way generation's passes are."
                )
            if max_tokens is not None and max_tokens < 1:
                raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")
            cont = tokenizer(continuations, add_special_tokens=False)["input_ids"]
            cont = [c[:max_tokens] if max_tokens is not None else c for c in cont]
            # the last continuation token predicts nothing that is read: leave it out
            ids = [p + c[:-1] for p, c in zip(ids, cont, strict=True)]
            counts = [max(len(c), 1) for c in cont]
        return counts, self._read_batches(prompts, ids, counts, intervene=intervene)

    def _read_batches(self, prompts, ids, counts, *, intervene: bool):
        model, tokenizer = self._loaded()
        device = next(model.parameters()).device
        pad_id = pad_token_id(tokenizer, model)
        # the LM head on the read positions only (a 262k vocabulary makes the rest costly)
        keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        for start in range(0, len(prompts), self.batch_size):
            batch = ids[start : start + self.batch_size]
            n_read = counts[start : start + len(batch)]
            input_ids, mask = pad_batch(batch, pad_id, "left")  # read positions: the right edge
            # positions counted over real tokens, as generate() does for left padding
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            enc = {
                "input_ids": input_ids.to(device),
                "attention_mask": mask.to(device),
                "position_ids": positions.to(device),
            }
            if keep:
                enc["logits_to_keep"] = max(n_read)
            state = self._state(prompts[start : start + len(batch)], mask)
            hooks = self._hooks(model, state) if intervene else []
            with attached_hooks(hooks), torch.inference_mode():
                logits = model(**enc).logits
            batch_rows = []
            for row, n in enumerate(n_read):
                rows = logits[row, -n:].float()  # a view when the model computes in float32
                with torch.inference_mode():
                    batch_rows.append(rows.sub_(torch.logsumexp(rows, dim=-1, keepdim=True)))
            yield batch_rows

    def _state(self, prompts: list[str], mask: torch.Tensor) -> dict:
        """What the hooks share during one batch: the forward-pass counter and the rows."""
        return {
            "step": -1,
            "prompts": prompts,
            "mask": mask.bool(),  # real prompt tokens, (n_prompts, width)
            # a stack that sees only the prompt (T5's encoder, encoder-only models)
            "prompt_only": not self.generative_ or self.stack_ == "encoder",
            "seq2seq_decoder": self.generative_ and self.stack_ == "decoder" and self._seq2seq,
        }

    @property
    def _seq2seq(self) -> bool:
        return _is_seq2seq(self._loaded()[0])

    # ----------------------------------------------------- encoder-only models
