"""The segmenter's steps as plain functions: the column layout, manual scale lists, adjacent
layers' mutual information, attention spans per hidden state."""

from __future__ import annotations

import re
from itertools import pairwise
from numbers import Integral

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from ..metrics import ksg_mutual_information
from ._selection import compare_to_random_splits, segment_labels

__all__ = [
    "adjacent_mi",
    "bootstrap_stability",
    "manual_groups",
    "parse_layout",
    "spans_per_state",
]

_NAME = re.compile(r"^layer(\d+)__(\d+)$")


def parse_layout(n_features: int, names, layers) -> tuple[np.ndarray, int]:
    """The hidden-state indices of X's column blocks and the block width.

    From ``layers`` when given (``"columns"``, a count or the indices; with the
    extractor's feature names the count must match them), else from
    ``layer{j}__{u}`` feature names, which must form equal, contiguous blocks in
    increasing layer order.

    Parameters
    ----------
    n_features : int
        Columns of X.
    names : array-like of str or None
        X's feature names.
    layers : None, "columns", int or sequence of int
        The segmenter's ``layers`` parameter.

    Returns
    -------
    indices : ndarray of int64
    width : int
    """
    if layers is not None:
        if isinstance(layers, str):  # "columns"
            return np.arange(n_features), 1
        idx = np.arange(int(layers)) if isinstance(layers, Integral) else np.asarray(layers)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"layers must be an int or a list of ints, got {layers!r}.")
        if n_features % idx.size:
            raise ValueError(
                f"X has {n_features} features, not a multiple of the {idx.size} layers given "
                f"by layers={layers!r}."
            )
        if names is not None and _NAME.match(str(names[0])):  # the extractor's names
            named = len(dict.fromkeys(_NAME.match(str(n)).group(1) for n in names))
            if named != idx.size:
                raise ValueError(
                    f"layers={layers!r} cuts X into {idx.size} blocks of "
                    f"{n_features // idx.size} columns, but its feature names hold "
                    f"{named} layers of {n_features // named}; leave layers=None to read "
                    "the layout from the names."
                )
        if np.any(np.diff(idx) <= 0) or idx.min() < 0:
            raise ValueError(f"layers must be increasing non-negative indices, got {idx.tolist()}.")
        return idx.astype(np.int64), n_features // idx.size
    if names is None:
        raise ValueError(
            "Cannot tell which columns belong to which layer: X has no feature names. "
            "Pass a DataFrame with HiddenStateExtractor's names (e.g. "
            "pipeline.set_output(transform='pandas')), or layers=<number of hidden states "
            "or their indices>."
        )
    parsed = [_NAME.match(str(n)) for n in names]
    bad = [str(n) for n, m in zip(names, parsed, strict=True) if m is None]
    if bad:
        raise ValueError(
            f"Feature names must look like 'layer3__17' (HiddenStateExtractor output); "
            f"got {bad[:3]}{' ...' if len(bad) > 3 else ''}. Pass layers= for other inputs."
        )
    layer_col = np.array([int(m.group(1)) for m in parsed])
    unit_col = np.array([int(m.group(2)) for m in parsed])
    uniq = list(dict.fromkeys(layer_col.tolist()))
    hidden = n_features // len(uniq)
    expected_layers = np.repeat(uniq, hidden)
    expected_units = np.tile(np.arange(hidden), len(uniq))
    if (
        n_features % len(uniq)
        or not np.array_equal(layer_col, expected_layers)
        or not np.array_equal(unit_col, expected_units)
        or np.any(np.diff(uniq) <= 0)
    ):
        raise ValueError(
            "Feature names do not form equal, contiguous per-layer blocks in increasing layer "
            f"order (layers seen: {uniq[:10]}); pass HiddenStateExtractor output unchanged."
        )
    return np.asarray(uniq, dtype=np.int64), hidden


