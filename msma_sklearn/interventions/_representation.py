"""The encoder-only path and the measured effects: representations, masked-token
predictions, text metrics of generations, and the estimator's transform/score."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..extraction import (
    pad_batch,
    pad_token_id,
    resolve_layout,
)
from ..utils._hooks import attached_hooks
from ..utils._validation import check_texts
from ._helpers import REPRESENTATION_METRICS, _capture


class RepresentationMixin:
    """Representations, masked-token predictions and measured effects of :class:`Intervener`."""

    def _forward(self, texts: list[str], *, intervene: bool):
        """Yield ``(mask, final_states, logits or None)`` per batch for an encoder model."""
        model, tokenizer = self._loaded()
        device = next(model.parameters()).device
        layout = resolve_layout(model, self.stack_)
        pad_id = pad_token_id(tokenizer, model)
        ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
        for start in range(0, len(texts), self.batch_size):
            batch = ids[start : start + self.batch_size]
            input_ids, mask = pad_batch(batch, pad_id, "right")
            state = self._state(texts[start : start + len(batch)], mask)
            captured: dict = {}
            hooks = self._hooks(model, state) if intervene else []
            # registered last, so it sees the output after any intervention at state L
            hooks.append((layout.module, "forward", _capture(captured)))
            with attached_hooks(hooks), torch.inference_mode():
                out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device))
            logits = out.logits if self._has_lm_head_ else None
            yield mask.bool(), input_ids, captured["h"], logits

    def _representation_rows(self, texts: list[str]) -> np.ndarray:
        names = self._metric_names()
        rows = []
        batches = zip(
            self._forward(texts, intervene=False), self._forward(texts, intervene=True), strict=True
        )
        mask_id = self._loaded()[1].mask_token_id
        for (mask, input_ids, h0, logits0), (_, _, h1, logits1) in batches:
            h0, h1 = h0.double().cpu(), h1.double().cpu()
            m = mask.double()
            n = m.sum(1)
            shift = (h1 - h0).norm(dim=-1) / h0.norm(dim=-1).clamp_min(1e-12)
            cosine = torch.nn.functional.cosine_similarity(h1, h0, dim=-1)
            cols = {
                "state_shift": (shift * m).sum(1) / n,
                "state_cosine": (cosine * m).sum(1) / n,
            }
            if logits0 is not None:
                # masked positions where a text has them, else every real token
                at = mask & (input_ids == mask_id) if mask_id is not None else mask & False
                at = torch.where(at.any(1, keepdim=True), at, mask).double()
                lp0 = torch.log_softmax(logits0.double().cpu(), -1)
                lp1 = torch.log_softmax(logits1.double().cpu(), -1)
                kl = (lp0.exp() * (lp0 - lp1)).sum(-1)
                agree = (lp0.argmax(-1) == lp1.argmax(-1)).double()
                cols["prediction_kl"] = (kl * at).sum(1) / at.sum(1)
                cols["top1_agreement"] = (agree * at).sum(1) / at.sum(1)
            rows.append(torch.stack([cols[name] for name in names], dim=1).numpy())
        return np.concatenate(rows, axis=0)

    def fill_mask(self, texts, *, top_k: int = 5, baseline: bool = False) -> list[list[list[str]]]:
        """Top predictions at each mask token, with (or, ``baseline=True``, without) the intervention.

        Parameters
        ----------
        texts : list of str
            Each containing the tokenizer's mask token at least once (e.g.
            ``"[MASK]"`` for BERT, ``"<mask>"`` for RoBERTa).
        top_k : int, default=5
            Predictions kept per mask token.
        baseline : bool, default=False
            Predict without the intervention.

        Returns
        -------
        list
            Per text, per mask token, the ``top_k`` predicted tokens (best first).
        """
        check_is_fitted(self, "layers_")
        texts = check_texts(texts, name="texts")
        tokenizer = self._loaded()[1]
        if self.generative_ or not self._has_lm_head_:
            raise ValueError(
                f"fill_mask needs an encoder-only model with a masked-LM head; {self.model!r} "
                "has none (try 'tiny-bert' or a *ForMaskedLM checkpoint)."
            )
        token = tokenizer.mask_token
        missing = [i for i, t in enumerate(texts) if token not in t]
        if missing:
            raise ValueError(f"texts {missing} contain no mask token {token!r}.")
        out = []
        for mask, input_ids, _, logits in self._forward(texts, intervene=not baseline):
            top = logits.topk(top_k, dim=-1).indices.cpu()
            for b in range(input_ids.shape[0]):
                where = (input_ids[b] == tokenizer.mask_token_id) & mask[b]
                out.append(
                    [
                        [tokenizer.decode([int(t)]).strip() for t in top[b, pos]]
                        for pos in torch.nonzero(where).flatten().tolist()
                    ]
                )
        return out

    # ----------------------------------------------------------------- measure
    _DEFAULT_METRICS = ("ttr", "distinct_2", "sentence_count", "mean_sentence_length", "sentiment")

    def _metric_names(self) -> list[str]:
        if self.metrics is not None:
            return list(self.metrics)
        if getattr(self, "generative_", True):
            return list(self._DEFAULT_METRICS)
        return self._representation_metrics()

    def _measure(self, texts: list[str], n_prompts: int) -> np.ndarray:
        from ..metrics.text import TextMetrics

        if getattr(self, "_text_metrics", None) is None:
            self._text_metrics = TextMetrics(self._metric_names())
        table = self._text_metrics.compute(texts).to_numpy(dtype=float)
        # average the return sequences of each prompt (NaN-aware: a metric undefined for
        # one sequence is averaged over the others)
        per_prompt = table.reshape(n_prompts, self.num_return_sequences, -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            return np.nanmean(per_prompt, axis=1)

    def transform(self, X) -> np.ndarray:
        """Text metrics of the intervened continuations, one row per prompt.

        For an encoder-only model, the representation metrics of each text
        instead: ``state_shift`` (mean over tokens of
        ``||h'_L - h_L|| / ||h_L||`` for the final states), ``state_cosine``
        and, with a masked-LM head, ``prediction_kl`` (KL(baseline ||
        intervened) of the token predictions, nats) and ``top1_agreement``,
        averaged over the text's mask tokens if it has any, else over all
        its tokens.

        Parameters
        ----------
        X : list of str
            The prompts.

        Returns
        -------
        ndarray of shape (n_prompts, n_metrics)
            Columns named by :meth:`get_feature_names_out`.
        """
        check_is_fitted(self, "layers_")
        prompts = check_texts(X, name="X")
        if not self.generative_:
            return self._representation_rows(prompts)
        return self._measure(self.generate(prompts), len(prompts))

    def _paired(self, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(treated, baseline) metric matrices; an encoder's baseline is the identity."""
        if not self.generative_:
            treated = self._representation_rows(prompts)
            identity = [REPRESENTATION_METRICS[name] for name in self._metric_names()]
            return treated, np.broadcast_to(np.asarray(identity, float), treated.shape)
        treated = self._measure(self.generate(prompts), len(prompts))
        return treated, self._measure(self.generate_baseline(prompts), len(prompts))

    def effects(self, X):
        """Paired effects (intervened vs matched baseline) of every metric over the prompts.

        Parameters
        ----------
        X : list of str
            The prompts.

        Returns
        -------
        pandas.DataFrame
            One row per metric: means, percent change, paired Cohen's d with a
            bootstrap 95% CI, Wilcoxon p (raw and Holm-adjusted across
            metrics), and how many prompts were dropped because the metric
            was undefined (NaN) for them.
        """
        import pandas as pd

        from ..stats import holm, paired_effect

        check_is_fitted(self, "layers_")
        prompts = check_texts(X, name="X")
        treated, baseline = self._paired(prompts)
        rows = []
        for k, name in enumerate(self._metric_names()):
            ok = np.isfinite(treated[:, k]) & np.isfinite(baseline[:, k])
            row = {"metric": name, "dropped": int((~ok).sum())}
            if ok.sum() >= 2:
                row.update(
                    paired_effect(baseline[ok, k], treated[ok, k], random_state=self.random_state)
                )
            rows.append(row)
        table = pd.DataFrame(rows)
        if "wilcoxon_p" in table:
            valid = table["wilcoxon_p"].notna()
            table.loc[valid, "wilcoxon_p_holm"] = holm(table.loc[valid, "wilcoxon_p"])
        return table

    def score(self, X, y=None) -> float:
        """Paired Cohen's d of ``target_metric``, intervened minus baseline (higher = more increase).

        Parameters
        ----------
        X : list of str
            The prompts.
        y : None
            Ignored.

        Returns
        -------
        float
            d_z of ``target_metric`` over the prompts.
        """
        from ..stats import paired_cohens_d

        names = self._metric_names()
        if self.target_metric not in names:
            raise ValueError(f"target_metric {self.target_metric!r} is not among metrics {names}.")
        check_is_fitted(self, "layers_")
        prompts = check_texts(X, name="X")
        k = names.index(self.target_metric)
        treated, baseline = self._paired(prompts)
        t, b = treated[:, k], baseline[:, k]
        ok = np.isfinite(t) & np.isfinite(b)
        return paired_cohens_d(b[ok], t[ok])

    def get_feature_names_out(self, input_features=None):
        """The metric names of :meth:`transform`'s columns.

        Parameters
        ----------
        input_features : None
            Ignored (the names are the metrics').

        Returns
        -------
        ndarray of str
        """
        return np.asarray(self._metric_names(), dtype=object)
