"""The original README's alignment ablation, re-measured on held-out texts."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import ShuffleSplit

from ..metrics import (
    cca_similarity_original,
    distance_correlation,
    gaussian_kl,
    histogram_mi_original,
    ksg_mutual_information,
    linear_cka,
    procrustes_disparity,
)
from ._aligner import ManifoldAligner
from ._evaluation import fit_records
from ._methods import ABLATION_CONFIGS

__all__ = ["METRICS", "alignment_ablation", "summarise_ablation"]

#: metric -> (label, form, higher is better)
METRICS = {
    "kl_sum": ("KL, diagonal, summed over dims", "original", False),
    "mi_hist": ("MI, 64-bin pooled-coordinate histogram", "original", True),
    "dcor": ("distance correlation (1,024-row seeded subsample)", "original", True),
    "cca": ("CCA similarity after PCA-32", "original", True),
    "kl_mean": ("KL, diagonal, per dimension", "sound", False),
    "mi_ksg": ("MI, KSG on PCA-8 (nats)", "sound", True),
    "cka": ("debiased linear CKA", "sound", True),
    "procrustes": ("Procrustes disparity", "sound", False),
}


def _measure(mapped: np.ndarray, target: np.ndarray, seed: int) -> dict[str, float]:
    k = min(8, mapped.shape[1], mapped.shape[0] - 1)
    a = PCA(k, svd_solver="full").fit_transform(mapped)
    b = PCA(k, svd_solver="full").fit_transform(target)
    with warnings.catch_warnings():
        # The original CCA metric fits up to 32 canonical pairs on the few held-out rows;
        # sklearn's iterative CCA then often stops at max_iter. The metric saturates near 1
        # in that regime (documented); one warning per call would drown the run's output.
        warnings.simplefilter("ignore", ConvergenceWarning)
        cca = cca_similarity_original(mapped, target)
    return {
        "kl_sum": gaussian_kl(mapped, target, kind="diag_sum"),
        "mi_hist": histogram_mi_original(mapped, target),
        "dcor": distance_correlation(mapped, target, random_state=seed),
        "cca": cca,
        "kl_mean": gaussian_kl(mapped, target, kind="diag_mean"),
        "mi_ksg": ksg_mutual_information(a, b, random_state=seed),
        "cka": linear_cka(mapped, target),
        "procrustes": procrustes_disparity(mapped, target),
    }


def alignment_ablation(
    X,
    *,
    configs: dict | None = None,
    n_seeds: int = 3,
    test_size: float = 0.2,
    map: str = "mlp",
    scales=None,
    max_iter: int = 300,
    random_state: int = 0,
    return_fits: bool = False,
):
    """Fit every configuration on training texts and measure it on held-out ones.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_scales * width)
        Per-scale representations (``ScaleSegmenter`` output; all scales in
        the model's own hidden space, so the unaligned baseline compares
        like with like).
    configs : dict, default=None
        Name -> ``(lambda_geo, lambda_info, lambda_curv)`` or None for the
        unaligned baseline; default :data:`ABLATION_CONFIGS`.
    n_seeds : int, default=3
        Repetitions; seed ``s`` draws its own train/test split and seeds the
        aligner.
    test_size : float, default=0.2
        Held-out share of the rows in each seed's split.
    map : {"orthogonal", "linear", "mlp"}, default="mlp"
        ``"mlp"`` so that the curvature term acts (it is zero for affine maps).
    scales : sequence of str, default=None
        Passed to :class:`ManifoldAligner`.
    max_iter : int, default=300
        Epoch budget of every aligner.
    random_state : int, default=0
        Seeds are ``random_state, random_state + 1, ...``.
    return_fits : bool, default=False
        Also return one row per fitted map (not for the unaligned baseline):
        ``config, seed, pair, n_steps,
        n_components`` and ``share_<term>``, each term's share of the
        gradient norm (``ManifoldAligner.term_gradient_share_``).

    Returns
    -------
    pandas.DataFrame
        Long format: ``config, seed, pair, metric, value`` (held-out values).
    fits : pandas.DataFrame
        Only with ``return_fits=True``.
    """
    import pandas as pd

    configs = ABLATION_CONFIGS if configs is None else configs
    rows, fits = [], []
    n = len(X)
    for seed in range(random_state, random_state + n_seeds):
        train, test = next(
            ShuffleSplit(1, test_size=test_size, random_state=seed).split(np.zeros(n))
        )
        X_train = X.iloc[train] if hasattr(X, "iloc") else np.asarray(X)[train]
        X_test = X.iloc[test] if hasattr(X, "iloc") else np.asarray(X)[test]
        for name, lambdas in configs.items():
            geo, info, curv = lambdas if lambdas is not None else (0.1, 0.0, 0.0)
            aligner = ManifoldAligner(
                geo, info, curv, map=map, scales=scales, max_iter=max_iter, random_state=seed
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                # the few-samples PCA is reported once per call below, not once per fit
                warnings.filterwarnings("ignore", message=r".*\(n < 5 d\)", category=UserWarning)
                aligner.fit(X_train)
            if seed == random_state and name == next(iter(configs)) and aligner.n_components_:
                warnings.warn(
                    f"alignment_ablation: {len(X_train)} training rows for scales of "
                    f"{aligner.scale_width_} dimensions (n < 5 d); every map is fitted on the "
                    f"first {aligner.n_components_} principal components of each scale.",
                    UserWarning,
                    stacklevel=2,
                )
            if lambdas is not None:
                fits += fit_records(
                    aligner, config=name, seed=seed, n_components=aligner.n_components_
                )
            raw = aligner._blocks(np.asarray(X_test, dtype=np.float64))
            aligned = aligner.transform(X_test)
            start = 0
            for a, b in aligner.pairs_:
                width = aligner.scale_width_
                mapped = raw[a] if lambdas is None else aligned[:, start : start + width]
                start += width
                for metric, value in _measure(mapped, raw[b], seed).items():
                    rows.append((name, seed, f"{a}->{b}", metric, float(value)))
    long = pd.DataFrame(rows, columns=["config", "seed", "pair", "metric", "value"])
    return (long, pd.DataFrame(fits)) if return_fits else long


def summarise_ablation(results):
    """Mean and sd over seeds (values first averaged over the pairs of each seed).

    Returns
    -------
    pandas.DataFrame
        Index: config (in the order given); columns: ``(metric, "mean" | "sd")``.

    Parameters
    ----------
    results : DataFrame
        :func:`alignment_ablation`'s output.
    """
    per_seed = results.groupby(["config", "seed", "metric"], sort=False)["value"].mean()
    table = per_seed.groupby(["config", "metric"], sort=False).agg(["mean", "std"])
    table = table.rename(columns={"std": "sd"}).unstack("metric")
    table = table.swaplevel(axis=1).sort_index(axis=1)
    order = list(dict.fromkeys(results["config"]))
    return table.loc[order]
