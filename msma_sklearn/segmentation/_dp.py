"""Exact optimal segmentation of a sequence into contiguous groups."""

from __future__ import annotations

import numpy as np

__all__ = ["cut_costs", "optimal_segments", "similarity_costs", "sse_costs"]


def similarity_costs(S: np.ndarray) -> np.ndarray:
    """Segment costs for maximising within-segment similarity.

    ``C[a, b]`` (segment ``a .. b-1``) is minus the summed similarity of all
    pairs in the segment divided by its size -- the kernel k-means objective
    restricted to contiguous clusters, with ``S`` as the kernel.

    Parameters
    ----------
    S : ndarray of shape (n, n)
        A symmetric similarity kernel.

    Returns
    -------
    ndarray of shape (n + 1, n + 1)
    """
    S = np.asarray(S, dtype=np.float64)
    n = S.shape[0]
    P = np.zeros((n + 1, n + 1))
    P[1:, 1:] = S.cumsum(0).cumsum(1)
    a = np.arange(n + 1)[:, None]
    b = np.arange(n + 1)[None, :]
    block = P[b, b] - P[a, b] - P[b, a] + P[a, a]  # sum of S[a:b, a:b]
    with np.errstate(divide="ignore", invalid="ignore"):
        C = -block / (b - a)
    C[b <= a] = np.inf
    return C


def sse_costs(values: np.ndarray) -> np.ndarray:
    """Segment costs for a piecewise-constant least-squares fit of a 1-D sequence.

    Parameters
    ----------
    values : ndarray of shape (n,)
        The sequence.

    Returns
    -------
    ndarray of shape (n + 1, n + 1)
        ``C[a, b]``: squared error of ``values[a:b]`` about its mean.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    s1 = np.concatenate([[0.0], v.cumsum()])
    s2 = np.concatenate([[0.0], (v**2).cumsum()])
    a = np.arange(n + 1)[:, None]
    b = np.arange(n + 1)[None, :]
    size = (b - a).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        C = (s2[b] - s2[a]) - (s1[b] - s1[a]) ** 2 / size
    C[b <= a] = np.inf
    return np.maximum(C, 0.0)


def cut_costs(links: np.ndarray) -> np.ndarray:
    """Segment costs that charge each cut the strength of the link it breaks.

    ``links[j]`` is the strength of the link between items ``j`` and ``j + 1``
    (e.g. adjacent-layer mutual information). ``C[a, b]`` is ``links[a - 1]``
    for a segment starting at ``a > 0`` (the link cut in front of it) and 0 for
    the first segment, so the best split cuts the weakest links; with a
    minimum segment size (``optimal_segments(min_size=...)``) it cuts the
    weakest links that leave every segment large enough.

    Parameters
    ----------
    links : ndarray of shape (n - 1,)
        Strength of each adjacent link.

    Returns
    -------
    ndarray of shape (n + 1, n + 1)
        ``C[a, b]``, the cost of the segment ``a .. b-1``.

    Examples
    --------
    >>> optimal_segments(cut_costs(np.array([0.1, 5.0, 5.0, 0.2, 5.0])), 2)
    [1]
    >>> optimal_segments(cut_costs(np.array([0.1, 5.0, 5.0, 0.2, 5.0])), 2, min_size=2)
    [4]
    """
    v = np.asarray(links, dtype=np.float64)
    n = v.size + 1
    a = np.arange(n + 1)[:, None]
    b = np.arange(n + 1)[None, :]
    front = np.concatenate([[0.0], v, [0.0]])[a]  # cost of the cut in front of segment a..
    C = np.broadcast_to(front, (n + 1, n + 1)).copy()
    C[b <= a] = np.inf
    return C


def optimal_segments(costs: np.ndarray, n_segments: int, min_size: int = 1) -> list[int]:
    """Split ``0..n-1`` into ``n_segments`` contiguous segments of least total cost.

    Parameters
    ----------
    costs : ndarray of shape (n + 1, n + 1)
        ``costs[a, b]``: cost of the segment ``a .. b-1``.
    n_segments : int
        Number of segments.
    min_size : int, default=1
        Fewest items per segment.

    Returns
    -------
    starts : list of int
        Start index of every segment after the first (length ``n_segments - 1``).

    Notes
    -----
    Dynamic programming over (segments used, end position): exact, in
    ``O(n_segments n^2)``. Ties go to the earliest boundary.

    Examples
    --------
    >>> S = np.kron(np.eye(3), np.ones((2, 2)))   # three blocks of two
    >>> optimal_segments(similarity_costs(S), 3)
    [2, 4]
    """
    n = costs.shape[0] - 1
    if n_segments < 1 or n_segments * min_size > n:
        raise ValueError(
            f"Cannot split {n} layers into {n_segments} segments of at least {min_size}."
        )
    best = np.full((n_segments + 1, n + 1), np.inf)
    arg = np.zeros((n_segments + 1, n + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, n_segments + 1):
        for end in range(k * min_size, n + 1):
            starts = np.arange((k - 1) * min_size, end - min_size + 1)
            totals = best[k - 1, starts] + costs[starts, end]
            i = int(np.argmin(totals))
            best[k, end] = totals[i]
            arg[k, end] = starts[i]
    cuts, end = [], n
    for k in range(n_segments, 0, -1):
        end = int(arg[k, end])
        cuts.append(end)
    return sorted(cuts)[1:]  # drop the first segment's start (0)
