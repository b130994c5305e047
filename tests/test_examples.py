"""Every example runs, in its fast mode, on an offline model."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).parent.parent / "examples"


def _load(name):
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_example_has_a_test():
    tested = {"layer_probe_pipeline", "controlled_generation", "bias_detection", "robustness"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_layer_probe_pipeline(capsys):
    scores = _load("layer_probe_pipeline").main(["--model", "tiny-bert", "--quick"])
    assert sorted(scores) == [0, 1, 2, 3, 4]  # tiny-bert: embeddings + 4 blocks
    for s in scores.values():
        assert s.shape == (3,) and np.all((s >= 0) & (s <= 1))
    assert "best layer" in capsys.readouterr().out


def test_controlled_generation():
    results = _load("controlled_generation").main(["--model", "tiny-gpt2", "--quick"])
    assert set(results) == {"local", "intermediate", "global"}
    for effect in results.values():
        assert effect["metric"] == "sentiment" and effect["dropped"] == 0


def test_bias_detection():
    results = _load("bias_detection").main(["--model", "tiny-bert", "--quick"])
    assert set(results) == {"local", "intermediate", "global"}
    for before, after in results.values():
        assert before >= 0 and after >= 0


def test_robustness():
    results = _load("robustness").main(["--model", "tiny-gpt2", "--quick"])
    for row in results.values():
        assert len(row) == 2 and all(0.0 <= v <= 1.0 for v in row)
