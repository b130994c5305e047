"""Layer-similarity matrix: vectorised Gram-matrix CKA against a naive pairwise loop.

Both compute the same debiased linear CKA between every pair of layers of a
synthetic 31-layer x 2,000-text x 576-dimension stack (shaped like SmolLM2's
hidden states on a corpus): adjacent layers share most of their signal.

- ours: `msma_sklearn.metrics.cka_matrix` -- one centred Gram matrix per
  layer, strict upper triangles stacked, all inner products in one product;
- naive: a double loop over layer pairs that builds both centred Gram
  matrices for every pair, as a per-pair CKA function called in a loop does.

Time is wall-clock of one run each; memory is the peak of numpy allocations
(tracemalloc) during the run.

Run:  python benchmarks/segmentation.py [--layers 31] [--texts 2000] [--dims 576]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from msma_sklearn.metrics import cka_matrix
from msma_sklearn.metrics._similarity import _centered_gram


def synthetic_stack(n_layers, n, d, seed=0):
    rng = np.random.default_rng(seed)
    layers = [rng.normal(size=(n, d)).astype(np.float32)]
    for _ in range(n_layers - 1):
        layers.append(0.9 * layers[-1] + 0.45 * rng.normal(size=(n, d)).astype(np.float32))
    return np.stack(layers)


def naive_pairwise(layers):
    n_layers = layers.shape[0]
    S = np.eye(n_layers)
    for i in range(n_layers):
        for j in range(i + 1, n_layers):
            K = _centered_gram(layers[i], True)
            L = _centered_gram(layers[j], True)
            S[i, j] = S[j, i] = np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))
    return S


def measure(fn, *args):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=31)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--dims", type=int, default=576)
    args = parser.parse_args()
    layers = synthetic_stack(args.layers, args.texts, args.dims)
    print(
        f"{args.layers} layers x {args.texts} texts x {args.dims} dims "
        f"({layers.nbytes / 2**20:.0f} MiB input, float32)\n"
    )
    S_fast, t_fast, m_fast = measure(cka_matrix, layers)
    S_naive, t_naive, m_naive = measure(naive_pairwise, layers)
    err = float(np.abs(S_fast - S_naive).max())
    print(f"{'method':<34}{'seconds':>10}{'peak MiB':>10}")
    print(f"{'vectorised (cka_matrix)':<34}{t_fast:>10.2f}{m_fast:>10.0f}")
    print(f"{'naive pairwise loop':<34}{t_naive:>10.2f}{m_naive:>10.0f}")
    print(
        f"\nspeed-up (naive / vectorised): {t_naive / t_fast:.1f}x; "
        f"memory ratio (vectorised / naive): {m_fast / m_naive:.1f}x; "
        f"max |difference| {err:.1e}"
    )


if __name__ == "__main__":
    main()