def manual_groups(
    scale_layers, scale_names, n_scales: int, max_layer: int, require_contiguous: bool
) -> list[list[int]]:
    """Validate ``method="manual"``'s scale lists; return each scale's sorted indices.

    Parameters
    ----------
    scale_layers : dict or sequence of sequences of int
        Scale name -> hidden-state indices (or the lists in scale order).
    scale_names : tuple of str
        The scales' names, in order.
    n_scales : int
        Number of scales.
    max_layer : int
        Highest hidden-state index present.
    require_contiguous : bool
        Scales must be contiguous and follow each other in depth order.

    Returns
    -------
    list of list of int
    """
    if scale_layers is None:
        raise ValueError("method='manual' needs scale_layers={'local': [...], ...}.")
    if isinstance(scale_layers, dict):
        if tuple(scale_layers) != scale_names:
            raise ValueError(
                f"scale_layers keys {list(scale_layers)} must be the scale names "
                f"{list(scale_names)} in that order (or pass scale_names=)."
            )
        lists = list(scale_layers.values())
    else:
        lists = list(scale_layers)
    if len(lists) != n_scales:
        raise ValueError(f"scale_layers has {len(lists)} lists but n_scales={n_scales}.")
    out, seen = [], {}
    for name, lst in zip(scale_names, lists, strict=True):
        arr = np.asarray(lst)
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"scale {name!r}: expected a non-empty list of ints, got {lst!r}.")
        lo, hi = 0, int(max_layer)
        out_of_range = [int(j) for j in arr if not lo <= j <= hi]
        if out_of_range:
            raise ValueError(f"scale {name!r}: indices {out_of_range} out of range {lo}..{hi}.")
        for j in arr.tolist():
            if j in seen:
                raise ValueError(
                    f"Hidden state {j} is in both {seen[j]!r} and {name!r}: scales must be "
                    "disjoint."
                )
            seen[j] = name
        if require_contiguous and np.any(np.diff(np.sort(arr)) != 1):
            raise ValueError(
                f"scale {name!r} = {sorted(arr.tolist())} is not contiguous; pass "
                "require_contiguous=False to allow gaps."
            )
        out.append(sorted(arr.tolist()))
    if require_contiguous:
        firsts = [s[0] for s in out]
        if firsts != sorted(firsts) or any(a[-1] > b[0] for a, b in pairwise(out)):
            raise ValueError(
                f"scales {list(scale_names)} must follow each other in depth order, got {out}."
            )
    return out


def adjacent_mi(layer_arrays, *, n_components: int, n_neighbors: int, seed: int) -> np.ndarray:
    """KSG MI between the PCA projections of adjacent layers.

    Parameters
    ----------
    layer_arrays : list of ndarray of shape (n_samples, n_features)
        One representation per layer (z-scored first when the segmenter standardises).
    n_components : int
        PCA dimensions per layer.
    n_neighbors : int
        k of the KSG estimator.
    seed : int
        Seeds the estimator's jitter.

    Returns
    -------
    ndarray of shape (n_layers - 1,)
    """
    n = layer_arrays[0].shape[0]
    if n <= n_neighbors + 1:
        raise ValueError(f"method='mi' needs more than {n_neighbors + 1} samples, got {n}.")
    reduced = []
    for arr in layer_arrays:
        k = min(n_components, arr.shape[1], n - 1)
        pca = PCA(n_components=k, svd_solver="full")
        reduced.append(pca.fit_transform(arr))
    return np.array(
        [
            ksg_mutual_information(a, b, n_neighbors=n_neighbors, random_state=seed)
            for a, b in pairwise(reduced)
        ]
    )


def spans_per_state(attention_spans, max_layer: int, used) -> np.ndarray:
    """Each used hidden state's attention span (the embedding output's is 0).

    Parameters
    ----------
    attention_spans : array-like of shape (max_layer,)
        Mean attention distance of blocks 1..max_layer.
    max_layer : int
        Highest hidden-state index.
    used : ndarray of int
        The hidden states segmented.

    Returns
    -------
    ndarray of shape (len(used),)
    """
    if attention_spans is None:
        raise ValueError(
            "method='attention_span' needs attention_spans=HiddenStateExtractor(...)"
            ".fit(texts).attention_span(texts)."
        )
    spans = np.asarray(attention_spans, dtype=float)
    n_blocks = int(max_layer)
    if spans.ndim != 1 or spans.size != n_blocks or not np.isfinite(spans).all():
        raise ValueError(
            f"attention_spans must hold {n_blocks} finite values (one per block 1..{n_blocks}), "
            f"got shape {spans.shape}."
        )
    per_state = np.concatenate([[0.0], spans])  # hidden state 0: embeddings, no attention
    return per_state[used]


def _standardized(X: np.ndarray) -> np.ndarray:
    """Every column z-scored; constant columns become 0."""
    scale = X.std(axis=0)
    return (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)


def _groups(starts: list[int], n: int) -> list[list[int]]:
    bounds = [0, *starts, n]
    return [list(range(a, b)) for a, b in pairwise(bounds)]


def bootstrap_stability(fitted, refits, n: int, *, seed: int, min_size: int = 1) -> dict:
    """How far refits on subsamples land from the fitted boundaries, beside random splits.

    Parameters
    ----------
    fitted : list of int
        The fitted scales' start positions (after the first).
    refits : list of list of int
        The same for every refit.
    n : int
        Number of hidden states segmented.
    seed : int
        Seeds the random-split null.
    min_size : int, default=1
        Fewest layers per scale of the random splits (the segmenter's minimum).

    Returns
    -------
    dict
        ``ari`` and ``distance`` (mean over refits, against the fit) beside
        ``null_ari`` and ``null_distance`` (random contiguous splits).
    """
    ref_labels = segment_labels(fitted, n)
    null = compare_to_random_splits(fitted, fitted, n, min_size=min_size, random_state=seed)
    return {
        "ari": float(
            np.mean([adjusted_rand_score(ref_labels, segment_labels(r, n)) for r in refits])
        ),
        "distance": float(np.mean(np.abs(np.asarray(refits) - np.asarray(fitted)[None, :])))
        if fitted
        else 0.0,
        "null_ari": null.null_ari_mean,
        "null_distance": null.null_distance_mean,
    }
