"""Does the λ-weighted objective decide the map on real states? Starts, settings, seeds.

On the pooled states of the bundled corpus (256 texts) of each model, one seeded
80/20 split of the texts: the scales (``ScaleSegmenter``, CKA, 3 scales) and a
``StandardScaler`` fitted on the training texts, then ``ManifoldAligner(map=...)``
under the original README's three λ configurations (Full MSMA, No Geometry, No
Information) from each start (``init``), with three seeds each. Printed per model:

- per start and configuration: held-out r² (mean over seeds, ± sd), how far the
  training predictions moved from the start (``prediction_change_``, mean over pairs
  and seeds), how many maps returned their start, and the fit time;
- per start: the spread of held-out predictions over seeds (mean relative RMS
  difference between seeds, within a configuration) beside the smallest difference
  between configurations (of their seed-mean predictions): the target is that
  configurations differ by more than seeds do;
- for Full MSMA from the default start: each term's effect (``term_effects``: the
  relative change of held-out predictions when the term is dropped, same rows).

Run:  HF_HUB_OFFLINE=1 python benchmarks/alignment_objective.py [--models minilm,smollm2-135m]
                                                            [--map mlp] [--seeds 3]
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings

import numpy as np
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from msma_sklearn import HiddenStateExtractor, ManifoldAligner, ScaleSegmenter, load_corpus
from msma_sklearn.alignment import INITS, term_effects

CONFIGS = {
    "Full MSMA": (0.1, 0.1, 0.01),
    "No Geometry": (0.0, 0.1, 0.01),
    "No Information": (0.1, 0.0, 0.01),
}


def held_out_predictions(aligner, X) -> np.ndarray:
    mapped, _ = aligner._mapped(X)
    return np.hstack([mapped[p] for p in aligner.pairs_])


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(a - a.mean(0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="minilm,smollm2-135m")
    parser.add_argument("--map", default="mlp")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    texts = list(load_corpus().texts)
    order = np.random.default_rng(0).permutation(len(texts))
    train, test = order[: int(0.8 * len(texts))], order[int(0.8 * len(texts)) :]
    for model in args.models.split(","):
        ext = HiddenStateExtractor(model).set_output(transform="pandas")
        states = ext.fit_transform(texts)
        prep = make_pipeline(ScaleSegmenter(random_state=0), StandardScaler())
        prep.set_output(transform="pandas")
        Z_train = prep.fit_transform(states.iloc[train])
        Z_test = prep.transform(states.iloc[test])
        print(
            f"\n## {model}: {len(train)} training / {len(test)} held-out texts, "
            f"scales {prep[0].scale_layers_}, map={args.map}\n"
        )
        print(
            "| init | configuration | held-out r² | prediction change | starts returned | fit s |"
        )
        print("|---|---|---:|---:|---:|---:|")
        spread_rows = []
        for init in INITS:
            preds = {}
            for name, cfg in CONFIGS.items():
                r2, change, returned, seconds, p = [], [], 0, [], []
                for seed in range(args.seeds):
                    al = ManifoldAligner(*cfg, map=args.map, init=init, random_state=seed)
                    t0 = time.perf_counter()
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        al.fit(Z_train)
                    seconds.append(time.perf_counter() - t0)
                    returned += sum("start is returned" in str(w.message) for w in caught)
                    r2.append(al.score(Z_test))
                    change.append(np.mean(list(al.prediction_change_.values())))
                    p.append(held_out_predictions(al, Z_test))
                preds[name] = p
                print(
                    f"| {init} | {name} {cfg} | {np.mean(r2):.4f} ± {np.std(r2):.4f} | "
                    f"{np.mean(change):.4f} | {returned} of {2 * args.seeds} | "
                    f"{np.median(seconds):.2f} |"
                )
            seeds = (
                np.mean(
                    [
                        relative(p[i], p[j])
                        for p in preds.values()
                        for i, j in itertools.combinations(range(len(p)), 2)
                    ]
                )
                if args.seeds > 1
                else float("nan")
            )
            means = {k: np.mean(v, axis=0) for k, v in preds.items()}
            between = min(relative(means[a], means[b]) for a, b in itertools.combinations(means, 2))
            spread_rows.append((init, seeds, between))
        print("\n| init | spread over seeds | smallest difference between configurations |")
        print("|---|---:|---:|")
        for init, seeds, between in spread_rows:
            print(f"| {init} | {seeds:.4f} | {between:.4f} |")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            effects = term_effects(
                ManifoldAligner(*CONFIGS["Full MSMA"], map=args.map, random_state=0),
                Z_train,
                Z_test,
            )
        print(
            "\nFull MSMA, default start: effect of each term on held-out predictions "
            "(relative change when it is dropped; 'start': distance from the start)"
        )
        for term, by_pair in effects.items():
            print(f"- {term}: " + ", ".join(f"{k} {v:.4f}" for k, v in by_pair.items()))


if __name__ == "__main__":
    main()
