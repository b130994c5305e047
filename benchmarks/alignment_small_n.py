"""Evidence for ManifoldAligner's defaults on the study's real states: the few-samples
PCA (n < 5 d) and the normalisation of the terms.

Not a timing benchmark. The study fits the maps on about 200 texts of 384 (MiniLM)
or 576 (SmolLM2-135M) dimensions. For each model: pooled states of the bundled
corpus, the default ``ScaleSegmenter`` fitted on the training texts, then the
closed-form maps (``lambda_info = lambda_curv = 0``; orthogonal and linear
families) with ``n_components`` None / "auto" / a few fixed values, and sklearn's
``RidgeCV`` per pair on the same standardised blocks. Held-out r² in each target
scale's original standardised coordinates (``ManifoldAligner.score``), mean over
the two pairs; mean ± sd over ``--seeds`` random 80/20 splits of the texts.

Second table: with all three lambdas equal (1, 1, 1; MLP maps, default
settings otherwise), each term's share of the gradient norm on the mapped
points (``term_gradient_share_``), with ``normalize_terms`` True and False.

Run:  python benchmarks/alignment_small_n.py [--models minilm smollm2-135m] [--seeds 5]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import ShuffleSplit

from msma_sklearn import HiddenStateExtractor, ManifoldAligner, ScaleSegmenter, load_corpus


def ridge_r2(aligner: ManifoldAligner, train: pd.DataFrame, test: pd.DataFrame) -> float:
    """RidgeCV per pair on the closed-form aligner's standardised blocks (no PCA)."""
    tr = aligner._blocks(train.to_numpy(dtype=float))
    te = aligner._blocks(test.to_numpy(dtype=float))
    values = []
    for a, b in aligner.pairs_:

        def std(block, name):
            return aligner._std.scaled(block, name)

        model = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(std(tr[a], a), std(tr[b], b))
        pred, target = model.predict(std(te[a], a)), std(te[b], b)
        values.append(1 - ((pred - target) ** 2).sum() / ((target - target.mean(0)) ** 2).sum())
    return float(np.mean(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["minilm", "smollm2-135m"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ks", default="10,20,80", help="fixed n_components to compare")
    args = parser.parse_args()
    texts = load_corpus().texts
    for model in args.models:
        states = HiddenStateExtractor(model).set_output(transform="pandas").fit_transform(texts)
        rows, shares, chosen = {}, {}, {}
        for seed in range(args.seeds):
            train, test = next(
                ShuffleSplit(1, test_size=0.2, random_state=seed).split(np.zeros(len(texts)))
            )
            seg = ScaleSegmenter(random_state=seed).set_output(transform="pandas")
            X_train = seg.fit_transform(states.iloc[train])
            X_test = seg.transform(states.iloc[test])
            width = X_train.shape[1] // 3
            for kind in ("orthogonal", "linear"):
                for k in (None, "auto", *(int(v) for v in args.ks.split(","))):
                    al = ManifoldAligner(lambda_info=0, lambda_curv=0, map=kind, n_components=k)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        al.fit(X_train)
                    label = f"{kind}, n_components={k!r}"
                    rows.setdefault(label, []).append(al.score(X_test))
                    if k == "auto":
                        chosen.setdefault(label, []).append(al.n_components_)
                    if kind == "orthogonal" and k is None:
                        rows.setdefault("sklearn RidgeCV (no PCA)", []).append(
                            ridge_r2(al, X_train, X_test)
                        )
            for normalize in (True, False):
                al = ManifoldAligner(
                    1.0, 1.0, 1.0, map="mlp", normalize_terms=normalize, random_state=seed
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    al.fit(X_train)
                for pair_shares in al.term_gradient_share_.values():
                    for term, value in pair_shares.items():
                        shares.setdefault((normalize, term), []).append(value)
        print(f"\n{model}: {len(train)} training texts, scales of {width} dims (n < 5 d)\n")
        print("| closed-form fit | held-out r² (mean ± sd over splits) |")
        print("|---|---:|")
        for label, values in rows.items():
            note = f" (chose {chosen[label]})" if label in chosen else ""
            print(f"| {label}{note} | {np.mean(values):.3f} ± {np.std(values, ddof=1):.3f} |")
        print("\nGradient shares at lambda_geo = lambda_info = lambda_curv = 1 (MLP maps)\n")
        print("| normalize_terms | geometry | information | curvature |")
        print("|---|---:|---:|---:|")
        for normalize in (True, False):
            cells = [
                f"{np.mean(shares[(normalize, t)]):.3f} ± {np.std(shares[(normalize, t)]):.3f}"
                for t in ("geo", "info", "curv")
            ]
            print(f"| {normalize} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
