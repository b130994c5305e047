"""The temperature control: the temperature that matches a planted next-token entropy,
on closed forms and on a tiny model's own next-token distributions."""

import numpy as np
import pytest

from msma_sklearn.interventions import Intervener, next_token_entropy, temperature_for_entropy


def test_entropy_closed_forms():
    assert next_token_entropy(np.zeros((2, 8)))[0] == pytest.approx(np.log(8))
    one_hot = np.log(np.array([[1.0, 0.0, 0.0]]))  # -inf logits are masked, not NaN
    assert next_token_entropy(one_hot)[0] == pytest.approx(0.0)
    # two tokens with logit gap g at temperature t: the binary entropy of sigmoid(g / t)
    p = 1 / (1 + np.exp(-2.0 / 0.5))
    want = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert next_token_entropy(np.array([[2.0, 0.0]]), 0.5)[0] == pytest.approx(want)
    with pytest.raises(ValueError, match="temperature"):
        next_token_entropy(np.zeros((1, 2)), 0.0)


@pytest.mark.parametrize("planted", [0.5, 0.864, 1.0, 1.7])
def test_temperature_recovers_a_planted_entropy(planted):
    rng = np.random.default_rng(1)
    logits = 4 * rng.normal(size=(16, 300))
    target = next_token_entropy(logits, planted).mean()
    assert temperature_for_entropy(logits, target) == pytest.approx(planted, rel=1e-3)


def test_targets_out_of_reach_return_the_nearest_end():
    logits = np.random.default_rng(0).normal(size=(4, 10))
    assert temperature_for_entropy(logits, 0.0) == 0.05
    assert temperature_for_entropy(logits, 50.0) == 20.0
    with pytest.raises(ValueError, match="target"):
        temperature_for_entropy(logits, np.nan)


def test_on_a_tiny_models_own_distributions():
    """The unmodified model sampled at the returned temperature has the planted entropy,
    and an identity intervention needs temperature 1."""
    prompts = ["The cat sat on the mat and", "A long time ago in a valley", "Numbers go up"]
    iv = Intervener("tiny-gpt2", layers=[1], kind="scaling", alpha=1.0).fit()
    base = iv.next_token_logprobs(prompts, intervene=False)
    target = next_token_entropy(base, 0.7).mean()
    t = temperature_for_entropy(base, target)
    assert t == pytest.approx(0.7, rel=1e-3)
    same = next_token_entropy(iv.next_token_logprobs(prompts)).mean()
    assert temperature_for_entropy(base, same) == pytest.approx(1.0, rel=1e-3)
    # amplifying a middle state: the control reproduces whatever entropy it gives
    amp = Intervener("tiny-gpt2", layers=[2], kind="scaling", alpha=4.0).fit()
    h = next_token_entropy(amp.next_token_logprobs(prompts)).mean()
    t_amp = temperature_for_entropy(base, h)
    assert next_token_entropy(base, t_amp).mean() == pytest.approx(h, rel=1e-3)


@pytest.mark.slow
def test_amplifying_late_states_of_smollm2_acts_like_cooling():
    """Scaling SmolLM2's late hidden states by alpha > 1 sharpens the next-token
    distribution: the matched temperature is below 1 (the confound the control removes)."""
    prompts = [
        "The committee met on Tuesday to discuss the budget, and",
        "After the long winter, the farmers in the valley",
        "She opened the letter slowly, because she already knew",
        "The old lighthouse keeper climbed the stairs every evening and",
    ]
    iv = Intervener("smollm2-135m", layers=[25, 26, 27], kind="scaling", alpha=1.22).fit()
    base = iv.next_token_logprobs(prompts, intervene=False)
    h = next_token_entropy(iv.next_token_logprobs(prompts)).mean()
    assert h < next_token_entropy(base).mean()
    assert temperature_for_entropy(base, h) < 1.0


def test_float32_rows_in_chunks_match_the_float64_closed_form():
    """Oracle: numpy's float64 entropy of the same rows; a float32 tensor (as the study
    passes a model's rows) is read in its own precision without a float64 copy."""
    import torch

    logits = np.random.default_rng(2).normal(size=(11, 4000)) * 3  # 11: a partial chunk
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    want = -(p * np.log(p)).sum(1)
    rows = torch.log_softmax(torch.tensor(logits, dtype=torch.float32), -1)
    np.testing.assert_allclose(next_token_entropy(rows), want, rtol=1e-5)
    np.testing.assert_allclose(next_token_entropy(logits), want, rtol=1e-12)
    target = float(next_token_entropy(logits, 0.7).mean())
    assert temperature_for_entropy(rows, target) == pytest.approx(0.7, rel=1e-3)
