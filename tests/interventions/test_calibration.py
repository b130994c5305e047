"""Next-token KL and dose calibration (issue #13)."""

import numpy as np
import pytest

from msma_sklearn import Intervener
from msma_sklearn.interventions import calibrate_dose, calibrate_doses, dose_response

PROMPTS = [
    "The old lighthouse keeper climbed the stairs every evening and",
    "After the long winter, the farmers in the valley",
    "She opened the letter slowly, because she already knew",
    "The committee met on Tuesday to discuss the budget, and",
    "When the train finally arrived at the station, the passengers",
    "The recipe calls for two cups of flour, a pinch of salt and",
]


def test_identity_gives_zero_kl_and_kl_grows_with_the_dose():
    iv = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling", alpha=1.0).fit()
    np.testing.assert_array_equal(iv.next_token_kl(PROMPTS), np.zeros(len(PROMPTS)))
    curve = dose_response(iv, PROMPTS, [1.0, 1.5, 3.0, 8.0])
    kls = [kl for _, kl in curve]
    assert kls[0] == 0.0 and all(b > a for a, b in zip(kls, kls[1:], strict=False))
    # the KL of one prompt does not depend on the others in its batch (left padding)
    alone = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling", alpha=3.0).fit()
    together = alone.next_token_kl(PROMPTS)
    single = alone.next_token_kl(PROMPTS[:1])
    assert single[0] == pytest.approx(together[0], rel=1e-3)  # float32 padding noise


def test_next_token_kl_needs_a_causal_lm():
    with pytest.raises(ValueError, match="causal LM"):
        Intervener("tiny-bert", layers=[1], kind="scaling", alpha=2.0).fit().next_token_kl(PROMPTS)


@pytest.mark.slow
@pytest.mark.parametrize("kind,upper", [("scaling", 3.0), ("noise", 2.0)])
def test_calibration_reaches_the_target_kl_on_smollm2(kind, upper):
    iv = Intervener("smollm2-135m", layers=[10, 11, 12], kind=kind, random_state=0)
    result = calibrate_dose(iv, PROMPTS, 0.3, upper=upper, tol=0.1)
    assert result.converged
    assert result.mean_kl == pytest.approx(0.3, rel=0.1)
    # an independent re-measurement at the returned strength
    again = iv.set_params(**{result.parameter: result.strength}).fit(PROMPTS)
    assert np.mean(again.next_token_kl(PROMPTS)) == pytest.approx(result.mean_kl, rel=1e-5)


def test_window_on_a_fitted_layout():
    table = {"local": [0, 1], "intermediate": [2, 3, 4], "global": [4]}
    iv = Intervener("tiny-gpt2", scale="intermediate", scale_layers=table, window=1).fit()
    assert iv.layers_.tolist() == [3]  # the centre of 2, 3, 4
    iv = Intervener("tiny-gpt2", scale="intermediate", scale_layers=table, window=2).fit()
    assert iv.layers_.tolist() == [2, 3]  # the lower middle when the parity differs
    # one layer from every scale, whatever its size: the same number of layers each
    counts = {
        scale: Intervener("tiny-gpt2", scale=scale, scale_layers=table, window=1).fit().layers_
        for scale in table
    }
    assert {k: v.tolist() for k, v in counts.items()} == {
        "local": [0],
        "intermediate": [3],
        "global": [4],
    }
    with pytest.raises(ValueError, match="window=2 is wider than scale 'global'"):
        Intervener("tiny-gpt2", scale="global", scale_layers=table, window=2).fit()
    with pytest.raises(ValueError, match="window= applies to scale="):
        Intervener("tiny-gpt2", layers=[1, 2], window=1).fit()


