"""The benchmark scripts run and compare like with like (no timing asserted)."""

import importlib.util
from pathlib import Path

from msma_sklearn.extraction import load_model


def _load(name):
    path = Path(__file__).parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extraction_benchmark_outputs_agree():
    bench = _load("extraction")
    rows = bench.bench_model("tiny-gpt2", n_texts=8, repeats=1)
    assert [r[1] for r in rows] == ["equal", "varied", "half"]
    for row in rows:
        assert row[2] == 8 and row[3] > 0
        assert row[9] < 1e-5  # extractor and plain loop give the same numbers
        assert row[10] >= 1.0  # sorted batches never pad more than input order
    assert rows[0][10] == rows[0][11] == 1.0  # equal lengths: nothing to gain
    # the baseline worked on its own tokenizer copy
    assert load_model("tiny-gpt2")[1].pad_token is None


def test_padding_ceiling_by_hand():
    bench = _load("extraction")
    # input order pads (10, 2) twice: 40 tokens; sorted batches (10, 10) and (2, 2): 24
    assert bench.padding_ceiling([10, 2, 10, 2], 2) == (40 / 24, 40 / 24)
    assert bench.padding_ceiling([5, 5, 5, 5], 2) == (1.0, 1.0)
    # input order (10, 2) (10, 2) (3): 43 padded; sorted (10, 10) (3, 2) (2): 28; real 27
    assert bench.padding_ceiling([10, 2, 10, 2, 3], 2) == (43 / 28, 43 / 27)


def test_equal_texts_have_equal_length():
    bench = _load("extraction")
    _, tokenizer = load_model("minilm")
    texts = bench.equal_texts(tokenizer, 10, 24)
    assert {len(tokenizer(t).input_ids) for t in texts} == {24}


def test_segmentation_benchmark_methods_agree():
    bench = _load("segmentation")
    layers = bench.synthetic_stack(6, 40, 8)
    from msma_sklearn.metrics import cka_matrix

    fast = cka_matrix(layers)
    naive = bench.naive_pairwise(layers)
    assert abs(fast - naive).max() < 1e-10
    assert fast[0, 1] > fast[0, 5]  # adjacent layers are the more similar


def test_scale_out_benchmark_runs_and_agrees():
    bench = _load("scale_out")
    rows = bench.throughput("tiny-gpt2", n_texts=48, shard_size=8, workers=(1,))
    assert [r[0] for r in rows] == ["in process (baseline)", "dask, 1 worker(s)"]
    assert all(r[4] for r in rows)  # every store equals the in-process one
    mem = bench.memory([2000, 4000], epochs=1)
    assert [m[0] for m in mem] == [2000, 4000] and all(m[1] >= 0 and m[2] >= 0 for m in mem)


def test_gpu_extraction_benchmark_runs_end_to_end_on_cpu(capsys):
    """The GPU benchmark's smoke mode: builds the architectures, measures the ceiling, the
    plain loop and the extractor, and the extractor's numbers match the plain loop's."""
    bench = _load("extraction_gpu")
    bench.main(["--smoke", "--repeats", "1"])
    out = capsys.readouterr().out
    errors = [float(line.split()[-1]) for line in out.splitlines() if "max rel. error" in line]
    # two models x (defaults, one shard, batch 32, two budgets, steady state), plus two
    # packed rows
    assert len(errors) == 2 * 6 + 2
    assert max(errors) < 1e-5  # packing and every batching give the plain loop's states
    assert out.count("ceiling (padding-free)") == 2
    assert out.count("steady: defaults, 256 texts") == 2
    assert out.count("tokenising the 64 texts:") == 2


def test_extraction_profile_runs_on_cpu(capsys):
    bench = _load("extraction_profile")
    bench.main(["--smoke"])
    out = capsys.readouterr().out
    assert out.count("transform ") == 2 and "aten::" in out and "function calls" in out


def test_extraction_options_benchmark_compares_like_with_like():
    bench = _load("extraction_options")
    texts = bench.varied_texts(12)
    rows = bench.budget_rows("tiny-gpt2", texts, [64, 512], repeats=1)
    assert [r[1] for r in rows] == ["batch_size=32", "max_batch_tokens=64", "max_batch_tokens=512"]
    assert all(r[5] < 1e-5 for r in rows)  # the same states whatever the batching
    prec = bench.precision_rows("tiny-gpt2", texts[:6])
    assert [r[1] for r in prec] == ["bfloat16", "float16"]
    assert all(0 < r[2] < 0.1 and r[5] for r in prec)


def test_alignment_basis_finds_a_planted_rogue_unit():
    import numpy as np
    import pandas as pd

    bench = _load("alignment_basis")
    rng = np.random.default_rng(0)
    layers = [rng.normal(size=(60, 8)) for _ in range(6)]
    for layer in layers:
        layer[:, 0] *= 30.0  # one unit carries almost all the variance
    states = pd.DataFrame(
        np.hstack(layers), columns=[f"layer{j}__{u}" for j in range(6) for u in range(8)]
    )
    r = bench.basis_shares(states, n_components=8)
    assert min(r["top_unit"].values()) > 0.9 and r["pooled_first"][0] > 0.9
    assert r["pooled_first_zscored"][0] < 0.5  # z-scoring each unit removes its dominance


def test_thread_scaling_times_both_and_restores_the_thread_count():
    import torch

    bench = _load("extraction")
    before = torch.get_num_threads()
    one, two = bench.thread_scaling("tiny-gpt2", n_texts=8, repeats=1)
    assert one > 0 and two > 0
    assert torch.get_num_threads() == before
