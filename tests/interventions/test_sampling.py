"""Nucleus sampling without a full sort or a multinomial over the vocabulary: the nucleus
equals transformers' top-p (oracle), and one uniform per row draws from it."""

import numpy as np
import pytest
import torch
from scipy import stats
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from msma_sklearn import Intervener
from msma_sklearn.interventions._sampling import NucleusSampler, nucleus_filter, nucleus_sample


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 12.0])  # flat (wide nucleus) to peaked
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95, 0.999])
def test_nucleus_filter_equals_transformers_top_p(scale, top_p):
    scores = torch.randn(48, 3000, generator=torch.Generator().manual_seed(7)) * scale
    expected = TopPLogitsWarper(top_p)(None, scores.clone())
    # first_k=8: rows whose nucleus needs 8, 128 or all 3,000 tokens all occur
    got = nucleus_filter(scores, top_p, first_k=8)
    differ = torch.isfinite(got) != torch.isfinite(expected)
    # kept logits are the input's own; the two may disagree only on a token whose
    # cumulative mass is within float32 rounding of top_p (they sum in opposite orders)
    assert torch.equal(got[~differ], expected[~differ])
    probs = scores.softmax(-1)
    for row, col in differ.nonzero().tolist():
        above = probs[row][probs[row] > probs[row, col]].sum()
        assert abs(float(above) - top_p) < 1e-5
    assert int(differ.sum(1).max()) <= 1  # at most the one boundary token of a row


def test_nucleus_filter_keeps_at_least_the_most_likely_token():
    scores = torch.tensor([[10.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    got = nucleus_filter(scores, 0.01)
    assert torch.isfinite(got).sum(1).tolist() == [1, 1]
    assert nucleus_filter(scores, 1.0) is scores


@pytest.mark.parametrize("first_k", [2, 1024])  # the nucleus beyond the first k, and within
@pytest.mark.parametrize("top_p", [0.6, 0.95, 1.0])
def test_one_uniform_per_row_inverts_the_nucleus_cdf(first_k, top_p):
    """Oracle: numpy's float64 softmax, sorted, cut at top_p, renormalised, inverted at the
    same uniforms."""
    scores = torch.randn(64, 40, generator=torch.Generator().manual_seed(3)) * 2
    got = nucleus_sample(scores, top_p, torch.Generator().manual_seed(11), first_k=first_k)
    u = torch.rand(64, generator=torch.Generator().manual_seed(11), dtype=torch.float64).numpy()
    x = scores.numpy().astype(np.float64)
    for row in range(64):
        p = np.exp(x[row] - x[row].max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]
        kept = order[(before < top_p) | (np.arange(40) == 0)]
        cdf = np.cumsum(p[kept]) / p[kept].sum()
        assert int(got[row]) == kept[np.searchsorted(cdf, u[row], side="right")]


def test_draws_follow_the_renormalised_nucleus():
    """Known distribution: 40,000 draws from one row against the nucleus' probabilities."""
    logits = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0])
    scores = logits.repeat(40_000, 1)
    draws = nucleus_sample(scores, 0.9, torch.Generator().manual_seed(0), first_k=3)
    support = torch.isfinite(nucleus_filter(logits[None], 0.9))[0]
    counts = np.bincount(draws.numpy(), minlength=8)
    assert counts[~support.numpy()].sum() == 0 and support.sum() >= 4
    p = logits[support].softmax(-1).double().numpy()
    assert stats.chisquare(counts[support.numpy()], p * 40_000).pvalue > 1e-3


def test_the_sampler_applies_temperature_first_and_leaves_greedy_one_token():
    scores = torch.randn(16, 500, generator=torch.Generator().manual_seed(1))
    nucleus = TopPLogitsWarper(0.9)(None, TemperatureLogitsWarper(0.7)(None, scores.clone()))
    out = NucleusSampler(0.9, 0.7, torch.Generator().manual_seed(0))(None, scores.clone())
    assert (torch.isfinite(out).sum(1) == 1).all()  # every logit but the draw is -inf
    assert torch.isfinite(nucleus.gather(1, out.argmax(1, keepdim=True))).all()


def test_sampled_generation_is_seeded_locally_and_reduces_to_greedy_at_a_tiny_nucleus():
    kw = dict(layers=[2], kind="scaling", alpha=1.5, do_sample=True, top_p=0.8, max_new_tokens=8)
    prompts = ["The cat sat on the", "Markets rallied after"]
    state = torch.get_rng_state()
    first = Intervener("tiny-gpt2", random_state=3, **kw).fit().generate(prompts)
    assert torch.equal(state, torch.get_rng_state())  # no global seed set or consumed
    assert first == Intervener("tiny-gpt2", random_state=3, **kw).fit().generate(prompts)
    assert first != Intervener("tiny-gpt2", random_state=4, **kw).fit().generate(prompts)
    # a nucleus of one token is the argmax: sampling equals greedy decoding
    tiny = Intervener("tiny-gpt2", random_state=3, **{**kw, "top_p": 1e-9}).fit()
    greedy = Intervener("tiny-gpt2", **{**kw, "do_sample": False}).fit()
    assert tiny.generate(prompts) == greedy.generate(prompts)


def test_sampling_is_pure_nucleus_without_transformers_implicit_top_k(monkeypatch):
    """transformers fills an unset top_k with 50; the study samples from the nucleus only."""
    from transformers.generation.logits_process import TopKLogitsWarper

    calls = []
    real = TopKLogitsWarper.__call__

    def spy(self, input_ids, scores):
        calls.append(self.top_k)
        return real(self, input_ids, scores)

    monkeypatch.setattr(TopKLogitsWarper, "__call__", spy)
    kw = dict(layers=[2], kind="scaling", alpha=1.0, do_sample=True, top_p=0.9, max_new_tokens=3)
    Intervener("tiny-gpt2", random_state=0, **kw).fit().generate(["The cat sat"])
    assert calls == []
