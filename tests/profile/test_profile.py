"""The layer profile's signals against oracles: TwoNN on data of known dimension, the
logit lens at the last state, block deletion of an identity block, a planted jump
recovered by the exact DP, and the boundary test against admissible random splits."""

import copy

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll

from msma_sklearn.extraction import load_model
from msma_sklearn.profile import (
    LayerProfile,
    boundaries_against_profile,
    deletion_kl,
    layer_profile,
    logit_lens_kl,
    reference_shapes,
    twonn_dimension,
)

TEXTS = [
    "The cat sat on the mat and looked at the door.",
    "A long time ago, in a valley far away, a farmer planted wheat.",
    "Numbers go up and down; the market never sleeps.",
    "She opened the letter slowly, because she already knew.",
    "Rain fell on the roofs of the old town all night long.",
    "The committee met on Tuesday to discuss the budget.",
]


def _embed(X, dim=100, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, X.shape[1])))
    return X @ q.T


@pytest.mark.parametrize("d", [2, 5, 10])
def test_twonn_on_a_linear_subspace(d):
    X = _embed(np.random.default_rng(d).normal(size=(1500, d)))
    est, lo, hi = twonn_dimension(X, random_state=0)
    assert est == pytest.approx(d, rel=0.1)  # Facco et al.: within ~10% at this n
    assert lo <= est <= hi or abs(est - (lo + hi) / 2) < 0.1 * d


def test_twonn_on_a_swiss_roll_in_100_dimensions():
    X, _ = make_swiss_roll(2000, random_state=0)
    est, _, _ = twonn_dimension(_embed(X), random_state=0)
    assert est == pytest.approx(2.0, rel=0.1)


def test_twonn_refuses_too_few_points():
    with pytest.raises(ValueError, match="at least 10 points"):
        twonn_dimension(np.zeros((5, 3)))


def test_logit_lens_is_zero_at_the_last_state():
    kl = logit_lens_kl("tiny-gpt2", TEXTS, batch_size=4, verbose=False)
    model, _ = load_model("tiny-gpt2")
    assert kl.shape == (len(TEXTS), model.config.n_layer + 1)
    np.testing.assert_allclose(kl[:, -1], 0.0, atol=1e-5)
    assert np.all(kl[:, :-1] >= -1e-6) and kl[:, 0].mean() > 1e-4


def test_deleting_an_identity_block_changes_nothing():
    model, tokenizer = load_model("tiny-gpt2")
    model = copy.deepcopy(model)
    block = model.transformer.h[1]
    for proj in (block.attn.c_proj, block.mlp.c_proj):  # the block now adds nothing
        proj.weight.data.zero_()
        proj.bias.data.zero_()
    kl = deletion_kl((model, tokenizer), TEXTS, verbose=False)
    assert kl.shape == (len(TEXTS), model.config.n_layer)
    np.testing.assert_allclose(kl[:, 1], 0.0, atol=1e-6)
    assert kl[:, 0].mean() > 1e-4  # the other blocks matter


