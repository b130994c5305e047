"""Evidence behind the segmentation defaults, measured on the real models.

Not a timing benchmark: it prints what docs/segmentation.md and
docs/extraction.md quote for the defaults of ``sink_tokens`` (pooling),
``standardize`` and ``min_scale_size`` (segmentation).

1. Attention sinks: per hidden state, the median over texts of the first
   token's state norm divided by the median norm of the text's other tokens.
2. Rogue dimensions: per hidden state, the largest unit's mean |h| over the
   median unit's (pooled states).
3. For pooling (first token kept / left out) x standardisation (off / on) x
   method (cka / mi): boundaries on all texts; stability over ``--halves``
   random halvings of the texts (mean boundary distance in layers and mean
   adjusted Rand index between the two halves' splits); and the distance
   between the cka and mi splits (agreement between methods).
4. The number of scales the data support (``scale_count_curve``) for the
   default, on the trained model and on a random-weight model of the same
   configuration.

Run:  python benchmarks/segmentation_evidence.py [--models minilm smollm2-135m] [--halves 10]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from sklearn.metrics import adjusted_rand_score

from msma_sklearn import HiddenStateExtractor, ScaleSegmenter, load_corpus
from msma_sklearn.segmentation import boundary_distance, scale_count_curve, segment_labels


def sink_ratios(model: str, texts: list[str]) -> np.ndarray:
    """Median over texts of ||h_first|| / median_t>0 ||h_t||, per hidden state."""
    ext = HiddenStateExtractor(model).fit(texts)
    states = ext.transform_tokens(texts)  # list of (n_layers, T_i, H)
    ratios = []
    for s in states:
        if s.shape[1] < 3:
            continue
        norms = np.linalg.norm(s, axis=2)  # (n_layers, T)
        ratios.append(norms[:, 0] / np.median(norms[:, 1:], axis=1))
    return np.median(np.asarray(ratios), axis=0)


def rogue_ratio(X: np.ndarray, n_layers: int) -> np.ndarray:
    cube = np.abs(X.reshape(X.shape[0], n_layers, -1)).mean(axis=0)  # (L, H)
    return cube.max(axis=1) / np.median(cube, axis=1)


def fit_split(X, n_layers, method, standardize, rows=None, seed=0):
    Xs = X if rows is None else X[rows]
    seg = ScaleSegmenter(method, layers=n_layers, standardize=standardize, random_state=seed)
    return seg.fit(Xs).boundaries_


def stability(X, n_layers, method, standardize, halves, seed=0):
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    dists, aris = [], []
    for _ in range(halves):
        perm = rng.permutation(n)
        a = fit_split(X, n_layers, method, standardize, np.sort(perm[: n // 2]))
        b = fit_split(X, n_layers, method, standardize, np.sort(perm[n // 2 :]))
        dists.append(boundary_distance(a, b))
        aris.append(adjusted_rand_score(segment_labels(a, n_layers), segment_labels(b, n_layers)))
    return float(np.mean(dists)), float(np.mean(aris))


def evidence(models, halves: int, n_texts: int | None = None) -> dict:
    texts = list(load_corpus().texts)
    if n_texts is not None:
        texts = texts[:n_texts]
    out = {}
    for model in models:
        res = {"sink_ratio": sink_ratios(model, texts)}
        poolings = {}
        for sinks in (0, 1):
            ext = HiddenStateExtractor(model, sink_tokens=sinks).fit(texts)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                poolings[sinks] = ext.transform(texts)
            n_layers = len(ext.layers_)
        res["auto_sinks"] = HiddenStateExtractor(model).fit(texts[:1]).sink_tokens_
        res["rogue_ratio"] = rogue_ratio(poolings[res["auto_sinks"]], n_layers)
        grid = []
        for sinks, X in poolings.items():
            for standardize in (False, True):
                splits = {}
                for method in ("cka", "mi"):
                    b = fit_split(X, n_layers, method, standardize)
                    d, ari = stability(X, n_layers, method, standardize, halves)
                    splits[method] = b
                    grid.append(
                        {
                            "first token": "left out" if sinks else "kept",
                            "standardize": standardize,
                            "method": method,
                            "boundaries": b,
                            "half distance": d,
                            "half ARI": ari,
                        }
                    )
                between = boundary_distance(splits["cka"], splits["mi"])
                for row in grid[-2:]:
                    row["cka vs mi"] = between
        res["grid"] = grid
        curves = {}
        for label, spec in (("trained", model), ("random weights", f"random:{model}")):
            ext = HiddenStateExtractor(spec).fit(texts)
            X = ext.transform(texts)
            Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
            cube = Z.reshape(len(texts), len(ext.layers_), -1)
            curve = scale_count_curve(
                [cube[:, j] for j in range(cube.shape[1])], n_splits=halves, random_state=0
            )
            default = ScaleSegmenter(layers=len(ext.layers_), random_state=0).fit(X)
            curves[label] = (curve, default.boundaries_)
        res["curves"] = curves
        out[model] = res
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["minilm", "smollm2-135m"])
    parser.add_argument("--halves", type=int, default=10)
    args = parser.parse_args()
    results = evidence(args.models, args.halves)
    for model, res in results.items():
        print(f"\n## {model} (bundled corpus, 256 texts)")
        sr = res["sink_ratio"]
        print(
            "first-token norm / median other-token norm, per hidden state: "
            + " ".join(f"{v:.1f}" for v in sr)
        )
        print(f"sink_tokens='auto' resolves to {res['auto_sinks']}")
        rr = res["rogue_ratio"]
        print(
            "largest unit's mean |h| / median unit's, per hidden state: "
            + " ".join(f"{v:.0f}" for v in rr)
        )
        print(
            "\n| first token | standardize | method | boundaries (all texts) | "
            "half-split distance | half-split ARI | cka vs mi distance |"
        )
        print("|---|---|---|---|---:|---:|---:|")
        for r in res["grid"]:
            print(
                f"| {r['first token']} | {r['standardize']} | {r['method']} | {r['boundaries']} "
                f"| {r['half distance']:.2f} | {r['half ARI']:.2f} | {r['cka vs mi']:.1f} |"
            )
        print("\n| weights | k: held-out explained (null) gap ± se | best k | default split |")
        print("|---|---|---:|---|")
        for label, (curve, bounds) in res["curves"].items():
            cells = "; ".join(
                f"{r['k']}: {r['explained']:.3f} ({r['null']:.3f}) {r['gap']:+.3f}±{r['gap_se']:.3f}"
                for r in curve.as_rows()
            )
            print(f"| {label} | {cells} | {curve.best_k} | {bounds} |")


if __name__ == "__main__":
    main()
