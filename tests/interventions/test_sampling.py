"""Nucleus sampling without a full sort equals transformers' top-p (oracle)."""

import numpy as np
import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from msma_sklearn import Intervener
from msma_sklearn.interventions._sampling import NucleusSampling, nucleus_filter


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0, 12.0])  # flat (wide nucleus) to peaked
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95, 0.999])
def test_nucleus_filter_equals_transformers_top_p(scale, top_p):
    scores = torch.randn(48, 3000, generator=torch.Generator().manual_seed(7)) * scale
    expected = TopPLogitsWarper(top_p)(None, scores.clone())
    got = nucleus_filter(scores, top_p, first_k=64)  # small first_k: the wide-row path runs too
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


def test_nucleus_sampling_applies_temperature_first_as_transformers_does():
    scores = torch.randn(8, 500, generator=torch.Generator().manual_seed(1))
    expected = TopPLogitsWarper(0.9)(None, TemperatureLogitsWarper(0.7)(None, scores.clone()))
    assert torch.equal(NucleusSampling(0.9, 0.7)(None, scores.clone()), expected)


def test_sampled_generation_is_unchanged_by_the_fast_nucleus(monkeypatch):
    """Same seeds, same tokens as transformers' own top-p warper."""
    from msma_sklearn.interventions import _generation

    kw = dict(layers=[2], kind="scaling", alpha=1.5, do_sample=True, top_p=0.8, max_new_tokens=8)
    kw["random_state"] = 3
    prompts = ["The cat sat on the", "Markets rallied after"]
    ours = Intervener("tiny-gpt2", **kw).fit().generate(prompts)

    class HFTopP(NucleusSampling):  # transformers' warpers in the same slot
        def __call__(self, input_ids, scores):
            scores = TemperatureLogitsWarper(self.temperature)(input_ids, scores)
            return TopPLogitsWarper(self.top_p)(input_ids, scores)

    monkeypatch.setattr(_generation, "NucleusSampling", HFTopP)
    theirs = Intervener("tiny-gpt2", **kw).fit().generate(prompts)
    assert ours == theirs and all(isinstance(t, str) for t in ours)
    assert np.mean([len(t) for t in ours]) > 0


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
