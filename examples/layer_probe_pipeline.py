"""Hidden states inside an ordinary scikit-learn workflow.

A ``Pipeline`` of ``HiddenStateExtractor`` and a linear classifier predicts the
topic of the bundled corpus texts from one layer's pooled states; cross-
validation compares layers. Results are cached on disk, so the extractor runs
once per layer setting however many folds and classifiers follow.

Run:  python examples/layer_probe_pipeline.py [--model minilm] [--quick]
"""

import argparse
import tempfile

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from msma_sklearn import HiddenStateExtractor, load_corpus


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
    print(f"Topic accuracy by hidden state of {args.model} ({len(texts)} texts, {folds}-fold CV):")
    for layer, s in scores.items():
        print(f"  layer {layer:>2}: {s.mean():.3f} +/- {s.std():.3f}")
    best = max(scores, key=lambda k: scores[k].mean())
    print(f"best layer: {best} (chance {1 / len(np.unique(topic)):.3f})")
    return scores


if __name__ == "__main__":
    main()
