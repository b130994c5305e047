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
from ._helpers import _is_seq2seq, kl_rows
from ._sampling import NucleusSampling


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
            kwargs = dict(
                max_new_tokens=self.max_new_tokens,
                do_sample=self.do_sample,
                num_return_sequences=self.num_return_sequences,
                pad_token_id=pad_id,
            )
            if self.do_sample:  # transformers' own top-p sorts the whole vocabulary each step
                nucleus = NucleusSampling(self.top_p, self.sampling_temperature)
                # top_k=0: transformers would otherwise fill in its global default top_k=50
                kwargs.update(
                    logits_processor=LogitsProcessorList([nucleus]), temperature=1.0, top_k=0
                )
            with (
                attached_hooks(hooks),
                torch.inference_mode(),
                torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
            ):
                torch.manual_seed(self._seed(start))
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
        check_is_fitted(self, "layers_")
        prompts = check_texts(prompts, name="prompts")
        model, tokenizer = self._loaded()
        if not self.generative_ or _is_seq2seq(model):
            raise ValueError(
                f"next_token_kl needs a causal LM; {self.model!r} is "
                f"{'encoder-only' if not self.generative_ else 'an encoder-decoder'}."
            )
        device = next(model.parameters()).device
        pad_id = pad_token_id(tokenizer, model)
        ids = tokenizer(prompts, add_special_tokens=True)["input_ids"]
        # the LM head on the last position only (a 262k vocabulary makes the rest costly)
        last_only = "logits_to_keep" in inspect.signature(model.forward).parameters
        out = []
        for start in range(0, len(prompts), self.batch_size):
            batch = ids[start : start + self.batch_size]
            input_ids, mask = pad_batch(batch, pad_id, "left")  # last column: last real token
            # positions counted over real tokens, as generate() does for left padding
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            enc = {
                "input_ids": input_ids.to(device),
                "attention_mask": mask.to(device),
                "position_ids": positions.to(device),
            }
            if last_only:
                enc["logits_to_keep"] = 1
            state = self._state(prompts[start : start + len(batch)], mask)
            hooks = self._hooks(model, state) if intervene else []
            with attached_hooks(hooks), torch.inference_mode():
                logits = model(**enc).logits[:, -1].float()
            out.append(torch.log_softmax(logits, dim=-1).cpu())
        return torch.cat(out)

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
