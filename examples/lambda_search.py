"""Tune the MSMA objective's λ weights with GridSearchCV over a whole Pipeline.

``HiddenStateExtractor -> ScaleSegmenter -> ManifoldAligner`` is one
scikit-learn estimator; ``GridSearchCV`` refits the segmenter and the maps on
each training fold and scores the held-out fold with the aligner's
λ-independent ``score`` (held-out r² of the maps). The extractor's disk cache
makes the language model run once per text however many fits follow.

Run:  python examples/lambda_search.py [--model minilm] [--quick]
"""

import argparse
import tempfile

import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from msma_sklearn import HiddenStateExtractor, ManifoldAligner, ScaleSegmenter, load_corpus


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--quick", action="store_true", help="64 texts, 2 x 2 grid, 2 folds")
    args = parser.parse_args(argv)

    texts = load_corpus().texts
    grid = {
        "align__lambda_geo": [0.1, 1.0],
        "align__lambda_info": [0.0, 0.1],
        "align__lambda_curv": [0.0, 0.01],
    }
    folds = 3
    if args.quick:
        texts, folds = texts[::4], 2
        del grid["align__lambda_curv"]
    with tempfile.TemporaryDirectory() as cache:
        pipe = Pipeline(
            [
                ("hidden", HiddenStateExtractor(args.model, cache_dir=cache)),
                ("scales", ScaleSegmenter()),
                ("align", ManifoldAligner(map="mlp", random_state=0)),
            ]
        ).set_output(transform="pandas")  # layer names tell the segmenter the layout
        search = GridSearchCV(pipe, grid, cv=KFold(folds, shuffle=True, random_state=0))
        search.fit(texts)
    table = pd.DataFrame(search.cv_results_["params"]).assign(
        mean_r2=search.cv_results_["mean_test_score"], sd=search.cv_results_["std_test_score"]
    )
    print(f"λ search on {args.model} ({len(texts)} texts, {folds}-fold CV, score = held-out r²):")
    print(table.sort_values("mean_r2", ascending=False).to_string(index=False))
    print(f"best: {search.best_params_}")
    return search


if __name__ == "__main__":
    main()
