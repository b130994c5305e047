"""``ManifoldAligner.fit_store``: the same solver fed from an on-disk store, one shard in
memory at a time (streamed statistics, per-shard validation draws, shuffled shards)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._preparation import ROWS_PER_DIM, Standardisation
from ._rows import as_tensor, chunks, epoch_batches, validation_order
from ._solver import fit_map_batches, start_matrix

__all__ = ["fit_from_store"]

#: fit_store keeps its validation rows in memory, at most this many
MAX_STORE_VALIDATION = 20_000


def fit_from_store(aligner, store, transformer=None):
    """Fit ``aligner`` (a ManifoldAligner) from ``store``; see
    :meth:`ManifoldAligner.fit_store`. Returns the aligner."""
    aligner._validate_params()
    if aligner.n_components not in (None, "auto"):
        raise ValueError(
            "fit_store does not support an int n_components (PCA needs all rows at once); "
            "reduce the states before storing them, or use fit()."
        )

    columns = store.feature_names()

    def prepared(shard) -> np.ndarray:
        X = np.asarray(shard, dtype=np.float64)
        if transformer is None:
            return X
        if hasattr(transformer, "feature_names_in_"):  # fitted on named columns
            import pandas as pd

            X = pd.DataFrame(X, columns=columns)
        return np.asarray(transformer.transform(X), dtype=np.float64)

    names = (
        transformer.get_feature_names_out() if transformer is not None else store.feature_names()
    )
    aligner.n_features_in_ = len(names)
    aligner.feature_names_in_ = np.asarray(names, dtype=object)
    aligner._set_pairs(len(names), aligner.feature_names_in_)
    aligner.pca_, aligner.n_components_, aligner.n_components_scores_ = None, None, None
    rng = check_random_state(aligner.random_state)
    # pass 1: mean and RMS per scale (sums of values and squares)
    count, sums, squares, rows_per_shard = 0, {}, {}, []
    for k in range(store.n_shards):
        X = prepared(store.read_shard(k))
        for name, B in aligner._blocks(X).items():
            sums[name] = sums.get(name, 0.0) + B.sum(0)
            squares[name] = squares.get(name, 0.0) + (B**2).sum(0)
        count += X.shape[0]
        rows_per_shard.append(X.shape[0])
    if count < 8:
        raise ValueError(f"The store holds {count} rows; fitting needs at least 8.")
    if count < ROWS_PER_DIM * aligner.scale_width_:
        warnings.warn(
            f"ManifoldAligner.fit_store: {count} rows for scales of {aligner.scale_width_} "
            "dimensions (n < 5 d): the maps are not determined by so few rows. fit_store "
            "cannot reduce by PCA; use fit(), which does (n_components='auto').",
            UserWarning,
            stacklevel=2,
        )
    means, rmss = {}, {}
    for name in aligner.scales_:
        mean = sums[name] / count
        var = np.maximum(squares[name] / count - mean**2, 0.0)
        rms = float(np.sqrt(var.mean()))
        if rms == 0:
            raise ValueError(f"Scale {name!r} is constant across samples: nothing to align.")
        means[name], rmss[name] = mean, rms
    aligner._std = Standardisation(dict(means), dict(rmss), None, means, rmss)
    aligner.scale_dims_ = {name: len(means[name]) for name in aligner.scales_}
    # validation rows: per shard, the first ceil(fraction * rows) of a permutation drawn
    # from (seed, shard) -- fit()'s rule, so a store of one shard holds out fit()'s rows
    val_seed = int(rng.randint(np.iinfo(np.int32).max))
    fraction = 0.0
    if aligner.early_stopping and aligner._trains():
        fraction = min(aligner.validation_fraction, MAX_STORE_VALIDATION / count)

    def val_mask(k: int) -> np.ndarray:
        n_k = rows_per_shard[k]
        mask = np.zeros(n_k, dtype=bool)
        if fraction:
            mask[validation_order(n_k, val_seed, k)[: math.ceil(fraction * n_k)]] = True
        return mask

    train_rows = [n_k - int(val_mask(k).sum()) for k, n_k in enumerate(rows_per_shard)]

    def standardised(k: int):
        Z = aligner._standardise(aligner._blocks(prepared(store.read_shard(k))), fit=False)
        return Z, val_mask(k)

    # pass 2: cross-covariance of each pair over the training rows; validation rows kept
    cross = {pair: 0.0 for pair in aligner.pairs_}
    gram = {pair: 0.0 for pair in aligner.pairs_}
    val = {name: [] for name in aligner.scales_}
    for k in range(store.n_shards):
        Z, mask = standardised(k)
        for a, b in aligner.pairs_:
            cross[(a, b)] = cross[(a, b)] + Z[a][~mask].T @ Z[b][~mask]
            if aligner.map != "orthogonal" and aligner.init == "least_squares":
                gram[(a, b)] = gram[(a, b)] + Z[a][~mask].T @ Z[a][~mask]
        for name in aligner.scales_:
            val[name].append(Z[name][mask])
    val = {name: np.concatenate(parts) for name, parts in val.items()}
    if fraction and len(val[aligner.scales_[0]]) < 2:
        raise ValueError(
            f"The store's validation draw holds {len(val[aligner.scales_[0]])} rows; pass a "
            "larger validation_fraction or early_stopping=False."
        )
    seeds = rng.randint(np.iinfo(np.int32).max, size=len(aligner.pairs_))
    device = torch.device(aligner.device)
    fits = []
    for (a, b), seed in zip(aligner.pairs_, seeds, strict=True):

        def train_batches(gen, a=a, b=b):
            # one shard in memory at a time (memory maps kept open would stay resident);
            # fit()'s schedule, shards in a random order
            current, s_all, t_all = None, None, None
            for k, idx in epoch_batches(train_rows, aligner.batch_size, gen):
                if k != current:
                    Z, mask = standardised(k)
                    s_all, t_all = as_tensor(Z[a][~mask], device), as_tensor(Z[b][~mask], device)
                    current = k
                idx = idx.to(device)
                yield s_all[idx], t_all[idx]

        def train_chunks(a=a, b=b):
            for k in range(store.n_shards):
                Z, mask = standardised(k)
                yield from chunks(Z[a][~mask], Z[b][~mask], aligner.batch_size, device)

        def val_chunks(a=a, b=b):
            yield from chunks(val[a], val[b], aligner.batch_size, device)

        R = start_matrix(aligner.map, aligner.init, gram[(a, b)], cross[(a, b)], seed=int(seed))
        fits.append(
            fit_map_batches(
                R,
                train_batches if aligner._trains() else None,
                train_chunks,
                val_chunks if fraction else None,
                aligner._settings(),
                seed=int(seed),
            )
        )
    aligner._store_fits(fits)
    return aligner
