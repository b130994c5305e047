"""Nucleus (top-p) sampling without sorting the whole vocabulary."""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

#: tokens looked at first; the nucleus of a 0.95 top-p almost always lies among them
_TOP_K_FIRST = 1024


def nucleus_filter(scores: torch.Tensor, top_p: float, first_k: int = _TOP_K_FIRST) -> torch.Tensor:
    """Set every logit outside the top-p nucleus to ``-inf`` (rows are distributions).

    The same rule as transformers' ``TopPLogitsWarper`` (keep a token when the
    probability of the tokens more likely than it is below ``top_p``; the most
    likely token always stays), with probabilities in float64 (the two can
    differ only on a token whose cumulative mass is within float32 rounding of
    ``top_p``), computed from the ``first_k`` most likely tokens
    of each row: when they already hold ``top_p`` of the mass, no token beyond
    them can be in the nucleus, so the full sort of a 262k-token vocabulary
    (Gemma 3) is needed only for the rare row whose nucleus is wider.
    Measured on Gemma-3-270M (CPU): the full sort took about half the time of
    sampled generation.
    """
    if top_p >= 1.0:
        return scores
    # probabilities in float64: float32 softmax over 262k tokens was off by ~1e-4 of mass
    # here (measured on Gemma-3-270M), enough to move the nucleus edge by a token
    log_norm = torch.logsumexp(scores.double(), dim=-1, keepdim=True)
    k = min(first_k, scores.shape[-1])
    top_logits, idx = scores.topk(k, dim=-1)  # descending
    top = (top_logits.double() - log_norm).exp()
    wide = top.sum(dim=-1) < top_p
    if bool(wide.any()):  # the nucleus reaches past the first k: sort those rows fully
        sorted_logits, idx_w = scores[wide].sort(dim=-1, descending=True)
        top_w = (sorted_logits.double() - log_norm[wide]).exp()
        out = torch.full_like(scores, float("-inf"))
        out[~wide] = _keep(scores[~wide], top[~wide], idx[~wide], top_p)
        out[wide] = _keep(scores[wide], top_w, idx_w, top_p)
        return out
    return _keep(scores, top, idx, top_p)


def _keep(scores, top, idx, top_p):
    before = top.cumsum(dim=-1) - top  # mass of the strictly more likely tokens
    keep = before < top_p
    keep[:, 0] = True
    out = torch.full_like(scores, float("-inf"))
    return out.scatter(1, idx, torch.where(keep, scores.gather(1, idx), out[:, : idx.shape[1]]))


class NucleusSampling(LogitsProcessor):
    """Temperature, then the top-p nucleus (:func:`nucleus_filter`), for ``generate``.

    Passed as a ``logits_processor`` with transformers' own temperature and top-p
    switched off, so the order (temperature first, as transformers does) is ours.
    """

    def __init__(self, top_p: float, temperature: float = 1.0):
        self.top_p = float(top_p)
        self.temperature = float(temperature)

    def __call__(self, input_ids, scores):
        if self.temperature != 1.0:
            scores = scores / self.temperature
        return nucleus_filter(scores, self.top_p)
