"""Per-layer probes: planted signal, intervals, the control task."""

import numpy as np
import pytest

from msma_sklearn.metrics import LayerProbes, control_labels, probe_layers, scale_name_tests


def test_control_labels_are_a_function_of_the_words():
    texts = ["the cat sat", "sat the cat", "a dog ran", "ran a dog", "cat dog"]
    y = ["x", "y", "x", "y", "x"]
    c = control_labels(texts, y, random_state=3)
    assert c[0] == c[1] and c[2] == c[3]  # same words, same label, whatever y says
    assert set(c) <= {"x", "y"}
    np.testing.assert_array_equal(c, control_labels(texts, y, random_state=3))


def test_planted_layer_is_found_with_intervals_and_selectivity():
    rng = np.random.default_rng(0)
    n = 200
    y = np.repeat(["a", "b"], n // 2)
    states = rng.normal(size=(n, 3, 6))
    states[:, 2, 0] += 4.0 * (y == "b")  # only layer 2 carries the label
    vocab = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(vocab, 5)) for _ in range(n)]
    p = probe_layers(states, y, texts, n_bootstrap=300)
    assert p.accuracy[2] > 0.95 and p.accuracy[0] < 0.65
    lo, hi = p.accuracy_ci[2]
    assert lo <= p.accuracy[2] <= hi and hi - lo < 0.1
    assert p.accuracy_ci[0][1] < p.accuracy_ci[2][0]  # intervals separate
    # the control task (random labels of word types) is not decodable from these states
    assert np.all(p.control_accuracy < p.control_chance + 0.1)
    assert p.control_chance == p.chance  # class-balanced like the task
    assert p.selectivity[2] > 0.25 and p.selectivity_ci[2][0] > 0
    assert p.chance == 0.5 and p.n_texts == n


def test_lexical_control_is_decodable_from_lexical_states():
    """States that are bags of words decode the control task: selectivity then shows it."""
    rng = np.random.default_rng(1)
    vocab = [f"w{i}" for i in range(12)]
    texts = [" ".join(rng.choice(vocab, 4)) for _ in range(300)]
    bow = np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float)
    y = rng.choice(["a", "b"], 300)
    control = control_labels(texts, y, random_state=0)
    p = probe_layers(bow[:, None, :], y, texts, n_bootstrap=100)
    majority = np.unique(control, return_counts=True)[1].max() / 300
    assert p.control_accuracy[0] > majority + 0.1  # memorised from word identity
    assert p.accuracy[0] < 0.65  # the random task label is not


def test_bad_input():
    with pytest.raises(ValueError, match="single class"):
        probe_layers(np.zeros((10, 2, 3)), ["a"] * 10, ["t"] * 10)
    with pytest.raises(ValueError, match="n_texts rows"):
        probe_layers(np.zeros((10, 3)), ["a", "b"] * 5, ["t"] * 10)


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.7, 0.3), (0.6, 0.3, 0.1)])
def test_the_control_task_has_the_tasks_class_balance(shares):
    """The majority-vote control gave 70-97% of texts one class; this one matches y."""
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(400)]
    texts = [" ".join(rng.choice(vocab, 30)) for _ in range(300)]
    classes = np.array(["a", "b", "c"][: len(shares)])
    y = classes[np.repeat(np.arange(len(shares)), np.round(np.array(shares) * 300).astype(int))]
    c = control_labels(texts, y, random_state=1)
    np.testing.assert_array_equal(
        np.unique(c, return_counts=True)[1], np.unique(y, return_counts=True)[1]
    )
    # and it carries nothing about y: agreement is what the class shares give
    assert abs(np.mean(c == y) - np.sum(np.square(shares))) < 0.1


def _probes(rates, n=300, seed=0):
    """LayerProbes whose per-text correctness is planted per layer."""
    rng = np.random.default_rng(seed)
    correct = np.vstack([rng.random(n) < r for r in rates])
    return LayerProbes(*[None] * 5, 0.5, 0.5, n, 5, 0, 0.95, correct=correct)


@pytest.mark.parametrize(
    ("rates", "verdict"),
    [
        ((0.5, 0.5, 0.6, 0.6, 0.9, 0.9), "supported"),  # global decodes best on "global"
        ((0.5, 0.5, 0.9, 0.9, 0.5, 0.5), "contradicted"),  # ... on "intermediate"
        ((0.7, 0.7, 0.7, 0.7, 0.71, 0.71), "inconclusive"),
    ],
)
def test_each_scale_name_is_tested_against_every_other_scale(rates, verdict):
    scales = {"local": [0, 1], "intermediate": [2, 3], "global": [4, 5]}
    (t,) = scale_name_tests({"global": _probes(rates)}, scales, random_state=0)
    assert t.verdict == verdict
    assert t.accuracy["global"] == pytest.approx(np.mean(rates[4:]), abs=0.06)
    assert t.ci[0] <= t.advantage <= t.ci[1]


def test_scale_names_holm_and_positions():
    scales = {"local": [10, 11], "global": [12, 13]}
    positions = {10: 0, 11: 1, 12: 2, 13: 3}
    probes = {"local": _probes((0.9, 0.9, 0.5, 0.5)), "global": _probes((0.9, 0.9, 0.5, 0.5))}
    tests = {t.label: t for t in scale_name_tests(probes, scales, positions=positions)}
    assert tests["local"].verdict == "supported" and tests["global"].verdict == "contradicted"
    assert tests["local"].p_more_holm == pytest.approx(min(1.0, 2 * tests["local"].p_more))
    # a label that names no scale is not tested; probes without outcomes are refused
    assert scale_name_tests({"topic": _probes((0.9,) * 4)}, scales, positions=positions) == []
    bare = LayerProbes(*[None] * 5, 0.5, 0.5, 10, 5, 0, 0.95)
    with pytest.raises(ValueError, match="per-text outcomes"):
        scale_name_tests({"global": bare}, scales)
