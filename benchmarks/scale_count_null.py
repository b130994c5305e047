"""The number-of-scales null against structure-free drift and planted blocks, and on the
real models: the smooth-drift null (``null="drift"``, the default) beside the Toeplitz
null it replaced.

1. Simulations (``msma_sklearn.datasets.make_layer_drift`` / ``make_layer_blocks``;
   256 rows, 64 units, min size 2, 4 halvings): the share of ``--seeds`` seeds on
   which smooth drift (equal, decelerating, accelerating, U-shaped steps; renormalised
   or accumulating variance; 19 and 31 layers) comes out as one scale, and the share
   on which planted blocks (k = 2..5, equal sizes, and unequal sizes with drift inside
   the blocks) are recovered with their k.
2. Real models (bundled corpus, pooled states at the extractor's defaults, units
   z-scored): best k and the gap at each k for the trained model and its random-weight
   twin (``random:<model>``), under both nulls, 10 halvings.

Run:  HF_HUB_OFFLINE=1 python benchmarks/scale_count_null.py [--seeds 20]
          [--models minilm smollm2-135m] [--skip-models]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from msma_sklearn.datasets import DRIFT_KINDS, make_layer_blocks, make_layer_drift
from msma_sklearn.segmentation import scale_count_curve


def best_k(layers, seed, null, n_splits=4):
    return scale_count_curve(
        layers, k_max=6, n_splits=n_splits, min_size=2, null=null, random_state=seed
    ).best_k


def simulations(seeds: int) -> None:
    print("| data | layers | drift null: share with the right k | Toeplitz null |")
    print("|---|---:|---:|---:|")
    for n_layers in (19, 31):
        for kind in sorted(DRIFT_KINDS):
            for accumulate in (False, True):
                shares = []
                for null in ("drift", "toeplitz"):
                    ks = [
                        best_k(
                            make_layer_drift(kind, n_layers, accumulate=accumulate, random_state=s),
                            s,
                            null,
                        )
                        for s in range(seeds)
                    ]
                    shares.append(np.mean(np.asarray(ks) == 1))
                name = f"drift, {kind}, {'accumulating' if accumulate else 'renormalised'}"
                print(f"| {name} (k = 1) | {n_layers} | {shares[0]:.2f} | {shares[1]:.2f} |")
        for k in (2, 3, 4, 5):
            for inside in (False, True):
                sizes = None
                if inside:  # unequal sizes: one block twice the others
                    base = n_layers // (k + 1)
                    sizes = [base] * (k - 1) + [n_layers - base * (k - 1)]
                shares = []
                for null in ("drift", "toeplitz"):
                    ks = [
                        best_k(
                            make_layer_blocks(
                                k,
                                n_layers,
                                sizes=sizes,
                                drift=0.15 if inside else 0.0,
                                random_state=s,
                            ),
                            s,
                            null,
                        )
                        for s in range(seeds)
                    ]
                    shares.append(np.mean(np.asarray(ks) == k))
                name = f"{k} blocks" + (", unequal, drift inside" if inside else "")
                print(f"| {name} (k = {k}) | {n_layers} | {shares[0]:.2f} | {shares[1]:.2f} |")


def real_models(models) -> None:
    from msma_sklearn import HiddenStateExtractor, load_corpus

    texts = list(load_corpus().texts)
    print("\n| model | weights | null | gap at k = 2..6 | best k |")
    print("|---|---|---|---|---:|")
    for model in models:
        for label, spec in (("trained", model), ("random", f"random:{model}")):
            ext = HiddenStateExtractor(spec).fit(texts)
            X = ext.transform(texts)
            Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
            cube = Z.reshape(len(texts), len(ext.layers_), -1)
            layers = [cube[:, j] for j in range(cube.shape[1])]
            for null in ("drift", "toeplitz"):
                curve = scale_count_curve(layers, n_splits=10, null=null, random_state=0)
                gaps = ", ".join(f"{g:+.3f}" for g in curve.gap[1:])
                print(f"| {model} | {label} | {null} | {gaps} | {curve.best_k} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=["minilm", "smollm2-135m"])
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--skip-simulations", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    if not args.skip_simulations:
        simulations(args.seeds)
    if not args.skip_models:
        real_models(args.models)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
