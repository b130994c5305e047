"""Hidden states inside an ordinary scikit-learn workflow: single layers vs scales.

A ``Pipeline`` of ``HiddenStateExtractor`` and a linear classifier predicts the
topic of the bundled corpus texts from one layer's pooled states; cross-
validation compares layers. Then the same classifier on per-scale features
(``ScaleSegmenter``: the mean of each scale's layers, local / intermediate /
global), the segmenter fitted inside each training fold so the comparison
does not peek at the test texts. Results are cached on disk, so the model runs
once per text however many folds and classifiers follow.

Run:  python examples/layer_probe_pipeline.py [--model minilm] [--quick]
"""

import argparse
import tempfile

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from msma_sklearn import HiddenStateExtractor, ScaleSegmenter, load_corpus


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--quick", action="store_true", help="64 texts, 3 folds")
    args = parser.parse_args(argv)

    texts, topic = load_corpus(return_X_y=True, level="global")
    folds = 5
    if args.quick:
        texts, topic, folds = texts[::4], topic[::4], 3
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)

    n_layers = HiddenStateExtractor(args.model).fit(texts[:1]).n_layers_
    scores = {}
    with tempfile.TemporaryDirectory() as cache:
        for layer in range(n_layers + 1):
            pipe = Pipeline(
                [
                    ("hidden", HiddenStateExtractor(args.model, layers=[layer], cache_dir=cache)),
                    ("scale", StandardScaler()),
                    ("clf", LogisticRegression(max_iter=2000)),
                ]
            )
            scores[layer] = cross_val_score(pipe, texts, topic, cv=cv)
        scales = Pipeline(
            [
                ("hidden", HiddenStateExtractor(args.model, cache_dir=cache)),
                ("scales", ScaleSegmenter()),
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(max_iter=2000)),
            ]
        ).set_output(transform="pandas")  # layer names tell the segmenter the layout
        scores["scales"] = cross_val_score(scales, texts, topic, cv=cv)
    print(f"Topic accuracy by hidden state of {args.model} ({len(texts)} texts, {folds}-fold CV):")
    for layer, s in scores.items():
        name = "3 scales" if layer == "scales" else f"layer {layer:>2}"
        print(f"  {name:<8}: {s.mean():.3f} +/- {s.std():.3f}")
    layers = [k for k in scores if k != "scales"]
    best = max(layers, key=lambda k: scores[k].mean())
    print(
        f"best layer: {best} ({scores[best].mean():.3f}); per-scale features: "
        f"{scores['scales'].mean():.3f} (chance {1 / len(np.unique(topic)):.3f})"
    )
    return scores


if __name__ == "__main__":
    main()
