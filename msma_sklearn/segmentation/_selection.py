"""How many scales, and how a segmentation compares with others and with chance.

Pure functions over similarity matrices and boundary lists. A segmentation of
``n`` layers into ``k`` contiguous scales is given by its ``k - 1`` start
indices (positions, 0-based, of every scale after the first).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ..metrics import cka_matrix
from ._dp import optimal_segments, similarity_costs
from ._drift import fit_smooth_drift

__all__ = [
    "ScaleCountCurve",
    "SplitComparison",
    "boundary_distance",
    "compare_to_random_splits",
    "explained_similarity",
    "random_contiguous_splits",
    "scale_count_curve",
    "segment_labels",
]


def segment_labels(starts, n: int) -> np.ndarray:
    """Scale index (0..k-1) of each of ``n`` layers, from the scales' start positions.

    Parameters
    ----------
    starts : sequence of int
        Start positions of the scales after the first.
    n : int
        Number of layers.

    Returns
    -------
    ndarray of int, shape (n,)

    Examples
    --------
    >>> segment_labels([2, 5], 7).tolist()
    [0, 0, 1, 1, 1, 2, 2]
    """
    labels = np.zeros(n, dtype=np.int64)
    for s in starts:
        labels[int(s) :] += 1
    return labels


def boundary_distance(a, b) -> float:
    """Mean absolute distance, in layers, between matched boundaries of two splits.

    Both splits must have the same number of scales; boundary ``i`` of ``a`` is
    matched with boundary ``i`` of ``b``.

    Parameters
    ----------
    a, b : sequence of int
        Start positions of the scales after the first, same length.

    Returns
    -------
    float

    Examples
    --------
    >>> boundary_distance([3, 9], [2, 12])
    2.0
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(
            f"boundary_distance needs splits with the same number of boundaries, got "
            f"{a.size} and {b.size}."
        )
    return float(np.abs(a - b).mean()) if a.size else 0.0


def random_contiguous_splits(
    n: int, k: int, *, min_size: int = 1, max_splits: int = 5000, random_state=None
) -> np.ndarray:
    """Start positions of contiguous splits of ``n`` layers into ``k`` scales of at least
    ``min_size`` layers each (the splits a segmenter with that minimum can return).

    Every such split when there are at most ``max_splits`` of them (the
    uniform distribution over admissible splits, exactly); otherwise
    ``max_splits`` drawn uniformly at random among them. A split into ``k``
    scales of at least ``m`` layers is one into ``k`` non-empty scales of
    ``n - k (m - 1)`` layers with ``m - 1`` added to each, so both the count
    and the draw are those of the smaller problem.

    Parameters
    ----------
    n : int
        Number of layers.
    k : int
        Number of scales.
    min_size : int, default=1
        Fewest layers per scale.
    max_splits : int, default=5000
        Most splits returned.
    random_state : int, RandomState or None, default=None
        Seeds the draw when there are more than ``max_splits``.

    Returns
    -------
    ndarray of shape (n_splits, k - 1)

    Examples
    --------
    >>> random_contiguous_splits(4, 3).tolist()
    [[1, 2], [1, 3], [2, 3]]
    >>> random_contiguous_splits(6, 2, min_size=2).tolist()
    [[2], [3], [4]]
    """
    if min_size < 1:
        raise ValueError(f"min_size must be at least 1, got {min_size}.")
    if not 1 <= k <= n or k * min_size > n:
        raise ValueError(f"Cannot split {n} layers into {k} scales of at least {min_size} layers.")
    m = n - k * (min_size - 1)  # the equivalent problem with non-empty scales
    shift = (min_size - 1) * np.arange(1, k, dtype=np.int64)
    total = comb(m - 1, k - 1)
    if total <= max_splits:
        small = np.asarray(list(combinations(range(1, m), k - 1)), dtype=np.int64)
        return small.reshape(total, k - 1) + shift
    rng = np.random.default_rng(random_state)
    draws = np.stack(
        [np.sort(rng.choice(np.arange(1, m), k - 1, replace=False)) for _ in range(max_splits)]
    )
    return draws.astype(np.int64) + shift


