"""The alignment study as a library function: MSMA's ablation beside the baselines a
reviewer expects, on repeated splits with the scales refitted on training texts, and the
original README's claims judged on a metric that respects pairing.

:func:`run_alignment_study` takes one model's per-layer states (the extractor's
output) and a segmenter; it returns an :class:`AlignmentStudy` from which the
report, the CSVs and the figures are all drawn.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..alignment import (
    PAIRED_METRICS,
    compare_methods,
    paired_ablation,
    per_split_scores,
)
from ..stats import (
    corrected_resampled_ttest,
    detectable_advantage,
    judge_claims,
    resampled_claim_test,
)
from ._alignment_results import (
    ALIGNMENT_CLAIMS,
    DETECTABLE_POWER,
    AlignmentClaim,
    AlignmentStudy,
)

__all__ = ["judge_alignment_claims", "lambda_search", "run_alignment_study"]


def _original_changes(scores, method: str, reference: str, metric: str) -> np.ndarray:
    """Per split: ``metric(method) / metric(reference) - 1`` (averaged over pairs first)."""
    per_split = per_split_scores(scores, metric)
    if method not in per_split.index or reference not in per_split.index:
        return np.array([])
    change = (per_split.loc[method] / per_split.loc[reference] - 1.0).to_numpy(dtype=float)
    return change[np.isfinite(change)]


def _differences(scores, reference: str, other: str, metric: str):
    per_split = per_split_scores(scores, metric)
    diff = (per_split.loc[reference] - per_split.loc[other]).to_numpy(dtype=float)
    return diff if PAIRED_METRICS[metric][2] else -diff


def _claimed_size(claimed_range) -> float:
    """The end of a claimed range nearest zero: the least the claim asserts."""
    lo, hi = claimed_range
    return float(lo if abs(lo) <= abs(hi) else hi)


def judge_alignment_claims(scores, specs=ALIGNMENT_CLAIMS, *, alpha: float = 0.05) -> list:
    """The claims of ``specs`` on ``scores`` (:func:`paired_ablation`'s output).

    Both forms of each claim go to the one judge
    (:func:`~msma_sklearn.stats.judge_claims`, Holm over the claims of each
    form) with the corrected resampled t-test over the splits:

    - the paired form (the verdict): Full MSMA better than ``tested_against``
      on held-out ``metric``, a direction without a size ("supported" when
      shown better, "contradicted" when shown worse);
    - the original form: the per-split relative change on the original metric
      against the claimed size (the end of the claimed range nearest zero), so
      a change shown opposite to the claim or smaller than half of it is
      "contradicted".

    With fewer than two splits every verdict is "inconclusive". A claim whose
    methods are not in ``scores`` is left out.

    Parameters
    ----------
    scores : DataFrame
        :func:`~msma_sklearn.alignment.paired_ablation`'s output.
    specs : sequence of AlignmentClaimSpec, default=ALIGNMENT_CLAIMS
        The claims.
    alpha : float, default=0.05
        Family-wise level.

    Returns
    -------
    list of AlignmentClaim
    """
    methods = set(scores["method"])
    kept = [s for s in specs if {"Full MSMA", s.tested_against} <= methods]
    n_train, n_test = scores.attrs.get("n_train", 0), scores.attrs.get("n_test", 0)
    diffs = [_differences(scores, "Full MSMA", s.tested_against, s.metric) for s in kept]
    changes = [
        _original_changes(scores, s.original_method, s.original_reference, s.original_metric)
        for s in kept
    ]
    paired = judge_claims(
        [resampled_claim_test(d, n_train, n_test, 1.0, sized=False) for d in diffs], alpha=alpha
    )
    # the original metrics: lower is better for KL, higher for MI; the claimed change
    # is signed, so the judge needs no direction of its own
    original = judge_claims(
        [
            resampled_claim_test(c, n_train, n_test, _claimed_size(s.claimed_range))
            for s, c in zip(kept, changes, strict=True)
        ],
        alpha=alpha,
    )
    out = []
    holm_alpha = alpha / max(len(kept), 1)
    for spec, d, c, j, jo in zip(kept, diffs, changes, paired, original, strict=True):
        t, p = corrected_resampled_ttest(d, n_train, n_test)
        nan = float("nan")
        out.append(
            AlignmentClaim(
                spec,
                float(c.mean()) if c.size else nan,
                float(c.std(ddof=1)) if c.size > 1 else nan,
                float(np.nanmean(d)) if np.isfinite(d).any() else nan,
                t,
                p,
                j.p_claimed_holm,
                j.verdict,
                detectable_advantage(d, n_train, n_test, alpha=holm_alpha, power=DETECTABLE_POWER),
                j,
                jo,
            )
        )
    return out


def run_alignment_study(
    states,
    segmenter,
    *,
    model: str = "",
    configs: dict | None = None,
    n_splits: int = 10,
    test_size: float = 0.2,
    lambda_grid: dict | None = None,
    search_folds: int = 3,
    max_iter: int = 300,
    random_state: int = 0,
    n_jobs: int | None = None,
    standardize: bool = True,
) -> AlignmentStudy:
    """MSMA's ablation, the baselines, the claims and a λ search for one model.

    Parameters
    ----------
    states : DataFrame or array of shape (n_texts, n_states * width)
        ``HiddenStateExtractor`` output (every hidden state of every text).
    segmenter : ScaleSegmenter
        Cloned and fitted anew on each split's (and each search fold's)
        training texts only; its bootstrap refits are switched off there
        (they measure boundary confidence, not the boundaries).
    configs : dict, default=None
        MSMA rows, name -> ``(lambda_geo, lambda_info, lambda_curv)``; default
        the original ablation's rows. The baselines are always fitted.
    model : str, default=""
        The model's name (for the tables).
    n_splits, test_size : int and float, default=10 and 0.2
        The repeated ``ShuffleSplit`` design of :func:`paired_ablation`.
    lambda_grid : dict, default=None
        ``{"lambda_geo": [...], "lambda_info": [...], "lambda_curv": [...]}``:
        a ``GridSearchCV`` over ``Pipeline([segmenter, ManifoldAligner])``
        with ``search_folds`` folds, scored by held-out r² (``None``: no search).
    search_folds : int, default=3
        Folds of the λ search.
    max_iter : int, default=300
        Epoch budget of every aligner.
    random_state : int, default=0
        Seeds the splits, the aligners and the search's folds.
    n_jobs : int, default=None
        Parallel fits of the λ search (results do not depend on it).
    standardize : bool, default=True
        Z-score every unit of every scale on the training rows (of each split,
        of each search fold) before anything is fitted, so a decoder's rogue
        unit does not decide the variance-weighted r²
        (``benchmarks/alignment_basis.py``).

    Returns
    -------
    AlignmentStudy
    """
    import pandas as pd
    from sklearn.base import clone

    seg = clone(segmenter)
    if "n_bootstrap" in seg.get_params():
        seg.set_params(n_bootstrap=0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*\(n < 5 d\)", category=UserWarning)
        scores = paired_ablation(
            states,
            segmenter=seg,
            configs=configs,
            n_splits=n_splits,
            test_size=test_size,
            max_iter=max_iter,
            random_state=random_state,
            standardize=standardize,
        )
    others = [m for m in dict.fromkeys(scores["method"]) if m != "Full MSMA"]
    comparisons = (
        pd.concat(
            [compare_methods(scores, "Full MSMA", others, metric=m) for m in ("r2", "retrieval")],
            ignore_index=True,
        )
        if "Full MSMA" in set(scores["method"]) and others
        else pd.DataFrame()
    )
    claims = judge_alignment_claims(scores)
    search, best = [], {}
    if lambda_grid:
        pairs = [tuple(p.split("->")) for p in dict.fromkeys(scores["pair"])]
        search, best = lambda_search(
            states,
            seg,
            lambda_grid,
            folds=search_folds,
            random_state=random_state,
            n_jobs=n_jobs,
            pairs=pairs,
            standardize=standardize,
        )
    return AlignmentStudy(
        model=model,
        scores=scores,
        comparisons=comparisons,
        claims=claims,
        n_splits=n_splits,
        n_train=int(scores.attrs["n_train"]),
        n_test=int(scores.attrs["n_test"]),
        n_components=int(scores.attrs["n_components"]),
        scale_layers=scores.attrs.get("scale_layers", []),
        grid_search=search,
        best_params=best,
        search_folds=search_folds if lambda_grid else 0,
        standardized=standardize,
        aligner=dict(scores.attrs.get("aligner", {})),
        rows_per_dim=int(scores.attrs.get("rows_per_dim", 5)),
        detectable_power=DETECTABLE_POWER,
    )


def lambda_search(
    states,
    segmenter,
    grid: dict,
    *,
    folds: int = 3,
    random_state=0,
    n_jobs=None,
    pairs=None,
    standardize: bool = True,
):
    """``GridSearchCV`` over the λ of ``Pipeline([segmenter, ManifoldAligner(map="mlp")])``.

    The segmenter is refitted on each fold's training texts, so the held-out
    fold never shapes the scales its score is measured on. Returns
    ``(rows, best_params)``: one ``{lambda_geo, lambda_info, lambda_curv,
    mean_r2, sd_r2, rank, tied_with_best}`` per candidate (``rank``: GridSearchCV's,
    equal for equal scores; ``tied_with_best``: the chosen candidate's score exactly,
    so the search could not tell them apart). ``pairs``: the aligner's maps (default
    its own, global -> intermediate -> local). ``standardize``: a
    ``StandardScaler`` between the two steps (every unit of every scale
    z-scored on the fold's training texts).

    Parameters
    ----------
    states : DataFrame or array of shape (n_texts, n_states * width)
        ``HiddenStateExtractor`` output.
    segmenter : ScaleSegmenter
        Cloned and refitted on each fold's training texts.
    grid : dict
        Aligner parameter -> candidate values.
    folds : int, default=3
        ``KFold`` folds (shuffled with ``random_state``).
    random_state : int, default=0
        Seeds the folds and the aligner.
    n_jobs : int, default=None
        Parallel fits.
    pairs : list of (str, str), default=None
        The aligner's maps.
    standardize : bool, default=True
        A ``StandardScaler`` between segmenter and aligner.

    Returns
    -------
    rows : list of dict
    best_params : dict
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ..alignment import ManifoldAligner

    aligner = ManifoldAligner(map="mlp", pairs=pairs, random_state=random_state)
    steps = [("scales", clone(segmenter))]
    if standardize:
        steps.append(("standardize", StandardScaler()))
    pipe = Pipeline([*steps, ("align", aligner)]).set_output(transform="pandas")
    search = GridSearchCV(
        pipe,
        {f"align__{k}": list(v) for k, v in grid.items()},
        cv=KFold(folds, shuffle=True, random_state=random_state),
        n_jobs=n_jobs,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=r".*\(n < 5 d\)", category=UserWarning)
        search.fit(states)
    means = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    tied = np.isclose(means, means[search.best_index_], rtol=1e-9, atol=0.0)
    rows = [
        {
            **{k.removeprefix("align__"): v for k, v in params.items()},
            "mean_r2": round(float(m), 4),
            "sd_r2": round(float(s), 4),
            "rank": int(rank),
            # the same held-out score as the chosen candidate: the search cannot tell them
            # apart, and GridSearchCV takes the first in grid order
            "tied_with_best": bool(t),
        }
        for params, m, s, rank, t in zip(
            search.cv_results_["params"],
            means,
            search.cv_results_["std_test_score"],
            search.cv_results_["rank_test_score"],
            tied,
            strict=True,
        )
    ]
    best = {k.removeprefix("align__"): v for k, v in search.best_params_.items()}
    return rows, best
