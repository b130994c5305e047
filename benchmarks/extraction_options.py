"""Two extractor options measured on the real models of this machine.

1. Token budget: HiddenStateExtractor with fixed batches of ``batch_size=32`` texts
   against ``max_batch_tokens`` budgets (``batch_size=1024`` so the budget decides),
   on varied texts (1-6 corpus sentences); tokens/s, median of ``--repeats`` runs,
   interleaved, one warm-up each; the outputs are compared (max abs difference).
2. Precision: the pooled states in bfloat16 and float16 against float32 on the same
   texts: max |difference| / max |float32 value| per hidden state, worst and median
   over hidden states, and the cosine of the pooled vectors (worst row).

Run:  python benchmarks/extraction_options.py [--models minilm,smollm2-135m] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from msma_sklearn import HiddenStateExtractor  # noqa: E402
from msma_sklearn.datasets import load_corpus  # noqa: E402


def varied_texts(n: int, seed: int = 0) -> list[str]:
    corpus = load_corpus().texts
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(corpus, size=rng.integers(1, 7))) for _ in range(n)]


def budget_rows(name: str, texts, budgets, repeats: int):
    settings = {"batch_size=32": {"batch_size": 32}}
    for b in budgets:
        settings[f"max_batch_tokens={b}"] = {"batch_size": 1024, "max_batch_tokens": b}
    ests = {
        k: HiddenStateExtractor(name, device="cpu", max_length=256, **v).fit(texts)
        for k, v in settings.items()
    }
    _, tok = ests["batch_size=32"]._loaded()
    n_tokens = sum(len(ids) for ids in tok(texts, truncation=True, max_length=256).input_ids)
    times = {k: [] for k in ests}
    outs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, est in ests.items():  # warm-up
            outs[k] = est.transform(texts)
        for _ in range(repeats):
            for k, est in ests.items():
                t0 = time.perf_counter()
                est.transform(texts)
                times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["batch_size=32"])
    rows = []
    for k, ts in times.items():
        med = statistics.median(ts)
        spread = (min(ts), max(ts))
        diff = float(np.max(np.abs(outs[k] - outs["batch_size=32"])))
        rows.append((name, k, n_tokens / med, base / med, spread, diff))
    return rows


def precision_rows(name: str, texts):
    ref_est = HiddenStateExtractor(name, device="cpu", dtype="float32").fit(texts)
    ref = ref_est.transform(texts)
    n_states, width = len(ref_est.layers_), ref_est.hidden_size_
    rows = []
    for dtype in ("bfloat16", "float16"):
        got = HiddenStateExtractor(name, device="cpu", dtype=dtype).fit(texts).transform(texts)
        per_state = []
        for k in range(n_states):
            a = ref[:, k * width : (k + 1) * width]
            b = got[:, k * width : (k + 1) * width]
            per_state.append(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12))
        cos = np.sum(ref * got, axis=1) / (
            np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12
        )
        finite = bool(np.isfinite(got).all())
        rows.append((name, dtype, max(per_state), float(np.median(per_state)), cos.min(), finite))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="minilm,smollm2-135m")
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budgets", default="2048,8192")
    args = parser.parse_args(argv)
    texts = varied_texts(args.texts)
    budgets = [int(b) for b in args.budgets.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, {len(texts)} texts")
    print(
        f"\n{'model':<14}{'setting':<24}{'tok/s':>9}{'vs 32':>7}  {'range s':<15}{'max |diff|':>11}"
    )
    for name in args.models.split(","):
        for r in budget_rows(name, texts, budgets, args.repeats):
            lo, hi = r[4]
            print(
                f"{r[0]:<14}{r[1]:<24}{r[2]:>9.0f}{r[3]:>7.2f}  {lo:>6.2f}-{hi:<7.2f}{r[5]:>11.1e}"
            )
    print(
        f"\n{'model':<14}{'dtype':<10}{'worst rel err':>14}{'median':>9}{'min cos':>9}{'finite':>8}"
    )
    for name in args.models.split(","):
        for r in precision_rows(name, texts[:64]):
            print(f"{r[0]:<14}{r[1]:<10}{r[2]:>14.1e}{r[3]:>9.1e}{r[4]:>9.5f}{str(r[5]):>8}")
    print(
        "\nrel err = max |dtype - float32| / max |float32| over a hidden state's pooled values"
        " (worst and median over hidden states); min cos = the least similar row."
    )


if __name__ == "__main__":
    main()
