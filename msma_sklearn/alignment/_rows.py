"""Which rows a map trains and validates on, and in what order: the rules ``fit`` (one
array) and ``fit_store`` (shards) share, so on a store of one shard they see the same rows
in the same order; and fixed chunks for evaluating the objective."""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "chunks",
    "epoch_batches",
    "fixed_chunks",
    "validation_count",
    "validation_order",
]


def validation_order(n_rows: int, seed: int, shard: int = 0) -> np.ndarray:
    """A seeded permutation of a shard's rows; its first rows are the validation rows.

    Drawn from ``(seed, shard)`` alone, so a shard's draw does not depend on the order
    in which shards are visited.
    """
    return np.random.default_rng([int(seed), int(shard)]).permutation(n_rows)


def validation_count(n_rows: int, fraction: float) -> int:
    """Validation rows for ``fit``: ``ceil(fraction * n_rows)``, at least 2 (the
    curvature term's neighbour graph needs two rows), leaving at least 4 to train on."""
    n_val = max(2, math.ceil(fraction * n_rows))
    if n_rows - n_val < 4:
        raise ValueError(
            f"{n_rows} rows leave {n_rows - n_val} for training after a validation fraction "
            f"of {fraction}; pass more rows or early_stopping=False."
        )
    return n_val


def epoch_batches(shard_rows, batch_size: int, gen: torch.Generator):
    """One epoch's minibatches as ``(shard, row indices)``: the shards in a random order
    (no draw for a single shard), rows shuffled within each shard, near-equal batches of
    at most ``batch_size`` rows covering every row."""
    shard_rows = list(shard_rows)
    if len(shard_rows) > 1:
        shard_order = torch.randperm(len(shard_rows), generator=gen).tolist()
    else:
        shard_order = [0]
    for k in shard_order:
        n = int(shard_rows[k])
        if n == 0:
            continue
        order = torch.randperm(n, generator=gen)
        for idx in torch.tensor_split(order, max(1, -(-n // batch_size))):
            yield k, idx


def as_tensor(values: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32, device=device)


def chunks(S: np.ndarray, T: np.ndarray, size: int, device):
    """Fixed-order chunks of ``size`` rows (near-equal), for evaluating the objective."""
    n = len(S)
    if n == 0:
        return
    for idx in np.array_split(np.arange(n), max(1, -(-n // size))):
        yield as_tensor(S[idx], device), as_tensor(T[idx], device)


def fixed_chunks(S: np.ndarray, T: np.ndarray, size: int, device):
    """A callable yielding :func:`chunks` of ``S`` and ``T`` afresh on every call."""
    return lambda: chunks(S, T, size, device)