def test_several_targets_share_evaluations_and_each_reaches_its_kl():
    iv = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling")
    results = calibrate_doses(iv, PROMPTS, [0.0005, 0.002], upper=20.0, tol=0.05)
    assert [r.converged for r in results] == [True, True]
    for r, target in zip(results, (0.0005, 0.002), strict=True):
        assert r.mean_kl == pytest.approx(target, rel=0.05)
        # an independent measurement at the strength it returned
        again = iv.set_params(alpha=r.strength).fit()
        assert np.mean(again.next_token_kl(PROMPTS)) == pytest.approx(r.mean_kl, rel=1e-5)
    assert results[0].strength < results[1].strength
    # the second search starts from the first's bracket: fewer new strengths than a fresh one
    fresh = calibrate_dose(iv, PROMPTS, 0.002, upper=20.0, tol=0.05)
    seen_first = {v for v, _ in results[0].evaluations}
    new_in_second = {v for v, _ in results[1].evaluations} - seen_first
    assert len(new_in_second) < len({v for v, _ in fresh.evaluations})


def test_an_unreachable_target_is_reported_not_converged():
    iv = Intervener("tiny-gpt2", layers=[1], kind="scaling")
    result = calibrate_dose(iv, PROMPTS, 0.5, upper=1.2)
    assert not result.converged and result.strength == 1.2 and result.mean_kl < 0.5


def test_teacher_forced_read_out_is_the_models_own_forward_pass():
    """Oracle: the rows of continuation_logprobs are the model's log-softmax on the
    unpadded prompt + continuation, at the positions predicting each continuation token;
    the first row is the prompt's next token."""
    import torch

    from msma_sklearn.extraction import load_model

    conts = [" and then the rain came down", " quietly", ""]
    iv = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling", alpha=2.0).fit()
    rows = iv.continuation_logprobs(PROMPTS[:3], conts, intervene=False)
    model, tok = load_model("tiny-gpt2")
    for prompt, cont, got in zip(PROMPTS[:3], conts, rows, strict=True):
        p = tok(prompt)["input_ids"]
        c = tok(cont, add_special_tokens=False)["input_ids"]
        assert got.shape == (max(len(c), 1), model.config.vocab_size)
        with torch.inference_mode():
            logits = model(torch.tensor([p + c])).logits[0].float()
        want = torch.log_softmax(logits, -1)[len(p) - 1 : len(p) - 1 + got.shape[0]]
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)
    first = np.stack([r[0] for r in iv.continuation_logprobs(PROMPTS[:3], conts)])
    np.testing.assert_allclose(first, iv.next_token_logprobs(PROMPTS[:3]), atol=1e-4)
    short = iv.continuation_logprobs(PROMPTS[:1], conts[:1], max_tokens=2)
    assert short[0].shape[0] == 2
    # the identity reads zero KL at every position
    same = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling", alpha=1.0).fit()
    np.testing.assert_array_equal(same.continuation_kl(PROMPTS[:3], conts), np.zeros(3))
    with pytest.raises(TypeError, match="continuations must be a list of strings"):
        iv.continuation_kl(PROMPTS[:1], "one string")
    with pytest.raises(ValueError, match="One continuation per prompt"):
        iv.continuation_kl(PROMPTS[:3], conts[:2])
    with pytest.raises(ValueError, match="positions='all'"):
        Intervener(
            "tiny-gpt2", layers=[1], kind="scaling", alpha=2.0, positions="prompt"
        ).fit().continuation_kl(PROMPTS[:1], conts[:1])


def test_a_dose_calibrated_over_generated_positions_holds_on_held_out_prompts():
    """Calibrate on some prompts' baseline continuations (teacher-forced), then measure the
    same KL on other prompts' own baseline continuations: within 30% of the target,
    and the prompt-edge measure alone differs from it."""
    more = PROMPTS + [
        "Rain fell on the roofs of the old town all night long, and",
        "The museum opened a new wing devoted to early maps, where",
        "Nobody expected the small bakery on the corner to",
        "In the spring the river rose higher than anyone remembered, so",
        "The engineers tested the bridge with heavy trucks before",
        "His grandmother kept every letter she had ever received in",
    ]
    cal, held = more[::2], more[1::2]
    base = Intervener(
        "tiny-gpt2", layers=[1], max_new_tokens=16, do_sample=True, random_state=0
    ).fit()
    cal_cont, held_cont = base.generate_baseline(cal), base.generate_baseline(held)
    iv = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling")
    (result,) = calibrate_doses(
        iv, cal, [0.002], upper=20.0, tol=0.05, continuations=cal_cont, max_tokens=16
    )
    assert result.converged
    fitted = iv.set_params(alpha=result.strength).fit()
    on_cal = np.mean(fitted.continuation_kl(cal, cal_cont, max_tokens=16))
    assert on_cal == pytest.approx(result.mean_kl, rel=1e-5)  # the same measure, re-run
    on_held = np.mean(fitted.continuation_kl(held, held_cont, max_tokens=16))
    assert on_held == pytest.approx(0.002, rel=0.3)
    edge = np.mean(fitted.next_token_kl(cal))
    assert abs(edge - on_cal) > 1e-6