def test_a_stride_reads_every_kth_token_of_the_same_forward_pass():
    """Oracle: the logit lens at stride 3 on one text is the mean over positions 0, 3, 6,
    ... of per-token KLs computed by hand; deletion at stride 3 likewise (first block)."""
    import torch

    model, tokenizer = load_model("tiny-gpt2")
    text = TEXTS[1]
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        res = model(ids, output_hidden_states=True)
        final = torch.log_softmax(res.logits[0].float(), -1)
        lens = torch.log_softmax(
            model.lm_head(model.transformer.ln_f(res.hidden_states[1]))[0].float(), -1
        )
        per_token = (final.exp() * (final - lens)).sum(-1)

        def skip(module, args, kwargs, output):
            h = args[0] if args else kwargs["hidden_states"]
            return (h, *output[1:]) if isinstance(output, tuple) else h

        handle = model.transformer.h[0].register_forward_hook(skip, with_kwargs=True)
        try:
            cut = torch.log_softmax(model(ids).logits[0].float(), -1)
        finally:
            handle.remove()
        deleted = (final.exp() * (final - cut)).sum(-1)
    got = logit_lens_kl("tiny-gpt2", [text], stride=3, verbose=False)
    assert got[0, 1] == pytest.approx(float(per_token[::3].mean()), rel=1e-4)
    assert logit_lens_kl("tiny-gpt2", [text], verbose=False)[0, 1] == pytest.approx(
        float(per_token.mean()), rel=1e-4
    )
    got = deletion_kl("tiny-gpt2", [text], stride=3, verbose=False)
    assert got[0, 0] == pytest.approx(float(deleted[::3].mean()), rel=1e-4)
    # attention sinks left out: positions 1, 4, 7, ...
    got = logit_lens_kl("tiny-gpt2", [text], stride=3, sink_tokens=1, verbose=False)
    assert got[0, 1] == pytest.approx(float(per_token[1::3].mean()), rel=1e-4)
    got = deletion_kl("tiny-gpt2", [text], sink_tokens=1, verbose=False)
    assert got[0, 0] == pytest.approx(float(deleted[1:].mean()), rel=1e-4)
    with pytest.raises(ValueError, match="No position is left to read"):
        logit_lens_kl("tiny-gpt2", [text], sink_tokens=500, verbose=False)
    # a short text beside a long one: NaN for it (not 0), with a warning naming it
    with pytest.warns(UserWarning, match="1 of 2 text.s. have no token left to read"):
        got = logit_lens_kl("tiny-gpt2", ["Hi", text], sink_tokens=3, verbose=False)
    assert np.isnan(got[0]).all() and np.isfinite(got[1]).all()
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        deletion_kl("tiny-gpt2", [text], stride=0, verbose=False)


def test_encoder_only_models_are_refused_by_the_model_signals():
    with pytest.raises(ValueError, match="not a decoder-only causal LM"):
        logit_lens_kl("tiny-bert", TEXTS, verbose=False)


def _profile(values):
    return LayerProfile("planted", len(next(iter(values.values()))), values, {}, 10, 4)


def test_a_planted_jump_is_recovered_and_boundaries_at_it_beat_chance():
    level = np.r_[np.full(6, 3.0), np.full(6, 1.0), np.full(6, 2.0)]
    step = np.r_[np.full(5, 0.1), 0.9, np.full(5, 0.1), 0.8, np.full(5, 0.1)]
    profile = _profile({"logit_lens_kl": level, "deletion_kl": step})
    tests = {t.signal: t for t in boundaries_against_profile(profile, [6, 12], min_size=2)}
    for t in tests.values():
        assert t.own_boundaries == [6, 12] and t.distance == 0.0
        assert t.p < 0.02 and t.change_at_boundaries > t.null_mean
    # boundaries elsewhere: no better than chance
    elsewhere = boundaries_against_profile(profile, [3, 9], min_size=2)
    assert all(t.p > 0.3 for t in elsewhere)
    # the exact permutation p: one admissible split in the null is the observed one
    assert tests["logit_lens_kl"].p == pytest.approx(1 / 91)  # C(13, 2) splits of 18 by 2
    assert tests["logit_lens_kl"].n_splits == 91
    assert tests["logit_lens_kl"].min_p == pytest.approx(1 / 91)


