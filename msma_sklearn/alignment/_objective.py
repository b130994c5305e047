"""The MSMA objective's terms and maps, as plain torch functions and modules.

``L = lambda_geo * L_geo + lambda_info * L_info + lambda_curv * L_curv + lambda_ot * L_ot``
for a map ``f`` from a source scale S to a target scale T (both centred and
scaled to unit RMS).

With ``normalize=True`` (the aligner's default) every term is put on the same
footing: 0 is a perfect fit and 1 is the "no alignment" reference (the target's
mean as prediction for L_geo, chance identification for L_info, the target's
own mean curvature for L_curv, the mean cost for L_ot). ``normalize=False``
sums the raw terms (mean squared error, minus the InfoNCE bound in nats, the
raw mean-curvature mismatch), the form used before the normalised terms.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = [
    "BilinearCritic",
    "geometry_loss",
    "infonce_bound",
    "information_loss",
    "knn_graph",
    "least_squares_from_stats",
    "make_map",
    "mean_curvature_loss",
    "ot_loss",
    "pca_dimension_scores",
    "procrustes_rotation",
    "rotation_from_cross",
]

#: InfoNCE candidates per row (positive included): minibatches are split into
#: chunks of at most this many rows, so the bound's ceiling (log 256 = 5.5 nats) and
#: the cost per row do not depend on ``batch_size``.
INFONCE_CANDIDATES = 256
#: neighbours per point in the minibatch graph of the curvature term.
CURVATURE_NEIGHBORS = 10


def rotation_from_cross(cross: np.ndarray) -> np.ndarray:
    """Orthogonal Procrustes solution from the cross-covariance ``S^T T``.

    The ``(d_in, d_out)`` matrix ``R`` with orthonormal columns (or rows)
    minimising ``||S R - T||_F``; non-square problems are padded to square
    with zeros, so ``R`` is the leading block of a rotation. Used by
    :meth:`ManifoldAligner.fit` and :meth:`ManifoldAligner.fit_store` alike
    (the latter accumulates ``S^T T`` over shards).

    Parameters
    ----------
    cross : ndarray of shape (d_in, d_out)
        ``S^T T``.

    Returns
    -------
    ndarray of shape (d_in, d_out)
    """
    cross = np.asarray(cross, dtype=np.float64)
    d_in, d_out = cross.shape
    width = max(d_in, d_out)
    M = np.zeros((width, width))
    M[:d_in, :d_out] = cross
    u, _, vt = np.linalg.svd(M)
    return (u @ vt)[:d_in, :d_out]


def least_squares_from_stats(gram: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """Least-squares ``W`` minimising ``||S W - T||_F`` from ``S^T S`` and ``S^T T``.

    The geometry term's minimiser over linear maps (centred data, so no
    bias), where the linear and MLP families start. A ridge of 1e-6 times the
    mean diagonal of ``S^T S`` only guards against exactly singular Gram
    matrices (constant or duplicated dimensions); it changes the solution by
    less than 1e-6 relative otherwise.
    """
    gram = np.asarray(gram, dtype=np.float64)
    ridge = 1e-6 * max(float(np.trace(gram)) / gram.shape[0], 1e-300)
    return np.linalg.solve(gram + ridge * np.eye(gram.shape[0]), np.asarray(cross, np.float64))


def pca_dimension_scores(
    blocks: dict,
    pairs: list,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    candidates: list,
    family: str,
) -> dict:
    """Held-out r² of the closed-form maps after PCA to each candidate dimension.

    For each scale, PCA (``max(candidates)`` components) is fitted on all rows
    of ``blocks`` (unsupervised); its first k scores are the PCA-k
    coordinates, as principal components are nested. For each k (None: no
    PCA) and each ``(source, target)`` pair, the family's closed form
    (Procrustes for ``"orthogonal"``, least squares otherwise) is fitted on
    the standardised ``train_rows`` and its prediction, mapped back to the
    target's original coordinates, is scored on ``val_rows``:
    ``1 - SSE / SST`` with the target standardised by its training mean and
    RMS, averaged over pairs. Returns ``{k: r2}``.
    """
    from sklearn.decomposition import PCA

    k_max = max((k for k in candidates if k is not None), default=None)
    fitted = {}
    for name, B in blocks.items():
        pca = PCA(k_max, svd_solver="full").fit(B) if k_max else None
        fitted[name] = (B, pca, pca.transform(B) if pca else None)
    scores = {}
    for k in candidates:
        values = []
        for a, b in pairs:
            B_a, _, P_a = fitted[a]
            B_b, pca_b, P_b = fitted[b]
            Za = B_a if k is None else P_a[:, :k]
            Zb = B_b if k is None else P_b[:, :k]
            mean_a, mean_b = Za[train_rows].mean(0), Zb[train_rows].mean(0)
            rms_a = np.sqrt(((Za[train_rows] - mean_a) ** 2).mean())
            rms_b = np.sqrt(((Zb[train_rows] - mean_b) ** 2).mean())
            Sa, Sb = (Za - mean_a) / rms_a, (Zb - mean_b) / rms_b
            cross = Sa[train_rows].T @ Sb[train_rows]
            if family == "orthogonal":
                W = rotation_from_cross(cross)
            else:
                W = least_squares_from_stats(Sa[train_rows].T @ Sa[train_rows], cross)
            pred = (Sa[val_rows] @ W) * rms_b + mean_b
            if k is not None:
                pred = pred @ pca_b.components_[:k] + pca_b.mean_
            raw_mean = B_b[train_rows].mean(0)
            raw_rms = np.sqrt(((B_b[train_rows] - raw_mean) ** 2).mean())
            target = (B_b[val_rows] - raw_mean) / raw_rms
            pred = (pred - raw_mean) / raw_rms
            sst = ((target - target.mean(0)) ** 2).sum()
            values.append(1.0 - ((pred - target) ** 2).sum() / sst)
        scores[k] = float(np.mean(values))
    return scores


def procrustes_rotation(S: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Closed-form orthogonal R minimising ``||S R - T||_F`` (:func:`rotation_from_cross`).

    Parameters
    ----------
    S, T : ndarray of shape (n, d_in) and (n, d_out)
        Paired rows.

    Returns
    -------
    ndarray of shape (d_in, d_out)

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> S = rng.normal(size=(50, 3))
    >>> q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    >>> bool(np.allclose(procrustes_rotation(S, S @ q), q))
    True
    """
    S, T = np.asarray(S, dtype=np.float64), np.asarray(T, dtype=np.float64)
    return rotation_from_cross(S.T @ T)


