"""ManifoldAligner.fit_store: minibatch fitting from an on-disk store."""

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import orthogonal_procrustes

from msma_sklearn import HiddenStateExtractor, ManifoldAligner, ScaleSegmenter, load_corpus
from msma_sklearn.extraction import extract_to_store, write_array_store

SCALES = ("local", "intermediate", "global")


def _planted(n, d=12, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = np.hstack([z, z @ q + noise * rng.normal(size=(n, d)), 3.0 * z @ q @ q + 1.0])
    names = [f"{s}__{i}" for s in SCALES for i in range(d)]
    return X.astype(np.float32), names


def test_closed_form_equals_fit_and_scipy(tmp_path):
    X, names = _planted(2000)
    store = write_array_store(X, tmp_path / "s", shard_rows=300, feature_names=names)
    params = dict(map="orthogonal", lambda_info=0.0, lambda_curv=0.0)
    streamed = ManifoldAligner(**params).fit_store(store)
    whole = ManifoldAligner(**params).fit(pd.DataFrame(X, columns=names))
    for key in whole.coef_:
        np.testing.assert_allclose(streamed.coef_[key], whole.coef_[key], atol=1e-8)
    # independent oracle: scipy on the standardised blocks, all rows at once
    d = 12
    blocks = {s: X[:, i * d : (i + 1) * d].astype(np.float64) for i, s in enumerate(SCALES)}
    z = {s: (b - b.mean(0)) / np.sqrt(((b - b.mean(0)) ** 2).mean()) for s, b in blocks.items()}
    R, _ = orthogonal_procrustes(z["global"], z["intermediate"])
    np.testing.assert_allclose(streamed.coef_["global->intermediate"], R, atol=1e-8)
    assert streamed.feature_names_in_.tolist() == names


def test_linear_closed_form_equals_fit(tmp_path):
    X, names = _planted(1500)
    store = write_array_store(X, tmp_path / "s", shard_rows=400, feature_names=names)
    params = dict(map="linear", lambda_info=0.0, lambda_curv=0.0)
    streamed = ManifoldAligner(**params).fit_store(store)
    whole = ManifoldAligner(**params).fit(pd.DataFrame(X, columns=names))
    assert streamed.n_iter_.tolist() == [0, 0]
    for key in whole.coef_:
        np.testing.assert_allclose(streamed.coef_[key], whole.coef_[key], atol=1e-6)


def test_trained_maps_match_the_in_memory_fit(tmp_path):
    X, names = _planted(3000)
    store = write_array_store(X[:2400], tmp_path / "s", shard_rows=400, feature_names=names)
    held_out = pd.DataFrame(X[2400:], columns=names)
    streamed = ManifoldAligner(map="mlp", random_state=0).fit_store(store)
    whole = ManifoldAligner(map="mlp", random_state=0).fit(pd.DataFrame(X[:2400], columns=names))
    # the same objective over other minibatches: the same quality (the InfoNCE term keeps
    # both a little below the closed-form Procrustes map's ~0.998 on this data)
    assert streamed.score(held_out) > 0.85
    assert abs(streamed.score(held_out) - whole.score(held_out)) < 0.05
    again = ManifoldAligner(map="mlp", random_state=0).fit_store(store)
    np.testing.assert_array_equal(again.transform(held_out), streamed.transform(held_out))


@pytest.mark.filterwarnings("ignore:.*n < 5 d:UserWarning")
def test_from_extracted_layers_through_a_segmenter(tmp_path):
    texts = load_corpus().texts[:96]
    ext = HiddenStateExtractor("tiny-gpt2", shard_size=32)
    store = extract_to_store(texts, tmp_path / "s", ext, n_jobs=1, progress=False)
    frame = pd.DataFrame(store.to_numpy(), columns=store.feature_names())
    segmenter = ScaleSegmenter(method="preset", preset="uniform").fit(frame)
    # 96 rows of 64 dims: fit() would reduce by PCA (n < 5 d), which fit_store cannot
    params = dict(map="orthogonal", lambda_info=0.0, lambda_curv=0.0, n_components=None)
    streamed = ManifoldAligner(**params).fit_store(store, segmenter.set_output(transform="pandas"))
    whole = ManifoldAligner(**params).fit(segmenter.transform(frame))
    for key in whole.coef_:
        np.testing.assert_allclose(streamed.coef_[key], whole.coef_[key], atol=1e-6)


@pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)  # 3 epochs: memory only
def test_memory_stays_flat_as_rows_grow(tmp_path):
    peaks = {}
    for n in (4000, 16000):
        X, names = _planted(n, d=32, seed=n)
        store = write_array_store(X, tmp_path / str(n), shard_rows=1000, feature_names=names)
        del X
        tracemalloc.start()
        # early_stopping=False: validation rows are held in memory (capped at 20,000 rows)
        ManifoldAligner(
            map="linear", lambda_curv=0.01, max_iter=3, early_stopping=False, random_state=0
        ).fit_store(store)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peaks[16000] < 1.3 * peaks[4000], peaks  # 4x the rows, not 4x the memory


def test_unsupported_settings(tmp_path):
    X, names = _planted(100)
    store = write_array_store(X, tmp_path / "s", shard_rows=50, feature_names=names)
    with pytest.raises(ValueError, match="does not support an int n_components"):
        ManifoldAligner(n_components=4).fit_store(store)
    with pytest.raises(ValueError, match="not empty"):
        write_array_store(X, tmp_path / "s", feature_names=names)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_one_shard_store_gives_the_in_memory_fit(tmp_path, kind):
    """One store, one shard: fit and fit_store hold out the same rows, draw the same
    minibatches and start from the same matrix, so a trained map (every term on) is the
    same map, up to the rounding of streamed means and RMS."""
    X, names = _planted(600)
    store = write_array_store(X, tmp_path / "s", shard_rows=600, feature_names=names)
    assert store.n_shards == 1
    params = dict(map=kind, lambda_curv=0.01, init="random", random_state=3, max_iter=40)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = ManifoldAligner(**params).fit_store(store)
        whole = ManifoldAligner(**params).fit(pd.DataFrame(X, columns=names))
    assert streamed.n_steps_.tolist() == whole.n_steps_.tolist()
    assert all(v > 0.05 for v in whole.prediction_change_.values())  # trained, not a start
    frame = pd.DataFrame(X, columns=names)
    np.testing.assert_allclose(streamed.transform(frame), whole.transform(frame), atol=1e-4)