def test_reference_shapes_on_planted_profiles():
    """Each published shape holds on a profile built to have it and fails on its mirror."""
    n = 9
    hump = np.r_[np.linspace(10, 30, 5), np.linspace(28, 12, 4)]
    fragile_ends = np.r_[2.0, np.full(n - 3, 0.1), 1.5]  # deletion: first and last blocks
    falling = np.linspace(6.0, 0.0, n)
    intervals = {
        "intrinsic_dimension": np.c_[hump - 1, hump + 1],
        "deletion_kl": np.c_[fragile_ends, fragile_ends],
        "logit_lens_kl": np.c_[falling, falling],
    }
    good = _profile({"logit_lens_kl": falling, "deletion_kl": fragile_ends})
    good = LayerProfile(
        "m",
        n,
        {**good.values, "intrinsic_dimension": hump},
        intervals,
        10,
        4,
    )
    checks = {c.signal: c for c in reference_shapes(good)}
    assert all(c.holds for c in checks.values())
    assert "blocks [1, 8]" in checks["deletion_kl"].observed
    bad = LayerProfile(
        "m",
        n,
        {
            "logit_lens_kl": falling[::-1],
            "deletion_kl": np.r_[0.1, 0.1, 3.0, 2.0, np.full(n - 5, 0.1)],
            "intrinsic_dimension": np.linspace(30, 10, n),
        },
        {**intervals, "intrinsic_dimension": np.c_[hump - 1, hump + 1]},
        10,
        4,
    )
    assert [c.holds for c in reference_shapes(bad)] == [False, False, False]
    # a hump no taller than the interval at its peak is not a rise and fall
    flat = LayerProfile(
        "m",
        3,
        {"intrinsic_dimension": np.array([10.0, 10.5, 10.0])},
        {"intrinsic_dimension": np.array([[9, 11], [9, 12], [9, 11]], dtype=float)},
        10,
        4,
    )
    shapes = reference_shapes(flat)
    assert [c.holds for c in shapes] == [None, False, None]
    assert shapes[0].observed == "not measured"


def test_layer_profile_on_a_tiny_model_end_to_end():
    profile = layer_profile("tiny-gpt2", TEXTS * 3, offset=2, batch_size=6, verbose=False)
    assert list(profile.values) == [
        "logit_lens_kl",
        "deletion_kl",
        "angular_next",
        "angular_offset",
        "intrinsic_dimension",
        "largest_unit_share",
    ]
    n = profile.n_states
    assert profile.values["deletion_kl"].shape == (n - 1,)
    assert profile.values["angular_next"].shape == (n - 1,)
    assert np.isnan(profile.values["angular_offset"][-2:]).all()  # no state 2 deeper
    for name, v in profile.values.items():
        ci = profile.intervals[name]
        ok = np.isfinite(v)
        if name != "intrinsic_dimension":
            assert np.all(ci[ok, 0] <= v[ok] + 1e-9) and np.all(v[ok] <= ci[ok, 1] + 1e-9)
    assert profile.to_dict()["n_states"] == n
    with pytest.raises(ValueError, match="Unknown signals"):
        layer_profile("tiny-gpt2", TEXTS, signals=["phase"])


@pytest.mark.parametrize("name", ["tiny-gpt2", "smollm2-135m"])
def test_replaying_the_blocks_before_the_deleted_one_changes_no_value(name):
    """Oracle: every block deleted by a full forward pass with the block skipped (no
    replay of the earlier blocks' recorded outputs), per-token KL averaged by hand."""
    import torch

    from msma_sklearn.extraction import resolve_layout

    model, tokenizer = load_model(name)
    blocks = resolve_layout(model).blocks
    ids = torch.tensor([tokenizer(TEXTS[0])["input_ids"]])

    def skip(module, args, kwargs, output):
        h = args[0] if args else kwargs["hidden_states"]
        return (h, *output[1:]) if isinstance(output, tuple) else h

    want = []
    with torch.inference_mode():
        full = torch.log_softmax(model(ids).logits[0].float(), -1)
        for block in blocks:
            handle = block.register_forward_hook(skip, with_kwargs=True)
            try:
                cut = torch.log_softmax(model(ids).logits[0].float(), -1)
            finally:
                handle.remove()
            want.append(float((full.exp() * (full - cut)).sum(-1).mean()))
    got = deletion_kl((model, tokenizer), TEXTS[:1], verbose=False)[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    assert all("forward" not in vars(b) for b in blocks)  # every block's own forward back