@dataclass(frozen=True)
class SplitComparison:
    """A segmentation against a reference, beside random contiguous splits.

    Parameters
    ----------
    ari : float
        Adjusted Rand index between the two layer labellings.
    distance : float
        Mean absolute boundary distance in layers.
    null_ari_mean, null_distance_mean : float
        The same two numbers averaged over random contiguous splits (compared
        with the same reference).
    p_ari : float
        Share of random splits whose ARI is at least the observed one (how
        often chance agrees at least as well).
    p_distance : float
        Share of random splits at most as far from the reference.
    n_random : int
        Number of random splits behind the null.
    """

    ari: float
    distance: float
    null_ari_mean: float
    null_distance_mean: float
    p_ari: float
    p_distance: float
    n_random: int


def _adjusted_rand_many(reference, labelings) -> np.ndarray:
    """Adjusted Rand index of each row of ``labelings`` against ``reference``.

    The same quantity as ``sklearn.metrics.adjusted_rand_score`` (Hubert &
    Arabie's pair-counting form, 1.0 where both partitions are trivial alike),
    computed for thousands of small labelings at once from their contingency
    tables: calling scikit-learn once per random split took about 2 s per
    null distribution of 5,000 splits, most of the quick run's segmentation.
    Tested equal to scikit-learn's.
    """
    ref = np.asarray(reference, dtype=np.int64)
    lab = np.atleast_2d(np.asarray(labelings, dtype=np.int64))
    n = ref.size
    ref_onehot = np.eye(ref.max() + 1)[ref]  # (n, k_ref)
    lab_onehot = np.eye(lab.max() + 1)[lab]  # (m, n, k_lab)
    table = np.einsum("mnj,ni->mij", lab_onehot, ref_onehot)  # (m, k_ref, k_lab)
    pairs = lambda x: x * (x - 1) / 2.0  # noqa: E731
    index = pairs(table).sum(axis=(1, 2))
    rows = pairs(table.sum(axis=2)).sum(axis=1)
    cols = pairs(table.sum(axis=1)).sum(axis=1)
    expected = rows * cols / pairs(float(n)) if n > 1 else np.zeros_like(rows)
    top = 0.5 * (rows + cols)
    denominator = top - expected
    with np.errstate(invalid="ignore", divide="ignore"):
        ari = (index - expected) / denominator
    return np.where(denominator == 0, 1.0, ari)


def compare_to_random_splits(
    starts, reference, n: int, *, min_size: int = 1, max_splits: int = 5000, random_state=None
) -> SplitComparison:
    """Agreement of a split with a reference, and what random contiguous splits give.

    Parameters
    ----------
    starts, reference : sequence of int
        Start positions of the scales after the first (same length).
    n : int
        Number of layers.
    min_size : int, default=1
        Fewest layers per scale of the random splits: pass the segmenter's
        ``min_scale_size_`` so that chance is drawn from the splits it could
        have returned.
    max_splits : int, default=5000
        Random contiguous splits behind the null (all of them when fewer).
    random_state : int, RandomState or None, default=None
        Seeds the draw when there are more than ``max_splits``.

    Returns
    -------
    SplitComparison

    Examples
    --------
    >>> c = compare_to_random_splits([3, 9], [3, 9], 13)
    >>> c.ari, c.distance, c.p_ari < 0.05
    (1.0, 0.0, True)
    """
    k = len(reference) + 1
    ref_labels = segment_labels(reference, n)
    ari = float(adjusted_rand_score(ref_labels, segment_labels(starts, n)))
    dist = boundary_distance(starts, reference)
    rand = random_contiguous_splits(
        n, k, min_size=min_size, max_splits=max_splits, random_state=random_state
    )
    rand_labels = (np.arange(n)[None, :, None] >= rand[:, None, :]).sum(axis=2)  # segment_labels
    null_ari = _adjusted_rand_many(ref_labels, rand_labels)
    null_dist = np.abs(rand - np.asarray(reference)[None, :]).mean(axis=1) if k > 1 else np.zeros(1)
    return SplitComparison(
        ari=ari,
        distance=dist,
        null_ari_mean=float(null_ari.mean()),
        null_distance_mean=float(null_dist.mean()),
        p_ari=float((null_ari >= ari - 1e-12).mean()),
        p_distance=float((null_dist <= dist + 1e-12).mean()),
        n_random=len(rand),
    )