def geometry_loss(mapped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_geo: mean squared residual ``||f(s) - t||^2`` per sample and dimension.

    On unit-RMS targets predicting the target's mean scores 1, so the term is
    already normalised (``1 - r^2`` on centred data). For an orthogonal map its
    minimiser is the orthogonal Procrustes solution, which is also where every
    map family is initialised.

    Parameters
    ----------
    mapped, target : Tensor of shape (n, d)
        Mapped sources and their targets.

    Returns
    -------
    Tensor
        A scalar.
    """
    return ((mapped - target) ** 2).mean()


class BilinearCritic(nn.Module):
    """Critic ``g(a, t) = exp(c) a^T W t / sqrt(d)`` for the InfoNCE bound.

    W starts at I and the log-temperature ``c`` at 0. The scalar temperature
    (as in CLIP) lets the critic sharpen its scores in a few steps; through W
    alone, whose per-step change is bounded in norm, that takes hundreds.

    Parameters
    ----------
    dim_a, dim_t : int
        Widths of the mapped sources and of the targets.
    """

    def __init__(self, dim_a: int, dim_t: int):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim_a, dim_t))
        self.log_temperature = nn.Parameter(torch.zeros(()))
        self.scale = 1.0 / math.sqrt(dim_t)

    def forward(self, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Scores ``(len(a), len(t))`` of every source against every target.

        Parameters
        ----------
        a, t : Tensor of shape (n_a, dim_a) and (n_t, dim_t)
            Mapped sources and targets.

        Returns
        -------
        Tensor of shape (n_a, n_t)
        """
        scale = self.scale * self.log_temperature.exp()
        return (a @ self.weight) @ t.T * scale  # (B, B) scores, positives on the diagonal


def infonce_bound(critic: nn.Module, a: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """InfoNCE lower bound on I(A; T) in nats (van den Oord et al. 2018).

    Row i's positive is ``t_i``; its negatives are the other targets of the
    block, i.e. targets shuffled away from their sources (minibatches are
    reshuffled every epoch). The bound is at most ``log(len(a))``.

    Parameters
    ----------
    critic : nn.Module
        ``critic(a, t)`` -> ``(n, n)`` scores of every source against every target.
    a, t : Tensor of shape (n, d)
        Mapped sources and their targets.

    Returns
    -------
    Tensor
        A scalar, in nats.
    """
    scores = critic(a, t)
    return math.log(a.shape[0]) + torch.diagonal(torch.log_softmax(scores, dim=1)).mean()


def information_loss(
    critic: nn.Module,
    a: torch.Tensor,
    t: torch.Tensor,
    *,
    normalize: bool = True,
    candidates: int = INFONCE_CANDIDATES,
) -> torch.Tensor:
    """L_info over a minibatch split into near-equal blocks of at most ``candidates`` rows.

    ``normalize=True``: ``1 - bound / log(block size)`` averaged over rows, so
    0 means every source identifies its target among the block and 1 means
    chance. ``normalize=False``: minus the bound in nats. Blocks of one row
    carry no information and are left out (a single-row minibatch gives 0).

    Parameters
    ----------
    critic : nn.Module
        The InfoNCE critic.
    a, t : Tensor of shape (n, d)
        Mapped sources and their targets.
    normalize : bool, default=True
        Scale-free form (see above) or nats.
    candidates : int, default=INFONCE_CANDIDATES
        Largest block: each row's negatives are the other rows of its block.

    Returns
    -------
    Tensor
        A scalar.
    """
    n = a.shape[0]
    n_blocks = max(1, -(-n // candidates))
    total, rows = a.new_zeros(()), 0
    for idx in torch.arange(n, device=a.device).tensor_split(n_blocks):
        if len(idx) < 2:
            continue
        bound = infonce_bound(critic, a[idx], t[idx])
        value = 1.0 - bound / math.log(len(idx)) if normalize else -bound
        total = total + value * len(idx)
        rows += len(idx)
    return total / max(rows, 1)


def knn_graph(
    s: torch.Tensor, k: int = CURVATURE_NEIGHBORS, block: int = INFONCE_CANDIDATES
) -> torch.Tensor:
    """Indices ``(n, k)`` of each row's ``k`` nearest other rows (Euclidean; no gradient).

    Neighbours are searched within near-equal blocks of at most ``block``
    consecutive rows (minibatches are random, so each block is a random
    subsample), which keeps the cost per row independent of the batch size.

    Parameters
    ----------
    s : Tensor of shape (n, d)
        The points (the source rows).
    k : int, default=CURVATURE_NEIGHBORS
        Neighbours per row (fewer when a block is smaller).
    block : int, default=INFONCE_CANDIDATES
        Largest block searched.

    Returns
    -------
    Tensor of int64, shape (n, k)
    """
    n = s.shape[0]
    n_blocks = max(1, -(-n // block))
    smallest = n // n_blocks
    k = min(k, smallest - 1)
    if k < 1:
        raise ValueError(f"A neighbour graph needs blocks of at least 2 rows, got {n} rows.")
    out = []
    with torch.no_grad():
        for idx in torch.arange(n, device=s.device).tensor_split(n_blocks):
            dist = torch.cdist(s[idx], s[idx])
            dist.fill_diagonal_(float("inf"))
            out.append(dist.topk(k, dim=1, largest=False).indices + idx[0])
    return torch.cat(out)


def mean_curvature_loss(
    mapped: torch.Tensor,
    target: torch.Tensor,
    neighbors: torch.Tensor,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    """L_curv: mismatch of the discrete mean-curvature vectors of f(S) and T.

    On a neighbour graph (``neighbors``, from :func:`knn_graph` on the
    *source* points), the graph Laplacian of a point cloud's coordinates,
    ``x_i - mean_{j in N(i)} x_j``, estimates its mean-curvature vector (the
    Laplace-Beltrami operator of the embedding coordinates). The term compares
    those vectors for the mapped sources and their targets along the
    correspondence: 0 when f bends the source's neighbourhoods exactly as the
    target's are bent. ``normalize=True`` divides by the target's own
    Laplacian energy (1 = as far off as mapping every neighbourhood flat);
    ``False`` gives the raw mean square per row and dimension.

    Unlike a Hessian penalty on the map, which is zero for every affine map
    and for a residual MLP at its zero start, this term has a gradient for
    every map family at the Procrustes start: the start minimises the
    residual of the points, not of their local curvature.

    Parameters
    ----------
    mapped, target : Tensor of shape (n, d)
        Mapped sources and their targets.
    neighbors : Tensor of int64, shape (n, k)
        :func:`knn_graph` of the source rows.
    normalize : bool, default=True
        Divide by the target's Laplacian energy (else per row and dimension).

    Returns
    -------
    Tensor
        A scalar.
    """
    n, k = neighbors.shape
    rows = torch.arange(n, device=neighbors.device).repeat_interleave(k)
    average = torch.sparse_coo_tensor(
        torch.stack([rows, neighbors.reshape(-1)]),
        torch.full((n * k,), 1.0 / k, dtype=mapped.dtype, device=mapped.device),
        (n, n),
        check_invariants=False,  # built valid: indices in range by construction
    )  # sparse products: a gather's backward (a scatter) is several times slower
    lap_mapped = mapped - torch.sparse.mm(average, mapped)
    lap_target = target - torch.sparse.mm(average, target)
    mismatch = ((lap_mapped - lap_target) ** 2).sum(dim=1).mean()
    if normalize:
        return mismatch / (lap_target**2).sum(dim=1).mean().clamp(min=1e-12)
    return mismatch / mapped.shape[1]


def ot_loss(mapped: torch.Tensor, target: torch.Tensor, reg: float = 0.1) -> torch.Tensor:
    """L_ot: entropic optimal-transport cost between a minibatch of mapped points and
    one of targets (POT's Sinkhorn, differentiable through its torch backend).

    Costs are squared Euclidean distances divided by their mean (so ``reg`` is
    scale-free and the term is already normalised); uniform weights. Computed
    per minibatch, so the total cost grows linearly with the number of samples.

    Parameters
    ----------
    mapped, target : Tensor of shape (n, d)
        A minibatch of mapped points and one of targets.
    reg : float, default=0.1
        Entropic regularisation (relative to the mean cost).

    Returns
    -------
    Tensor
        A scalar.
    """
    import ot

    n = mapped.shape[0]
    w = torch.full((n,), 1.0 / n, dtype=mapped.dtype, device=mapped.device)
    M = ot.dist(mapped, target)
    # stopThr 1e-4: the cost agrees with a fully converged solve to ~1e-7, 50x faster
    return ot.sinkhorn2(
        w, w, M / M.detach().mean().clamp(min=1e-12), reg, numItermax=100, stopThr=1e-4
    )


# ------------------------------------------------------------------- maps
# Every map is built without touching torch's global generator: parameters are
# allocated empty and filled from the start rotation or from the pair's generator.


class _Orthogonal(nn.Module):
    """``s @ W`` with W on the orthogonal group (Stiefel manifold when not square).

    W starts at the Procrustes solution. Training is Riemannian in the
    retraction sense (Absil et al. 2008): the Euclidean gradient is projected
    on the tangent space at W (:meth:`project_grad`), the optimiser steps, and
    W is pulled back onto the manifold by a sign-corrected QR decomposition
    (:meth:`retract`). The forward pass is a plain product (a Cayley
    parametrisation solves a d x d system in every forward and backward
    pass), and W stays orthogonal to rounding.
    """

    def __init__(self, init: np.ndarray):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(init, dtype=torch.float32).clone())

    def forward(self, s):
        return s @ self.weight

    def affine(self):
        return self.weight, torch.zeros(self.weight.shape[1], device=self.weight.device)

    @torch.no_grad()
    def project_grad(self) -> None:
        """Replace the gradient G by its tangent part ``G - W sym(W^T G)``."""
        W, G = self.weight, self.weight.grad
        if G is None:
            return
        WtG = W.T @ G
        G -= W @ (0.5 * (WtG + WtG.T))

    @torch.no_grad()
    def retract(self) -> None:
        """Back onto the manifold: the Q factor of W with a non-negative R diagonal."""
        tall = self.weight.shape[0] >= self.weight.shape[1]
        W = self.weight if tall else self.weight.T
        q, r = torch.linalg.qr(W)
        q = q * torch.where(torch.diagonal(r) < 0, -1.0, 1.0)
        self.weight.copy_(q if tall else q.T)


class _Linear(nn.Module):
    """``s @ W + b`` with W starting at the Procrustes rotation and b at 0."""

    def __init__(self, init: np.ndarray):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(init, dtype=torch.float32).clone())
        self.bias = nn.Parameter(torch.zeros(init.shape[1]))

    def forward(self, s):
        return s @ self.weight + self.bias

    def affine(self):
        return self.weight, self.bias


class _MLP(nn.Module):
    """Linear part (at Procrustes) plus a tanh residual whose output layer starts at 0.

    The hidden layer takes nn.Linear's default initialisation, drawn from the
    pair's generator.
    """

    def __init__(self, init: np.ndarray, hidden: int, generator: torch.Generator):
        super().__init__()
        d_in, _ = init.shape
        self.linear = _Linear(init)
        bound = 1.0 / math.sqrt(d_in)
        self.w1 = nn.Parameter(
            torch.empty(d_in, hidden).uniform_(-bound, bound, generator=generator)
        )
        self.b1 = nn.Parameter(torch.empty(hidden).uniform_(-bound, bound, generator=generator))
        self.w2 = nn.Parameter(torch.zeros(hidden, init.shape[1]))
        self.b2 = nn.Parameter(torch.zeros(init.shape[1]))

    def forward(self, s):
        return self.linear(s) + torch.tanh(s @ self.w1 + self.b1) @ self.w2 + self.b2


def make_map(
    kind: str,
    d_in: int,
    d_out: int,
    init: np.ndarray,
    hidden: int = 64,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """A map of family ``kind`` ("orthogonal", "linear", "mlp") starting at ``init``.

    ``init`` is the ``(d_in, d_out)`` start (the Procrustes rotation);
    ``generator`` seeds the MLP's hidden layer (None: a generator seeded with 0).
    """
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (d_in, d_out):
        raise ValueError(f"init has shape {init.shape}, expected {(d_in, d_out)}.")
    if kind == "orthogonal":
        return _Orthogonal(init)
    if kind == "linear":
        return _Linear(init)
    if kind == "mlp":
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        return _MLP(init, hidden, gen)
    raise ValueError(f"map must be 'orthogonal', 'linear' or 'mlp', got {kind!r}.")


def scaled_param_groups(modules, learning_rate: float) -> list[dict]:
    """Adam parameter groups with ``lr = learning_rate / sqrt(p.numel())`` per tensor.

    Adam moves every entry by about its learning rate per step, so with this
    rule each tensor moves by at most about ``learning_rate`` in Frobenius (hence
    spectral) norm per step, whatever its width: the step of a d x d map does
    not grow with d (the per-entry rule moved it by about ``lr * d``). This is
    the spectral scaling of Yang, Simon & Bernstein (2023) for maps whose
    inputs and outputs both have unit RMS.
    """
    return [
        {"params": [p], "lr": learning_rate / math.sqrt(p.numel())}
        for module in modules
        for p in module.parameters()
    ]