def test_a_shared_baseline_gives_the_same_calibration_and_kl():
    """The unmodified rows computed once (as the study shares them across operators) give
    the evaluations of a search that computes them itself, and a baseline of other
    positions is refused."""
    conts = [" and then the rain came down", " quietly", "", " with", " so", " and the"]
    iv = Intervener("tiny-gpt2", layers=[1, 2], kind="scaling")
    base = Intervener("tiny-gpt2", layers=[1]).fit()
    rows = base.continuation_logprobs(PROMPTS, conts, intervene=False, max_tokens=4)
    kw = dict(upper=20.0, tol=0.05, continuations=conts, max_tokens=4)
    own = calibrate_doses(iv, PROMPTS, [0.0005, 0.002], **kw)
    shared = calibrate_doses(iv, PROMPTS, [0.0005, 0.002], baseline=rows, **kw)
    assert [r.evaluations for r in shared] == [r.evaluations for r in own]
    fitted = iv.set_params(alpha=own[1].strength).fit()
    np.testing.assert_array_equal(
        fitted.continuation_kl(PROMPTS, conts, max_tokens=4, baseline=rows),
        fitted.continuation_kl(PROMPTS, conts, max_tokens=4),
    )
    # the streamed KL (rows never gathered) against the gathered rows' closed form
    treated = fitted.continuation_logprobs(PROMPTS, conts, max_tokens=4)
    want = [(np.exp(b) * (b - t)).sum(1).mean() for b, t in zip(rows, treated, strict=True)]
    np.testing.assert_allclose(
        fitted.continuation_kl(PROMPTS, conts, max_tokens=4), want, rtol=1e-4, atol=1e-9
    )
    # without continuations: one row per prompt, next_token_logprobs' shape
    edge = calibrate_dose(iv, PROMPTS, 0.002, upper=20.0, tol=0.05)
    edge_shared = calibrate_dose(
        iv, PROMPTS, 0.002, upper=20.0, tol=0.05,
        baseline=base.next_token_logprobs(PROMPTS, intervene=False),
    )  # fmt: skip
    assert edge_shared.evaluations == edge.evaluations
    with pytest.raises(ValueError, match="rows per prompt"):
        calibrate_dose(iv, PROMPTS, 0.002, baseline=rows, **{**kw, "max_tokens": 2})
    with pytest.raises(ValueError, match="rows per prompt"):
        fitted.continuation_kl(PROMPTS, conts, max_tokens=2, baseline=rows)
    with pytest.raises(ValueError, match="one array of log-probability rows per prompt"):
        calibrate_dose(iv, PROMPTS, 0.002, baseline=rows[:2], **kw)


def test_kl_rows_in_chunks_is_the_whole_array_expression():
    import torch

    from msma_sklearn.interventions._helpers import kl_rows

    gen = torch.Generator().manual_seed(0)
    base = torch.log_softmax(torch.randn(21, 300, generator=gen) * 2, -1)  # 21: a partial chunk
    treated = torch.log_softmax(base + torch.randn(21, 300, generator=gen), -1)
    want = (base.double().exp() * (base.double() - treated.double())).sum(-1).numpy()
    np.testing.assert_allclose(kl_rows(base, treated), want, rtol=1e-5)
    assert kl_rows(base, base).tolist() == [0.0] * 21