def explained_similarity(S: np.ndarray, starts) -> float:
    """Share of the similarity kernel's spread explained by a contiguous split.

    ``1 - W_k / W_1`` with ``W`` the kernel k-means cost (``trace(S)`` minus
    each segment's summed similarity over its size): 0 for one scale, 1 when
    every scale's layers are identical to each other. Scored on any ``S`` (for
    cross-validation: boundaries from one half of the texts, ``S`` from the
    other).

    Parameters
    ----------
    S : ndarray of shape (n, n)
        A layer-similarity kernel (e.g. CKA).
    starts : sequence of int
        Start positions of the scales after the first.

    Returns
    -------
    float

    Examples
    --------
    >>> S = np.kron(np.eye(2), np.ones((2, 2)))
    >>> explained_similarity(S, [2])
    1.0
    """
    S = np.asarray(S, dtype=float)
    n = S.shape[0]
    bounds = [0, *[int(s) for s in starts], n]
    within = sum(S[a:b, a:b].sum() / (b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    total = np.trace(S)
    one = S.sum() / n
    spread = total - one
    if spread <= 1e-12:
        return 0.0
    return float((within - one) / spread)


def _toeplitz_null(S: np.ndarray) -> np.ndarray:
    """``S`` averaged along its diagonals: the same decay with depth, no blocks."""
    n = S.shape[0]
    out = np.empty_like(S)
    for d in range(n):
        v = np.diagonal(S, d).mean()
        idx = np.arange(n - d)
        out[idx, idx + d] = v
        out[idx + d, idx] = v
    return out


#: block-free nulls of :func:`scale_count_curve`: name -> matrix -> null matrix
_NULLS = {
    "drift": lambda S: fit_smooth_drift(S).matrix,
    "toeplitz": _toeplitz_null,
}


@dataclass(frozen=True)
class ScaleCountCurve:
    """Cross-validated evidence for each number of scales.

    Parameters
    ----------
    k : ndarray of int
        Numbers of scales tried (1..k_max).
    explained : ndarray of shape (n_k,)
        Held-out explained similarity (mean over splits): boundaries fitted on
        one half of the texts, scored on the other half's similarity matrix.
    null : ndarray of shape (n_k,)
        The same for the block-free null fitted to each half's matrix (by
        default the smooth drift of :func:`fit_smooth_drift`; "toeplitz": the
        matrix averaged along its diagonals).
    gap : ndarray of shape (n_k,)
        ``explained - null`` per split, averaged.
    gap_se : ndarray of shape (n_k,)
        Standard error of the gap over splits.
    best_k : int
        The smallest k whose gap is within ``max(se, tol)`` of the largest gap
        (Tibshirani et al.'s one-standard-error rule, with a floor ``tol`` on
        what counts as a difference); 1 when no gap exceeds ``max(se, tol)``.
        A ``best_k`` equal to the largest k tried means the curve had not
        levelled off: the data do not single out a number of scales in range.
    n_splits : int
        Random halvings of the texts behind the means.
    null_model : str
        Which block-free null: "drift" or "toeplitz".
    tol : float
        The floor on what counts as a difference in the rule above.
    """

    k: np.ndarray
    explained: np.ndarray
    null: np.ndarray
    gap: np.ndarray
    gap_se: np.ndarray
    best_k: int
    n_splits: int
    null_model: str = "drift"
    tol: float = 0.01

    def as_rows(self) -> list[dict]:
        """One dict per k (for tables).

        Returns
        -------
        list of dict
            ``k``, ``explained``, ``null``, ``gap``, ``gap_se`` per number of scales.
        """
        return [
            {
                "k": int(k),
                "explained": round(float(e), 4),
                "null": round(float(n), 4),
                "gap": round(float(g), 4),
                "gap_se": round(float(s), 4),
            }
            for k, e, n, g, s in zip(
                self.k, self.explained, self.null, self.gap, self.gap_se, strict=True
            )
        ]


def scale_count_curve(
    layer_arrays,
    *,
    k_max: int = 6,
    n_splits: int = 10,
    min_size: int = 1,
    tol: float = 0.01,
    debiased: bool = True,
    null: str = "drift",
    random_state=None,
) -> ScaleCountCurve:
    """Choose the number of contiguous scales by cross-validation against a no-block null.

    For each of ``n_splits`` random halvings of the texts, the CKA matrix of
    each half is computed; for every k, boundaries are fitted (exact DP) on
    one half and the explained similarity is scored on the other, both ways.
    Within-scale similarity always grows with k, so the same is done for a
    block-free null fitted to each half's matrix; the gap between the two is
    the evidence for k scales beyond smooth drift. The default null
    (``null="drift"``, :func:`fit_smooth_drift`) is the closest drift whose
    speed has no interior maximum (equal, slowing, quickening or U-shaped
    steps) with similarity decreasing in the distance travelled; "toeplitz"
    (the matrix averaged along its diagonals, equal steps only) finds scales in
    a drift that slows or quickens with depth and is kept for comparison.

    Parameters
    ----------
    layer_arrays : list of ndarray of shape (n_samples, n_features)
        One (already standardised, if wanted) representation per layer.
    k_max : int, default=6
        Largest number of scales tried.
    n_splits : int, default=10
        Random halvings of the texts.
    min_size : int, default=1
        Minimum layers per scale.
    tol : float, default=0.01
        Smallest gap difference (share of the similarity spread) treated as
        real. The halves' CKA matrices are estimated so precisely that the
        standard error alone calls gaps of 0.006 "significant" on a
        random-weight MiniLM (benchmarks/segmentation_evidence.py).
    debiased : bool, default=True
        Debiased (True) or biased linear CKA.
    null : {"drift", "toeplitz"}, default="drift"
        The block-free null.
    random_state : int or None
        Seeds the halvings.

    Returns
    -------
    ScaleCountCurve

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> base = [rng.normal(size=(80, 5)) for _ in range(2)]
    >>> layers = [base[g] + 0.3 * rng.normal(size=(80, 5)) for g in (0, 0, 0, 1, 1, 1)]
    >>> scale_count_curve(layers, k_max=4, n_splits=4, random_state=0).best_k
    2
    """
    if null not in _NULLS:
        raise ValueError(f"null must be one of {sorted(_NULLS)}, got {null!r}.")
    null_matrix = _NULLS[null]
    n_layers = len(layer_arrays)
    n = layer_arrays[0].shape[0]
    if n < 8:
        raise ValueError(f"scale_count_curve needs at least 8 texts (two halves of 4), got {n}.")
    k_top = min(k_max, n_layers // max(min_size, 1))
    if k_top < 1:
        raise ValueError(f"Cannot form even one scale of {min_size} from {n_layers} layers.")
    ks = np.arange(1, k_top + 1)
    rng = np.random.default_rng(random_state)
    gaps, expl, nulls = [], [], []
    for _ in range(n_splits):
        perm = rng.permutation(n)
        halves = [np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])]
        mats = [cka_matrix([a[h] for a in layer_arrays], debiased=debiased) for h in halves]
        toes = [null_matrix(S) for S in mats]
        e_row, n_row = [], []
        for k in ks:
            e = n_ = 0.0
            for fit, score in ((0, 1), (1, 0)):
                starts = optimal_segments(similarity_costs(mats[fit]), int(k), min_size)
                e += explained_similarity(mats[score], starts) / 2
                starts0 = optimal_segments(similarity_costs(toes[fit]), int(k), min_size)
                n_ += explained_similarity(toes[score], starts0) / 2
            e_row.append(e)
            n_row.append(n_)
        expl.append(e_row)
        nulls.append(n_row)
        gaps.append(np.subtract(e_row, n_row))
    expl, nulls, gaps = np.asarray(expl), np.asarray(nulls), np.asarray(gaps)
    gap = gaps.mean(axis=0)
    se = gaps.std(axis=0, ddof=1) / np.sqrt(n_splits) if n_splits > 1 else np.zeros_like(gap)
    best = int(np.argmax(gap))
    margin = max(float(se[best]), tol)
    if gap[best] <= margin:  # nothing beats the null by more than noise or tol
        best_k = 1
    else:
        best_k = int(ks[np.flatnonzero(gap >= gap[best] - margin)[0]])
    return ScaleCountCurve(
        k=ks,
        explained=expl.mean(axis=0),
        null=nulls.mean(axis=0),
        gap=gap,
        gap_se=se,
        best_k=best_k,
        n_splits=n_splits,
        null_model=null,
        tol=tol,
    )
