"""Per-layer probes: planted signal, intervals, the control task."""

import numpy as np
import pytest

from msma_sklearn.metrics import control_labels, probe_layers


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
    assert 0.5 <= p.control_chance < 0.75  # ties do not pile onto one class
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
