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
