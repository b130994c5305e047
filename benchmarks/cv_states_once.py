"""Cross-validation and λ searches without re-running the model in every fold and candidate.

HiddenStateExtractor learns nothing from its texts (``fit`` only loads the model),
so its output can be computed once and reused: no information crosses folds. Three
ways of running the README's examples on MiniLM and the bundled 256 texts, timed
in one process (one run each, longest last; wall-clock seconds):

  probe   5-fold ``cross_val_score`` of a logistic probe on hidden state 4:
          naive (the extractor inside the pipeline: the model runs in every fold)
          against states once (extract, then cross-validate on the array);
  search  ``GridSearchCV`` over 2 x 2 lambdas, 3 folds, of extractor -> segmenter ->
          aligner: naive, ``Pipeline(memory=joblib.Memory(...))`` (the extractor's
          and segmenter's outputs cached per fold, reused by every candidate), and
          states once (extract once, search over segmenter -> aligner).

The scores of each pair are compared (they must agree).

Run:  python benchmarks/cv_states_once.py [--skip-naive-search]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from joblib import Memory  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from msma_sklearn import (  # noqa: E402
    HiddenStateExtractor,
    ManifoldAligner,
    ScaleSegmenter,
    load_corpus,
)

GRID = {"manifoldaligner__lambda_geo": [0.1, 1.0], "manifoldaligner__lambda_info": [0.0, 0.1]}


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def probe_rows(texts, y, model="minilm", layer=4, cv=5):
    probe = LogisticRegression(max_iter=2000)
    naive = make_pipeline(HiddenStateExtractor(model, layers=[layer]), probe)
    t_naive, s_naive = _timed(lambda: cross_val_score(naive, texts, y, cv=cv))

    def once():
        ext = HiddenStateExtractor(model).fit(texts)
        X = ext.reshape_by_layer(ext.transform(texts))[:, layer]
        return cross_val_score(probe, X, y, cv=cv)

    t_once, s_once = _timed(once)
    diff = float(np.max(np.abs(s_naive - s_once)))
    return [
        ("probe", "naive", t_naive, s_naive.mean(), None),
        ("probe", "states once", t_once, s_once.mean(), diff),
    ]


def search_rows(texts, model="minilm", cv=3, n_jobs=2, skip_naive=False):
    def search(pipe, X):
        return GridSearchCV(pipe, GRID, cv=cv, n_jobs=n_jobs).fit(X)

    rows, scores = [], {}
    if not skip_naive:
        pipe = make_pipeline(
            HiddenStateExtractor(model), ScaleSegmenter(), ManifoldAligner(random_state=0)
        ).set_output(transform="pandas")
        t, s = _timed(lambda: search(pipe, texts))
        scores["naive"] = s.cv_results_["mean_test_score"]
        rows.append(("search", "naive", t, s.best_score_, None))
    with tempfile.TemporaryDirectory() as cache:
        pipe = make_pipeline(
            HiddenStateExtractor(model),
            ScaleSegmenter(),
            ManifoldAligner(random_state=0),
            memory=Memory(cache, verbose=0),
        ).set_output(transform="pandas")
        t, s = _timed(lambda: search(pipe, texts))
        scores["memory"] = s.cv_results_["mean_test_score"]
        rows.append(("search", "Pipeline(memory=...)", t, s.best_score_, None))

    def once():
        ext = HiddenStateExtractor(model).fit(texts)
        X = pd.DataFrame(ext.transform(texts), columns=ext.get_feature_names_out())
        pipe = make_pipeline(ScaleSegmenter(), ManifoldAligner(random_state=0))
        return search(pipe.set_output(transform="pandas"), X)

    t, s = _timed(once)
    scores["once"] = s.cv_results_["mean_test_score"]
    rows.append(("search", "states once", t, s.best_score_, None))
    ref = scores.get("naive", scores["memory"])
    rows = [
        (*r[:4], float(np.max(np.abs(scores[k] - ref))))
        for r, k in zip(rows, [k for k in ("naive", "memory", "once") if k in scores], strict=True)
    ]
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-naive-search", action="store_true")
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args(argv)
    texts, y = load_corpus(return_X_y=True, level="global")
    rows = probe_rows(texts, y, model=args.model)
    rows += search_rows(texts, model=args.model, skip_naive=args.skip_naive_search)
    base = {"probe": rows[0][2], "search": rows[2][2]}
    print(
        f"{'task':<8} {'method':<22} {'seconds':>8} {'speed-up':>9} {'score':>8} {'max |diff|':>11}"
    )
    for task, method, t, score, diff in rows:
        d = "" if diff is None else f"{diff:.1e}"
        print(f"{task:<8} {method:<22} {t:>8.1f} {base[task] / t:>8.1f}x {score:>8.3f} {d:>11}")


if __name__ == "__main__":
    main()
